import { GgmlOp, GgmlType, GluOp, GpuCheck, UnaryOp } from "./testing.ts";
import { f32Param } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16 } = GgmlType;

Deno.test({ name: "webgpu UNARY sub-ops f32/f16/bf16 against the cpu", ignore }, async () => {
  const b = gc!.bed;
  const own = ["GELU", "GELU_QUICK", "GELU_ERF", "SILU"];
  for (const [name, sub] of Object.entries(UnaryOp)) {
    if (name === "XIELU") continue;
    // f32 and one half type per sub-op (alternating), to keep the test short on llvmpipe
    const half = own.includes(name) || sub % 2 === 0 ? F16 : BF16;
    for (const t of [F32, half]) {
      const x = b.tensor(t, [13, 3], { lo: -4, hi: 4, offset: t === F32 ? 0 : 2 });
      await gc!.check(b.node(GgmlOp.UNARY, t, [13, 3], [x], [sub]), 1e-5);
    }
  }
  // f16 source into f32, permuted
  const h = b.tensor(F16, [5, 4], { permute: [1, 0, 2, 3] });
  await gc!.check(b.node(GgmlOp.UNARY, F32, [5, 4], [h], [UnaryOp.ABS]), 1e-6);
});

Deno.test({ name: "webgpu GLU sub-ops fused, swapped and split", ignore }, async () => {
  const b = gc!.bed;
  for (const [name, sub] of Object.entries(GluOp)) {
    const oai = name === "SWIGLU_OAI";
    const params = oai ? [f32Param(1.702), f32Param(7)] : [];
    for (const [t, swapped] of [[F32, 0], [oai ? F32 : F16, 1]]) {
      const x = b.tensor(t, [10, 3, 2], { lo: -3, hi: 3 });
      await gc!.check(b.node(GgmlOp.GLU, t, [5, 3, 2], [x], [sub, swapped, ...params]), 1e-5);
    }
    const x = b.tensor(F32, [7, 3], { lo: -3, hi: 3 });
    const g = b.tensor(F32, [7, 3], { lo: -3, hi: 3 });
    await gc!.check(b.node(GgmlOp.GLU, F32, [7, 3], [x, g], [sub, 0, ...params]), 1e-5);
  }
});
