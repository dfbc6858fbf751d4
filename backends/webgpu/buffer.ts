/**
 * WebGPU device memory: {@linkcode WebGpuBuffer} (a GPUBuffer with STORAGE | COPY_SRC | COPY_DST,
 * its size rounded up to whole u32 words) and the byte-level transfers the Device interface asks
 * for. WebGPU copies and writes only whole words at 4-byte offsets, so:
 * - `set` writes aligned spans with `queue.writeBuffer`; an unaligned span is staged in a temporary
 *   buffer and written by a small byte-masking kernel (no read-back, no wait);
 * - `memset` clears zeros with `clearBuffer` and fills other values (or ragged edges) with the same
 *   kernel;
 * - `copyFrom` uses `copyBufferToBuffer` for aligned, non-overlapping spans, else stages through a
 *   temporary buffer and the kernel;
 * - `get` is the only wait: a copy into a MAP_READ staging buffer and `mapAsync`.
 * Everything is queued in order on the device's one queue, so a `get` sees every earlier write and
 * every earlier submitted graph.
 * @module
 */

import type { DeviceBuffer } from "../device.ts";
import type { WebGpuDevice } from "./device.ts";

const WG = 64;
/** Bytes handled per dispatch of the byte kernel (below every adapter's binding limit). */
const CHUNK = 64 * 2 ** 20;

/** WGSL of the byte kernel: writes bytes [d_byte, d_byte + n) of `d` from a value or from `s`. */
export const BYTES_WGSL = `
@group(0) @binding(0) var<storage, read_write> d: array<u32>;
@group(0) @binding(1) var<storage, read> s: array<u32>;
struct P { d_byte: u32, n: u32, s_byte: u32, value: u32, from_src: u32, words: u32, _a: u32, _b: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let k = (wg.x + wg.y * nwg.x) * ${WG}u + li;
  if (k >= p.words) { return; }
  let w = p.d_byte / 4u + k;
  var word = d[w];
  for (var b = 0u; b < 4u; b++) {
    let q = w * 4u + b;
    if (q < p.d_byte || q >= p.d_byte + p.n) { continue; }
    var byte = p.value & 0xffu;
    if (p.from_src != 0u) {
      let sb = p.s_byte + (q - p.d_byte);
      byte = (s[sb / 4u] >> ((sb % 4u) * 8u)) & 0xffu;
    }
    word = (word & ~(0xffu << (b * 8u))) | (byte << (b * 8u));
  }
  d[w] = word;
}
`;

const roundUp4 = (x: number) => Math.ceil(x / 4) * 4;
const roundDown = (x: number, a: number) => Math.floor(x / a) * a;

/** A block of WebGPU memory. */
export class WebGpuBuffer implements DeviceBuffer {
  readonly device: WebGpuDevice;
  readonly size: number;
  /** The GPU buffer ({@linkcode size} rounded up to 4 bytes). */
  readonly gpu: GPUBuffer;
  /** Unique id (bind group caches key on it). */
  readonly id: number;
  #freed = false;

  constructor(device: WebGpuDevice, size: number, gpu: GPUBuffer, id: number) {
    this.device = device;
    this.size = size;
    this.gpu = gpu;
    this.id = id;
  }

  set(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const q = this.device.gpu.queue;
    if (offset % 4 === 0 && data.length % 4 === 0) {
      q.writeBuffer(this.gpu, offset, data as Uint8Array<ArrayBuffer>);
      return;
    }
    // stage the bytes in a temporary buffer, then copy them in with the byte kernel
    const tmp = this.device.gpu.createBuffer({
      size: roundUp4(data.length),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    const padded = new Uint8Array(roundUp4(data.length));
    padded.set(data);
    q.writeBuffer(tmp, 0, padded);
    this.#byteKernel(offset, data.length, 0, tmp);
    tmp.destroy();
  }

  async get(offset: number, size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    await this.getInto(offset, out);
    return out;
  }

  async getInto(offset: number, dst: Uint8Array): Promise<void> {
    const size = dst.length;
    if (size === 0) return;
    const dev = this.device.gpu;
    const a = roundDown(offset, 4), b = Math.min(roundUp4(offset + size), this.gpu.size);
    const staging = this.device.takeStaging(b - a);
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(this.gpu, a, staging, 0, b - a);
    dev.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, b - a);
      dst.set(new Uint8Array(staging.getMappedRange(0, b - a), offset - a, size));
      staging.unmap();
    } catch (e) {
      staging.destroy();
      throw e;
    }
    this.device.giveStaging(staging);
  }

