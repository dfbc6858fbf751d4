import { assertEquals } from "../../tests/asserts.ts";
import { GGML_OP_COUNT, GgmlOp, GLU_NAMES, GluOp, OP_NAMES, opDesc, UNARY_NAMES, UnaryOp } from "./ops.ts";
import { GGML_TYPE_COUNT, GgmlType, typeInfo, typeName, TYPES } from "./types.ts";

Deno.test("all 43 type numbers are in the table, with ggml's block sizes", () => {
  assertEquals(GGML_TYPE_COUNT, 43);
  assertEquals(TYPES.length, 43);
  const expect: Record<string, [number, number, boolean]> = {
    f32: [1, 4, false],
    f16: [1, 2, false],
    q4_0: [32, 18, true],
    q4_1: [32, 20, true],
    q5_0: [32, 22, true],
    q5_1: [32, 24, true],
    q8_0: [32, 34, true],
    q8_1: [32, 36, true],
    q2_K: [256, 84, true],
    q3_K: [256, 110, true],
    q4_K: [256, 144, true],
    q5_K: [256, 176, true],
    q6_K: [256, 210, true],
    q8_K: [256, 292, true],
    iq4_nl: [32, 18, true],
    i8: [1, 1, false],
    i16: [1, 2, false],
    i32: [1, 4, false],
    i64: [1, 8, false],
    f64: [1, 8, false],
    bf16: [1, 2, false],
    mxfp4: [32, 17, true],
    nvfp4: [64, 36, true],
    q1_0: [128, 18, true],
    q2_0: [64, 18, true],
  };
  for (const [name, [bs, ts, q]] of Object.entries(expect)) {
    const t = TYPES.findIndex((x) => x.name === name);
    assertEquals([TYPES[t].blockSize, TYPES[t].typeSize, TYPES[t].quantized], [bs, ts, q], name);
  }
  assertEquals([GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.I32, GgmlType.I64, GgmlType.BF16], [
    0,
    1,
    8,
    26,
    27,
    30,
  ]);
  assertEquals([GgmlType.TQ1_0, GgmlType.MXFP4, GgmlType.NVFP4, GgmlType.Q1_0, GgmlType.Q2_0], [
    34,
    39,
    40,
    41,
    42,
  ]);
  for (const removed of [4, 5, 31, 32, 33, 36, 37, 38]) assertEquals(typeInfo(removed), undefined);
  assertEquals(typeInfo(43), undefined);
  assertEquals(typeName(29), "iq1_m");
});

Deno.test("all 101 ops numbered as at d99724f2, with unary and glu sub-ops", () => {
  assertEquals(GGML_OP_COUNT, 101);
  assertEquals(OP_NAMES.length, 101);
  assertEquals(
    [GgmlOp.NONE, GgmlOp.ADD, GgmlOp.MUL_MAT, GgmlOp.CPY, GgmlOp.GET_ROWS, GgmlOp.SET_ROWS, GgmlOp.SOFT_MAX],
    [0, 2, 29, 34, 40, 42, 46],
  );
  assertEquals([GgmlOp.ROPE, GgmlOp.FLASH_ATTN_EXT, GgmlOp.UNARY, GgmlOp.GLU, GgmlOp.TOP_K], [
    48,
    74,
    91,
    100,
    70,
  ]);
  assertEquals([OP_NAMES[85], OP_NAMES[86], OP_NAMES[87], OP_NAMES[88], OP_NAMES[90]], [
    "SOLVE_TRI",
    "GATED_DELTA_NET",
    "LIGHTNING_INDEXER",
    "DSV4_HC_COMB",
    "DSV4_HC_POST",
  ]);
  assertEquals(UNARY_NAMES.length, 22);
  assertEquals([UnaryOp.SILU, UnaryOp.GELU_ERF, UnaryOp.XIELU, UnaryOp.TRUNC], [10, 16, 17, 21]);
  assertEquals(GLU_NAMES, ["REGLU", "GEGLU", "SWIGLU", "SWIGLU_OAI", "GEGLU_ERF", "GEGLU_QUICK"]);
  assertEquals(GluOp.SWIGLU, 2);
  assertEquals([opDesc(GgmlOp.UNARY, UnaryOp.SILU), opDesc(GgmlOp.GLU, GluOp.GEGLU), opDesc(GgmlOp.ADD, 0)], [
    "SILU",
    "GEGLU",
    "ADD",
  ]);
});
