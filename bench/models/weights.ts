/**
 * Deterministic random weights: every weight's bytes follow from the model seed and the weight's
 * index alone, so two processes (or a local device and a server) hold exactly the same model, and
 * a server's tensor cache recognises them on the next run. Values are uniform in
 * center ± scale, drawn from a 4096-entry table per weight so that billions of them are quick.
 *
 * @example
 * ```ts
 * for (const chunk of weightChunks(init, seed, index, 1 << 26)) await upload(chunk);
 * ```
 * @module
 */

import { typeInfo } from "../../protocol/graph/types.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { nelements } from "../../protocol/graph/tensor.ts";
import type { WeightInit } from "./llama.ts";

const TABLE = 4096;

/** xorshift32 seeded from (seed, index) through a splitmix-style mix; never 0. */
function seedOf(seed: number, index: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  return x === 0 ? 0x6d2b79f5 : x;
}

/** The table of encoded values for `type` (f32 as bits, f16/bf16 as 16-bit patterns). */
function table(type: number, center: number, scale: number): Uint32Array | Uint16Array {
  const dv = new DataView(new ArrayBuffer(4));
  if (type === GgmlType.F32) {
    const t = new Uint32Array(TABLE);
    for (let i = 0; i < TABLE; i++) {
      dv.setFloat32(0, center + scale * ((2 * i + 1) / TABLE - 1), true);
      t[i] = dv.getUint32(0, true);
    }
    return t;
  }
  const t = new Uint16Array(TABLE);
  for (let i = 0; i < TABLE; i++) {
    const x = center + scale * ((2 * i + 1) / TABLE - 1);
    if (type === GgmlType.F16) {
      dv.setFloat16(0, x, true);
      t[i] = dv.getUint16(0, true);
    } else if (type === GgmlType.BF16) {
      dv.setFloat32(0, x, true);
      const bits = dv.getUint32(0, true);
      t[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // round to nearest even
    } else {
      throw new RangeError(`weights of type ${typeInfo(type)?.name ?? type} are not generated`);
    }
  }
  return t;
}

// One loop per element width keeps each monomorphic (several times faster than one loop over a
// union of array types). Each xorshift32 step yields two 12-bit table indices.
function fill16(out: Uint16Array, tab: Uint16Array, s: number): number {
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = tab[s & 4095];
    out[i + 1] = tab[(s >>> 16) & 4095];
  }
  if (i < n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = tab[s & 4095];
  }
  return s;
}

function fill32(out: Uint32Array, tab: Uint32Array, s: number): number {
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = tab[s & 4095];
    out[i + 1] = tab[(s >>> 16) & 4095];
  }
  if (i < n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = tab[s & 4095];
  }
  return s;
}

/**
 * The weight's bytes in chunks of at most `chunkBytes` (whole elements), in order. `index` is the
 * weight's position in the model's weight list (a duplicate passes its source's index).
 */
export function* weightChunks(
  init: WeightInit,
  seed: number,
  index: number,
  chunkBytes = 1 << 26,
): Generator<Uint8Array> {
  const t = init.tensor;
  const elem = typeInfo(t.type)!.typeSize;
  const tab = table(t.type, init.center, init.scale);
  const total = nelements(t);
  const perChunk = Math.max(2, Math.floor(chunkBytes / elem) & ~1);
  let s = seedOf(seed, index);
  for (let done = 0; done < total; done += perChunk) {
    const n = Math.min(perChunk, total - done);
    const bytes = new Uint8Array(n * elem);
    s = elem === 4
      ? fill32(new Uint32Array(bytes.buffer), tab as Uint32Array, s)
      : fill16(new Uint16Array(bytes.buffer), tab as Uint16Array, s);
    yield bytes;
  }
}
