import { assertEquals } from "../../tests/asserts.ts";
import { GgmlType } from "./types.ts";
import {
  canRepeat,
  contiguousStrides,
  isContiguous,
  isContiguous1,
  isPermuted,
  isTransposed,
  nbytes,
  nbytesChecked,
  newTensor,
  opF32,
  opI32,
  rowSize,
  setOpF32,
  setOpI32,
} from "./tensor.ts";

Deno.test("nbytes follows ggml_nbytes for plain, strided and blocked types", () => {
  const t = newTensor({ type: GgmlType.F32, ne: [4, 3, 2, 1] });
  assertEquals(t.nb, [4, 16, 48, 96]);
  assertEquals(nbytes(t), 96);
  // A transposed view spans the same bytes.
  const tr = newTensor({ type: GgmlType.F32, ne: [3, 4, 2, 1], nb: [16, 4, 48, 96] });
  assertEquals(nbytes(tr), 4 + 2 * 16 + 3 * 4 + 1 * 48);
  const q = newTensor({ type: GgmlType.Q8_0, ne: [64, 2, 1, 1] });
  assertEquals(q.nb, [34, 68, 136, 136]);
  assertEquals(nbytes(q), 136);
  assertEquals(rowSize(GgmlType.Q4_0, 64), 36);
  assertEquals(nbytes(newTensor({ type: GgmlType.F16, ne: [0, 5, 1, 1] })), 0);
  assertEquals(contiguousStrides(GgmlType.BF16, [8, 2, 2, 2]), [2, 16, 32, 64]);
});

Deno.test("nbytesChecked refuses sizes past 2^53", () => {
  const t = {
    type: GgmlType.F32,
    ne: [0xffffffff, 0xffffffff, 2, 1],
    nb: [0xffffffff, 0xffffffff, 0xffffffff, 4],
  };
  assertEquals(nbytesChecked(t), -1);
  assertEquals(nbytesChecked({ type: 0, ne: [2, 1, 1, 1], nb: [4, 8, 8, 8] }), 8);
});

Deno.test("contiguity predicates match ggml's", () => {
  const c = newTensor({ type: GgmlType.F32, ne: [4, 3, 2, 1] });
  assertEquals([isContiguous(c), isTransposed(c), isPermuted(c)], [true, false, false]);
  const rowGap = newTensor({ type: GgmlType.F32, ne: [4, 3, 2, 1], nb: [4, 32, 96, 192] });
  assertEquals([isContiguous(rowGap), isContiguous1(rowGap)], [false, true]);
  const tr = newTensor({ type: GgmlType.F32, ne: [3, 4, 1, 1], nb: [16, 4, 48, 48] });
  assertEquals([isContiguous(tr), isTransposed(tr), isPermuted(tr)], [false, true, true]);
  // Dims of size 1 may carry any stride.
  const one = newTensor({ type: GgmlType.F32, ne: [4, 1, 1, 1], nb: [4, 999, 7, 3] });
  assertEquals(isContiguous(one), true);
});

Deno.test("op_params read and write as i32 and f32", () => {
  const t = newTensor({ type: GgmlType.F32, ne: [1, 1, 1, 1] });
  setOpI32(t, 0, -5);
  setOpF32(t, 1, 0.125);
  assertEquals([opI32(t, 0), opF32(t, 1)], [-5, 0.125]);
});

Deno.test("canRepeat is ggml_can_repeat", () => {
  const a = { ne: [8, 6, 4, 2] }, b = { ne: [4, 3, 1, 2] };
  assertEquals([canRepeat(b, a), canRepeat({ ne: [3, 1, 1, 1] }, a)], [true, false]);
});
