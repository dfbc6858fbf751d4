import { assert, assertThrows } from "../../tests/asserts.ts";
import { ValidationError } from "../errors.ts";
import { GgmlPrec, GraphBuilder, RopeType, touchGraph, useCounts } from "./builder.ts";
import { GgmlOp, GluOp, UnaryOp } from "./ops.ts";
import { opF32, opI32, type Tensor, TensorFlag } from "./tensor.ts";
import { GgmlType } from "./types.ts";

const F32 = GgmlType.F32, F16 = GgmlType.F16;

function ints(t: Tensor): number[] {
  return [...new Int32Array(t.opParams.buffer, t.opParams.byteOffset, 16)];
}

Deno.test("builder: new tensors are contiguous, with unique ids", () => {
  const b = new GraphBuilder();
  const a = b.newTensor3d(F16, 8, 3, 2, "a");
  assert.deepEqual(a.ne, [8, 3, 2, 1]);
  assert.deepEqual(a.nb, [2, 16, 48, 96]);
  assert.equal(a.op, GgmlOp.NONE);
  const c = b.newTensor1d(F32, 4);
  assert.ok(a.id > 0n && c.id > a.id);
});

Deno.test("builder: views, reshapes, permute and transpose as ggml lays them out", () => {
  const b = new GraphBuilder();
  const a = b.newTensor2d(F32, 6, 4, "a");
  const v = b.view2d(a, 3, 2, 24, 8);
  assert.equal(v.op, GgmlOp.VIEW);
  assert.deepEqual(v.ne, [3, 2, 1, 1]);
  assert.deepEqual(v.nb, [4, 24, 48, 48]);
  assert.equal(v.viewSrc, a);
  assert.equal(v.viewOffs, 8);
  assert.equal(new DataView(v.opParams.buffer).getBigUint64(0, true), 8n, "offset as size_t in op_params");
  // a view of a view points at the base, offsets added
  const vv = b.view1d(v, 2, 4);
  assert.equal(vv.viewSrc, a);
  assert.equal(vv.viewOffs, 12);
  assert.equal(vv.src[0], v);
  const r = b.reshape3d(a, 3, 2, 4);
  assert.equal(r.op, GgmlOp.RESHAPE);
  assert.deepEqual(r.nb, [4, 12, 24, 96]);
  assert.equal(r.name, "a (reshaped)");
  const p = b.permute(r, 0, 2, 1, 3);
  assert.deepEqual(p.ne, [3, 4, 2, 1]);
  assert.deepEqual(p.nb, [4, 24, 12, 96]);
  assert.deepEqual(ints(p).slice(0, 4), [0, 2, 1, 3]);
  assert.equal(p.viewSrc, a);
  const t = b.transpose(a);
  assert.deepEqual(t.ne, [4, 6, 1, 1]);
  assert.deepEqual(t.nb, [24, 4, 96, 96]);
  assertThrows(() => b.reshape2d(t, 24, 1), ValidationError);
  assertThrows(() => b.view1d(a, 30, 0), ValidationError);
  assertThrows(() => b.permute(a, 0, 0, 1, 2), ValidationError);
});

