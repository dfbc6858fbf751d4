/** FLASH_ATTN_EXT on WebGPU against the CPU reference: K/V types, mask, sinks, ALiBi, softcap, GQA. */
import { nbytes, newTensor } from "../../../protocol/graph/tensor.ts";
import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16 } = GgmlType;

async function fa(
  dk: number,
  dv: number,
  nq: number,
  h: number,
  hkv: number,
  nkv: number,
  kt: number,
  vt: number,
  opts: { mask?: boolean; sinks?: boolean; maxBias?: number; softcap?: number; bq?: number; kOff?: number } =
    {},
): Promise<void> {
  const b = gc!.bed;
  const bq = opts.bq ?? 1;
  const q = b.tensor(F32, [dk, nq, h, bq]);
  const k = b.tensor(kt, [dk, nkv, hkv, bq], { offset: opts.kOff ?? 0 });
  const v = b.tensor(vt, [dv, nkv, hkv, bq]);
  let mask = null;
  if (opts.mask) {
    const vals = Array.from(
      { length: nkv * (nq + 1) },
      (_, i) => (i * 7919) % 5 === 0 ? -Infinity : Math.sin(i),
    );
    mask = b.tensor(F16, [nkv, nq + 1, 1, 1], { values: vals });
  }
  const sinks = opts.sinks ? b.tensor(F32, [h]) : null;
  const out = b.node(GgmlOp.FLASH_ATTN_EXT, F32, [dv, h, nq, bq], [q, k, v, mask, sinks], [
    f32Param(1 / Math.sqrt(dk)),
    f32Param(opts.maxBias ?? 0),
    f32Param(opts.softcap ?? 0),
  ]);
  await gc!.check(out, 1e-6);
}

Deno.test({ name: "webgpu FLASH_ATTN_EXT: f16/f32/bf16 K and V, mask, GQA, odd sizes", ignore }, async () => {
  await fa(64, 64, 3, 4, 2, 77, F16, F16, { mask: true, kOff: 2 });
  await fa(64, 64, 3, 4, 2, 77, F16, F16, { mask: true });
  await fa(64, 64, 2, 2, 1, 50, F32, F16, { mask: true });
  await fa(40, 24, 2, 2, 1, 33, F32, F32, { mask: true, bq: 2, kOff: 4 });
  await fa(32, 32, 1, 2, 2, 40, BF16, F16);
  // value rows read four at a time (DV a multiple of 128): f32 and bf16 V
  await fa(128, 128, 2, 2, 1, 45, BF16, F32, { mask: true });
  await fa(64, 128, 1, 2, 2, 40, F16, BF16, { sinks: true });
});

Deno.test({ name: "webgpu FLASH_ATTN_EXT: sinks, ALiBi, logit softcap, head size 256", ignore }, async () => {
  await fa(64, 64, 2, 4, 4, 50, F16, F16, { mask: true, sinks: true, maxBias: 8 });
  await fa(32, 32, 2, 2, 1, 45, F16, F16, { mask: true, softcap: 30 });
  await fa(256, 256, 1, 2, 1, 20, F16, F16, { mask: true });
});

Deno.test(
  { name: "webgpu FLASH_ATTN_EXT decode: keys split over workgroups, then combined", ignore },
  async () => {
    await fa(128, 128, 1, 2, 1, 700, F16, F16, { mask: true, sinks: true });
    await fa(64, 64, 1, 1, 1, 1000, F32, F32, { mask: true, maxBias: 4 });
  },
);

/**
 * MLA (DeepSeek): V is a view of the first DV columns of K, and the output lives in the same buffer,
 * so K and V overlap in a buffer the dispatch writes and must be served by one binding.
 */
async function faVofK(dk: number, dv: number, nq: number, h: number, nkv: number): Promise<void> {
  const b = gc!.bed;
  const q = b.tensor(F32, [dk, nq, h, 1]);
  const kShape = newTensor({ type: F16, ne: [dk, nkv, 1, 1] });
  const outShape = newTensor({ type: F32, ne: [dv, h, nq, 1] });
  const outOff = Math.ceil((nbytes(kShape) + 40) / 256) * 256;
  const arena = b.tensor(F16, [(outOff + nbytes(outShape)) / 2 + 32]);
  const k = newTensor({ type: F16, ne: kShape.ne, op: GgmlOp.VIEW, viewSrc: arena, src: [arena] });
  const v = newTensor({ type: F16, ne: [dv, nkv, 1, 1], nb: k.nb, op: GgmlOp.VIEW, viewSrc: k, src: [k] });
  for (const t of [k, v]) [t.buffer, t.offset] = [arena.buffer, 0];
  const vals = Array.from({ length: nkv * nq }, (_, i) => (i * 7919) % 5 === 0 ? -Infinity : Math.sin(i));
  const mask = b.tensor(F16, [nkv, nq, 1, 1], { values: vals });
  const out = newTensor({
    type: F32,
    ne: outShape.ne,
    op: GgmlOp.FLASH_ATTN_EXT,
    src: [q, k, v, mask, null],
    opParams: new Int32Array([f32Param(1 / Math.sqrt(dk)), f32Param(0), f32Param(0)]) as unknown as number[],
  });
  [out.buffer, out.offset, out.name] = [arena.buffer, outOff, "out"];
  await gc!.check(out, 1e-6);
}

Deno.test({ name: "webgpu FLASH_ATTN_EXT: V a view of K (MLA) in the buffer written", ignore }, async () => {
  await faVofK(96, 64, 9, 4, 30); // one pass (keys fit one block: no split)
  await faVofK(96, 64, 9, 4, 70); // split
  await faVofK(160, 128, 1, 2, 300); // decode: keys split, then combined
});
