/**
 * Kernel tests on WebGPU against the CPU reference device: build tensors and nodes with the CPU
 * {@linkcode TestBed} (fresh random contents, permuted or gapped layouts, any byte offset), then
 * {@linkcode GpuCheck.check} copies every buffer byte for byte to the WebGPU device, runs the same
 * graph on both and compares the results with an NMSE bound — and checks that the bytes of the
 * result's buffer outside the result are untouched (word races of f16/bf16 writes show there).
 *
 * @example
 * ```ts
 * const gc = await GpuCheck.open(); // null when no adapter
 * const a = gc!.bed.tensor(GgmlType.F32, [5, 3]);
 * const b = gc!.bed.tensor(GgmlType.F32, [5, 1]);
 * await gc!.check(gc!.bed.node(GgmlOp.ADD, GgmlType.F32, [5, 3], [a, b]), 1e-12);
 * ```
 * @module
 */

import { collectTensors, newGraph } from "../../../protocol/graph/graph.ts";
import { describeNode, nbytes, type Tensor } from "../../../protocol/graph/tensor.ts";
import { assertEquals, assertNmse } from "../../../tests/asserts.ts";
import type { CpuBuffer } from "../../cpu/device.ts";
import { TestBed } from "../../cpu/testing.ts";
import type { DeviceBuffer } from "../../device.ts";
import type { WebGpuBuffer } from "../buffer.ts";
import { openWebGpuDevice, type WebGpuDevice } from "../device.ts";

export { f32Param, GgmlOp, GgmlType, GluOp, roundTo, UnaryOp } from "../../cpu/testing.ts";

let shared: Promise<WebGpuDevice | string> | null = null;

/** The WebGPU device of this test process, or why there is none. */
export function testDevice(): Promise<WebGpuDevice | string> {
  if (!shared) {
    shared = openWebGpuDevice({}).then((r) => "device" in r ? r.device : r.absent).catch((e) => String(e));
  }
  return shared;
}

/** Whether tests can run (and prints why not once). */
export async function haveWebGpu(): Promise<boolean> {
  const d = await testDevice();
  if (typeof d === "string") {
    console.log(`webgpu tests skipped: ${d}`);
    return false;
  }
  return true;
}

/** A CPU test bed and the WebGPU device, for comparing the two. */
export class GpuCheck {
  readonly bed: TestBed;
  readonly gpu: WebGpuDevice;

  constructor(gpu: WebGpuDevice) {
    this.gpu = gpu;
    this.bed = new TestBed(1);
  }

  /** A checker on the shared device, or null when there is no WebGPU adapter. */
  static async open(): Promise<GpuCheck | null> {
    const d = await testDevice();
    return typeof d === "string" ? null : new GpuCheck(d);
  }

  /**
   * Runs `nodes` (default: just `out`) on the CPU and on WebGPU from byte-identical inputs and
   * asserts NMSE(webgpu, cpu) ≤ `bound` over `out`, and that `out`'s buffer is unchanged outside
   * `out`'s bytes. Returns the NMSE.
   */
  async check(out: Tensor, bound: number, nodes: Tensor[] = [out]): Promise<void> {
    const what = describeNode(out);
    if (!this.gpu.supportsOp(out)) throw new Error(`webgpu does not support ${what}`);
    // copy every buffer to the GPU first (the CPU run changes its outputs)
    const map = new Map<DeviceBuffer, WebGpuBuffer>();
    const clones = new Map<Tensor, Tensor>();
    for (const t of collectTensors(nodes)) {
      if (t.buffer && !map.has(t.buffer)) {
        const cb = t.buffer as CpuBuffer;
        const g = this.gpu.allocBuffer(cb.size)!;
        g.set(0, cb.bytes);
        map.set(t.buffer, g);
      }
    }
    const clone = (t: Tensor | null): Tensor | null => {
      if (!t) return null;
      let c = clones.get(t);
      if (!c) {
        c = {
          ...t,
          ne: [...t.ne],
          nb: [...t.nb],
          src: t.src.map(clone),
          viewSrc: clone(t.viewSrc),
          buffer: t.buffer ? map.get(t.buffer)! : null,
        };
        clones.set(t, c);
      }
      return c;
    };
    const gnodes = nodes.map((n) => clone(n)!);
    this.bed.run(...nodes);
    const plan = await this.gpu.planCreate(newGraph(gnodes));
    await this.gpu.planCompute(plan);
    await this.gpu.planFree(plan);
    const gout = clones.get(out)!;
    const bytes = await gout.buffer!.get(0, gout.buffer!.size);
    for (const g of map.values()) if (g !== gout.buffer) g.free();
    (gout.buffer as WebGpuBuffer).free();
    // read the GPU result through a CPU buffer holding its bytes
    const cpuOut = out.buffer as CpuBuffer;
    const view = this.bed.device.allocBuffer(cpuOut.size)!;
    view.set(0, bytes);
    const got = this.bed.read({ ...out, buffer: view });
    const want = this.bed.read(out);
    assertNmse(got, want, bound, what);
    const lo = out.offset, hi = out.offset + nbytes(out);
    for (let i = 0; i < cpuOut.size; i++) {
      if (i >= lo && i < hi) continue;
      if (bytes[i] !== cpuOut.bytes[i]) {
        assertEquals(bytes[i], cpuOut.bytes[i], `${what}: byte ${i} outside the result changed`);
      }
    }
  }
}