Deno.test("builder: op_params of rope, soft_max, flash_attn_ext, glu, rms_norm, scale", () => {
  const b = new GraphBuilder();
  const x = b.newTensor3d(F32, 64, 4, 2, "x");
  const pos = b.newTensor1d(GgmlType.I32, 2, "pos");
  // the values a llama-like graph of ggml's own client carries (shared/traces/public/MODEL)
  const r = b.ropeExt(x, pos, 64, RopeType.NEOX, {
    nCtxOrig: 4096,
    freqBase: 10000,
    freqScale: 1,
    extFactor: 0,
    attnFactor: 1,
    betaFast: 32,
    betaSlow: 1,
  });
  assert.deepEqual(
    ints(r),
    [0, 64, 2, 0, 4096, 1176256512, 1065353216, 0, 1065353216, 1107296256, 1065353216, 0, 0, 0, 0, 0],
  );
  assert.equal(r.src[1], pos);
  assertThrows(() => b.ropeExt(x, b.newTensor1d(GgmlType.I32, 3), 64, 0), ValidationError);

  const kq = b.newTensor3d(F32, 32, 2, 4);
  const mask = b.newTensor2d(F16, 32, 2);
  const sm = b.softMaxExt(kq, mask, 0.125, 0);
  assert.equal(opF32(sm, 0), 0.125);
  assert.equal(opF32(sm, 1), 0);
  assert.equal(sm.src[1], mask);

  const q = b.permute(x, 0, 2, 1, 3);
  const k = b.newTensor3d(F16, 64, 32, 2);
  const fa = b.flashAttnExtSetPrec(b.flashAttnExt(q, k, k, mask, 0.125), GgmlPrec.F32);
  assert.deepEqual(fa.ne, [64, 4, 2, 1]);
  assert.deepEqual(ints(fa).slice(0, 4), [1040187392, 0, 0, 10]);
  assert.deepEqual([fa.src[0], fa.src[1], fa.src[2], fa.src[3]], [q, k, k, mask]);

  const g1 = b.newTensor2d(F32, 512, 2), g2 = b.newTensor2d(F32, 512, 2);
  const sw = b.swigluSplit(g1, g2);
  assert.deepEqual(ints(sw).slice(0, 2), [GluOp.SWIGLU, 0]);
  assert.deepEqual(sw.ne, [512, 2, 1, 1]);
  const fused = b.geglu(g1);
  assert.deepEqual(fused.ne, [256, 2, 1, 1]);
  assert.equal(fused.src[1], null);
  assert.equal(opI32(b.silu(g1), 0), UnaryOp.SILU);

  const n = b.rmsNorm(g1, 1e-5);
  assert.equal(opI32(n, 0), 925353388);
  const s = b.scale(g1, 3, 0.5);
  assert.deepEqual([opF32(s, 0), opF32(s, 1)], [3, 0.5]);
});

Deno.test("builder: get_rows, set_rows, cpy, mul_mat shapes and sources", () => {
  const b = new GraphBuilder();
  const emb = b.newTensor2d(F16, 16, 100, "emb");
  const ids = b.newTensor1d(GgmlType.I32, 3, "ids");
  const rows = b.getRows(emb, ids);
  assert.equal(rows.type, F32);
  assert.deepEqual(rows.ne, [16, 3, 1, 1]);
  assertThrows(() => b.getRows(emb, b.newTensor1d(GgmlType.I64, 3)), ValidationError);

  const cache = b.newTensor2d(F16, 16, 32, "cache");
  const idx = b.newTensor1d(GgmlType.I64, 3, "idx");
  const set = b.setRows(cache, rows, idx);
  assert.equal(set.op, GgmlOp.SET_ROWS);
  assert.deepEqual([set.src[0], set.src[1], set.src[2]], [rows, idx, cache]);
  assert.equal(set.viewSrc, cache);
  assert.equal(set.type, F16);

  const dst = b.newTensor2d(F16, 16, 3, "dst");
  const c = b.cpy(rows, dst);
  assert.equal(c.viewSrc, dst);
  assert.deepEqual([c.src[0], c.src[1]], [rows, dst]);
  assert.equal(c.name, "dst (copy of )");

  const w = b.newTensor2d(F16, 16, 8);
  const mm = b.mulMat(w, rows);
  assert.deepEqual(mm.ne, [8, 3, 1, 1]);
  assert.equal(mm.type, F32);
  assertThrows(() => b.mulMat(b.transpose(w), rows), ValidationError);
  assertThrows(() => b.add(rows, b.newTensor1d(F32, 5)), ValidationError);
});

Deno.test("builder: expand orders sources first, marks COMPUTE, and every build has a new uid", () => {
  const b = new GraphBuilder();
  const w = b.newTensor2d(F32, 4, 4, "w");
  const x = b.setInput(b.newTensor1d(F32, 4, "x"));
  const h = b.mulMat(w, x);
  const y = b.add(h, h);
  const z = b.scale(y, 2);
  const g = b.build(z);
  assert.deepEqual(g.nodes, [h, y, z]);
  assert.deepEqual(g.tensors, [w, x, h, y, z]);
  for (const n of g.nodes) assert.ok(n.flags & TensorFlag.COMPUTE);
  assert.equal(w.flags & TensorFlag.COMPUTE, 0);
  assert.ok(z.flags & TensorFlag.OUTPUT);
  assert.equal(useCounts(g).get(h), 2);
  const g2 = b.build(z);
  assert.notEqual(g2.uid, g.uid);
  const before = g2.uid;
  touchGraph(g2);
  assert.notEqual(g2.uid, before);
});