  memset(offset: number, size: number, value: number): void {
    if (size === 0) return;
    const v = value & 0xff;
    if (v === 0 && offset % 4 === 0 && size % 4 === 0) {
      const enc = this.device.gpu.createCommandEncoder();
      enc.clearBuffer(this.gpu, offset, size);
      this.device.gpu.queue.submit([enc.finish()]);
      return;
    }
    this.#byteKernel(offset, size, v, null);
  }

  clear(value: number): void {
    this.memset(0, this.size, value);
  }

  copyFrom(src: DeviceBuffer, srcOffset: number, dstOffset: number, size: number): boolean {
    if (!(src instanceof WebGpuBuffer) || src.device !== this.device) return false;
    if (size === 0) return true;
    const dev = this.device.gpu;
    const overlap = src === this && srcOffset < dstOffset + size && dstOffset < srcOffset + size;
    if (srcOffset % 4 === 0 && dstOffset % 4 === 0 && size % 4 === 0 && !overlap) {
      const enc = dev.createCommandEncoder();
      enc.copyBufferToBuffer(src.gpu, srcOffset, this.gpu, dstOffset, size);
      dev.queue.submit([enc.finish()]);
      return true;
    }
    // stage the source's covering words, then copy bytes with the kernel
    const a = roundDown(srcOffset, 4), b = Math.min(roundUp4(srcOffset + size), src.gpu.size);
    const tmp = dev.createBuffer({
      size: b - a,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(src.gpu, a, tmp, 0, b - a);
    dev.queue.submit([enc.finish()]);
    this.#byteKernel(dstOffset, size, 0, tmp, srcOffset - a);
    tmp.destroy();
    return true;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.device.release(this);
    this.gpu.destroy();
  }

  /** Writes bytes [offset, offset + size) from `value` or from `src` at `srcByte`, in chunks. */
  #byteKernel(offset: number, size: number, value: number, src: GPUBuffer | null, srcByte = 0): void {
    const dev = this.device.gpu;
    const pipe = this.device.bytesPipeline();
    const enc = dev.createCommandEncoder();
    const params: GPUBuffer[] = [];
    const pass = enc.beginComputePass();
    for (let done = 0; done < size; done += CHUNK) {
      const n = Math.min(CHUNK, size - done);
      const dAbs = offset + done;
      const dStart = roundDown(dAbs, this.device.storageAlign);
      const dEnd = Math.min(roundUp4(dAbs + n), this.gpu.size);
      const sAbs = srcByte + done;
      const s = src ?? this.device.dummy();
      const sStart = src ? roundDown(sAbs, this.device.storageAlign) : 0;
      const sEnd = src ? Math.min(roundUp4(sAbs + n), src.size) : 4;
      const dByte = dAbs - dStart;
      const words = (roundUp4(dByte + n) - roundDown(dByte, 4)) / 4;
      const u = dev.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      dev.queue.writeBuffer(
        u,
        0,
        new Uint32Array([dByte, n, src ? sAbs - sStart : 0, value, src ? 1 : 0, words, 0, 0]),
      );
      params.push(u);
      const bg = dev.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.gpu, offset: dStart, size: dEnd - dStart } },
          { binding: 1, resource: { buffer: s, offset: sStart, size: sEnd - sStart } },
          { binding: 2, resource: { buffer: u } },
        ],
      });
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      const groups = Math.ceil(words / WG);
      const x = Math.min(groups, 65535);
      pass.dispatchWorkgroups(x, Math.ceil(groups / x));
    }
    pass.end();
    dev.queue.submit([enc.finish()]);
    for (const u of params) u.destroy();
  }
}
