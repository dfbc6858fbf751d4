/**
 * Helpers for the CPU kernel tests: tensors with fresh random contents in their own buffers (any
 * type, optionally permuted or as a view with gaps), single nodes run through a CpuDevice
 * (synchronous, or off-thread through `compute`), and results read back in logical order.
 * @module
 */

import { newGraph } from "../../protocol/graph/graph.ts";
import { GgmlOp, GluOp, UnaryOp } from "../../protocol/graph/ops.ts";
import { type Dims, nbytes, newTensor, type Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType, typeInfo } from "../../protocol/graph/types.ts";
import { rng } from "../../tests/asserts.ts";
import { CpuDevice, type CpuDeviceOptions } from "./device.ts";
import { TensorData } from "./tensor_data.ts";

export { GgmlOp, GgmlType, GluOp, UnaryOp };

/** A random source seeded from the clock (fresh inputs every run), and its seed for messages. */
export function freshRandom(): { seed: number; next: () => number } {
  const seed = (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
  return { seed, next: rng(seed) };
}

/** Options of {@linkcode TestBed.tensor}. */
export interface TensorOptions {
  /** Values in logical order; default: uniform in [lo, hi). */
  values?: ArrayLike<number>;
  lo?: number;
  hi?: number;
  /** Make the tensor a permutation (ggml_permute axes) of a contiguous one. */
  permute?: [number, number, number, number];
  /** Extra elements between rows (a strided view into a larger buffer). */
  rowGap?: number;
  /** Byte offset of the data inside its buffer. */
  offset?: number;
}

/** Tensors and single-node runs on one CPU device. */
export class TestBed {
  readonly device: CpuDevice;
  readonly random: () => number;
  readonly seed: number;

  /**
   * With threads > 1, every node that can be split is split (parallelWork 1, unless `opts` says
   * otherwise); `opts.offThread` makes a device whose graphs run through {@linkcode compute}, all
   * on its graph thread (inlineWork 0, unless `opts` says otherwise).
   */
  constructor(threads = 1, opts: Omit<CpuDeviceOptions, "threads"> = {}) {
    this.device = new CpuDevice({ threads, parallelWork: 1, inlineWork: 0, ...opts });
    const r = freshRandom();
    this.random = r.next;
    this.seed = r.seed;
  }

  /** A tensor of `type` and logical shape `ne` in a fresh buffer, filled. */
  tensor(type: number, ne: number[], opts: TensorOptions = {}): Tensor {
    const d: Dims = [ne[0] ?? 1, ne[1] ?? 1, ne[2] ?? 1, ne[3] ?? 1];
    const size = typeInfo(type)!.typeSize;
    let t: Tensor;
    if (opts.permute) {
      // a contiguous tensor whose axes, permuted, give d
      const p = opts.permute;
      const base: number[] = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) base[p[i]] = d[i];
      const b = newTensor({ type, ne: base });
      const nb: number[] = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) nb[i] = b.nb[p[i]];
      t = newTensor({ type, ne: d, nb });
    } else if (opts.rowGap) {
      const row = (d[0] + opts.rowGap) * size;
      t = newTensor({ type, ne: d, nb: [size, row, row * d[1], row * d[1] * d[2]] });
    } else {
      t = newTensor({ type, ne: d });
    }
    const offset = opts.offset ?? 0;
    const buffer = this.device.allocBuffer(offset + nbytes(t) + 64)!;
    t.buffer = buffer;
    t.offset = offset;
    // fill the whole buffer with noise first, so gaps are not zeros
    const bytes = (buffer as unknown as { bytes: Uint8Array }).bytes;
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(this.random() * 256);
    const lo = opts.lo ?? -1, hi = opts.hi ?? 1;
    const v = opts.values;
    let k = 0;
    const T = new TensorData(t);
    for (let i3 = 0; i3 < d[3]; i3++) {
      for (let i2 = 0; i2 < d[2]; i2++) {
        for (let i1 = 0; i1 < d[1]; i1++) {
          for (let i0 = 0; i0 < d[0]; i0++, k++) {
            T.set(i0, i1, i2, i3, v ? v[k] : lo + (hi - lo) * this.random());
          }
        }
      }
    }
    return t;
  }

  /** A result tensor (contiguous, in a fresh buffer) computed by `op` from `src`. */
  node(op: number, type: number, ne: number[], src: (Tensor | null)[], params: number[] = []): Tensor {
    const t = newTensor({ type, ne, op, src, opParams: new Int32Array(params) as unknown as number[] });
    t.buffer = this.device.allocBuffer(nbytes(t) + 64)!;
    t.name = "out";
    return t;
  }

  /** Runs the nodes (in order) on a synchronous device. */
  run(...nodes: Tensor[]): void {
    if (this.device.offThread) throw new Error("an off-thread device computes through compute()");
    for (const n of nodes) {
      if (!this.device.supportsOp(n)) throw new Error(`not supported: op ${n.op}`);
    }
    this.device.compute(newGraph(nodes));
  }

  /** Runs the nodes (in order) on the device, either kind; resolves when they are done. */
  async compute(...nodes: Tensor[]): Promise<void> {
    for (const n of nodes) {
      if (!this.device.supportsOp(n)) throw new Error(`not supported: op ${n.op}`);
    }
    await this.device.compute(newGraph(nodes));
  }

  /** Elements of `t` in logical order. */
  read(t: Tensor): number[] {
    const T = new TensorData(t);
    const out: number[] = [];
    for (let i3 = 0; i3 < t.ne[3]; i3++) {
      for (let i2 = 0; i2 < t.ne[2]; i2++) {
        for (let i1 = 0; i1 < t.ne[1]; i1++) {
          for (let i0 = 0; i0 < t.ne[0]; i0++) out.push(T.get(i0, i1, i2, i3));
        }
      }
    }
    return out;
  }

  /** Element [i0, i1, i2, i3] of `t`. */
  at(t: Tensor, i0: number, i1 = 0, i2 = 0, i3 = 0): number {
    return new TensorData(t).get(i0, i1, i2, i3);
  }

  close(): void {
    this.device.close();
  }
}

/** op_params word for an f32 value. */
export function f32Param(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, true);
  return b.getInt32(0, true);
}

/** Rounds to the storage precision of `type` (the identity for f32 and integers). */
export function roundTo(type: number, x: number): number {
  if (type === GgmlType.F16) return Math.f16round(x);
  if (type === GgmlType.BF16) {
    const f = new Float32Array([x]);
    const u = new Uint32Array(f.buffer);
    const i = u[0];
    u[0] = ((i + (0x7fff + ((i >>> 16) & 1))) >>> 16) << 16;
    return f[0];
  }
  if (type === GgmlType.F32) return Math.fround(x);
  return x;
}
