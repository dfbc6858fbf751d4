/** MUL_MAT_ID on WebGPU against the CPU reference. */
import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16, I32 } = GgmlType;

Deno.test(
  { name: "webgpu MUL_MAT_ID: f32/f16/bf16 experts, broadcast b rows, strided paths", ignore },
  async () => {
    const b = gc!.bed;
    for (
      const [ta, k, m, experts, used, ne11, tokens, off] of [
        [F16, 64, 20, 4, 2, 1, 3, 0],
        [F32, 36, 9, 3, 2, 2, 2, 0],
        [BF16, 32, 17, 5, 3, 3, 2, 2],
      ] as number[][]
    ) {
      const a = b.tensor(ta, [k, m, experts], { offset: off });
      const x = b.tensor(F32, [k, ne11, tokens]);
      const ids = b.tensor(I32, [used, tokens], {
        values: Array.from({ length: used * tokens }, (_, i) => (i * 7 + 1) % experts),
      });
      await gc!.check(
        b.node(GgmlOp.MUL_MAT_ID, F32, [m, used, tokens], [a, x, ids]),
        ta === F32 ? 1e-10 : 1e-4,
      );
    }
  },
);
