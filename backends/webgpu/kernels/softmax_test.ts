/** SOFT_MAX and DIAG_MASK_INF on WebGPU against the CPU reference. */
import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16 } = GgmlType;

Deno.test(
  { name: "webgpu SOFT_MAX: f32/f16 masks broadcast, scale, ALiBi, sinks, strided", ignore },
  async () => {
    const b = gc!.bed;
    for (
      const [ne, mt, sinks, maxBias, m23] of [
        [[10, 3, 4, 1], F32, true, 8, [1, 1]],
        [[700, 5, 4, 2], F16, false, 0, [2, 1]],
        [[33, 3, 6, 1], null, true, 0, [1, 1]],
        [[300, 2, 3, 1], F32, false, 2, [3, 1]],
      ] as [number[], number | null, boolean, number, number[]][]
    ) {
      const a = b.tensor(F32, ne, { rowGap: 3 });
      const mask = mt !== null ? b.tensor(mt, [ne[0], ne[1] + 2, m23[0], m23[1]], { lo: -2, hi: 2 }) : null;
      const sk = sinks ? b.tensor(F32, [ne[2]]) : null;
      await gc!.check(
        b.node(GgmlOp.SOFT_MAX, F32, ne, [a, mask, sk], [f32Param(0.7), f32Param(maxBias)]),
        1e-10,
      );
    }
    // a fully masked row is NaN, as on the CPU
    const a = b.tensor(F32, [4, 2]);
    const mask = b.tensor(F32, [4, 2], {
      values: [0, 0, -Infinity, 0, -Infinity, -Infinity, -Infinity, -Infinity],
    });
    await gc!.check(b.node(GgmlOp.SOFT_MAX, F32, [4, 2], [a, mask], [f32Param(1), f32Param(0)]), 1e-10);
  },
);

Deno.test({ name: "webgpu DIAG_MASK_INF", ignore }, async () => {
  const b = gc!.bed;
  const a = b.tensor(F32, [6, 4, 2], { offset: 8 });
  await gc!.check(b.node(GgmlOp.DIAG_MASK_INF, F32, [6, 4, 2], [a], [1]), 0);
});
