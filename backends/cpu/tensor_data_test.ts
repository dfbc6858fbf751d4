import { newTensor } from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { assertEquals } from "../../tests/asserts.ts";
import { copyRowRaw, TensorData } from "./tensor_data.ts";

const { F32, F16, BF16, I32, I64 } = GgmlType;

function onBytes(type: number, ne: number[], nb?: number[], offset = 0, size = 4096) {
  const t = newTensor({ type, ne, nb, offset });
  t.buffer = { bytes: new Uint8Array(size) } as unknown as typeof t.buffer;
  return t;
}

Deno.test("TensorData: set/get and rows for every type, aligned and misaligned", () => {
  for (const type of [F32, F16, BF16, I32, I64]) {
    for (const offset of [0, 8, 1, 3]) {
      const size = type === I64 ? 8 : type === F32 || type === I32 ? 4 : 2;
      const t = onBytes(type, [5, 3, 2, 1], undefined, offset);
      const T = new TensorData(t);
      assertEquals(T.aligned, offset % size === 0);
      const vals = [0, 1, -2, 3, 4.5, -7, 1024, 2048, -0.25, 96];
      let k = 0;
      for (let i2 = 0; i2 < 2; i2++) {
        for (let i1 = 0; i1 < 3; i1++) {
          for (let i0 = 0; i0 < 5; i0++) {
            const v = vals[k++ % vals.length];
            const want = type === I32 || type === I64 ? Math.trunc(v) + 0 : v;
            T.set(i0, i1, i2, 0, want);
            assertEquals(T.get(i0, i1, i2, 0), want, `type ${type} offset ${offset}`);
          }
        }
      }
      const row = new Float32Array(5);
      T.readRow(row, 2, 1, 0);
      for (let i = 0; i < 5; i++) assertEquals(row[i], T.get(i, 2, 1, 0));
      row.set([9, 8, 7, 6, 5]);
      T.writeRow(row, 0, 0, 0, 1, 2, 3); // columns 2..4 from row[1..3]
      assertEquals([T.get(2, 0, 0, 0), T.get(3, 0, 0, 0), T.get(4, 0, 0, 0)], [8, 7, 6]);
    }
  }
});

Deno.test("TensorData: i64 beyond 32 bits and negative values are exact", () => {
  const T = new TensorData(onBytes(I64, [4]));
  const vals = [2 ** 40 + 3, -(2 ** 33) - 1, -1, 2 ** 53 - 1];
  vals.forEach((v, i) => T.set(i, 0, 0, 0, v));
  assertEquals(vals.map((_, i) => T.get(i, 0, 0, 0)), vals);
  const dv = T.views.dv;
  assertEquals(dv.getBigInt64(8, true), -(2n ** 33n) - 1n);
});

Deno.test("TensorData: conversions round as ggml (f16 RNE, bf16, i32 truncation)", () => {
  const x = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -2.7, 1e10]);
  const h = new TensorData(onBytes(F16, [4]));
  h.writeRow(x, 0, 0, 0);
  assertEquals(h.get(0, 0, 0, 0), 1);
  assertEquals(h.get(1, 0, 0, 0), 1 + 2 ** -9);
  const i = new TensorData(onBytes(I32, [4]));
  i.writeRow(x, 0, 0, 0);
  assertEquals([i.get(2, 0, 0, 0), i.get(3, 0, 0, 0)], [-2, -2147483648]);
});

Deno.test("copyRowRaw moves bytes (NaN payloads survive), strided and packed", () => {
  const s = onBytes(F32, [4, 2], [8, 32, 64, 64]); // every other element
  const d = onBytes(F32, [4, 2]);
  const S = new TensorData(s), D = new TensorData(d);
  S.views.u8.fill(0);
  const dv = S.views.dv;
  dv.setUint32(8, 0x7fa00001, true); // a signalling NaN at element 1 of row 0
  dv.setFloat32(16, 3.5, true);
  copyRowRaw(D, 0, 0, 0, S, 0, 0, 0);
  assertEquals(D.views.dv.getUint32(4, true), 0x7fa00001);
  assertEquals(D.get(2, 0, 0, 0), 3.5);
});
