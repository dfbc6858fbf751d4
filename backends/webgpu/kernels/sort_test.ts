/** ARGSORT and TOP_K on WebGPU against the CPU reference (exact index order). */
import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, I32 } = GgmlType;

Deno.test({ name: "webgpu ARGSORT ascending/descending, odd lengths", ignore }, async () => {
  const b = gc!.bed;
  for (
    const [ne, order] of [[[16, 3, 2], 0], [[60, 5], 1], [[1025, 2], 0], [[3, 2], 1]] as [number[], number][]
  ) {
    const a = b.tensor(F32, ne, { rowGap: 1 });
    await gc!.check(b.node(GgmlOp.ARGSORT, I32, ne, [a], [order]), 0);
  }
});

Deno.test({ name: "webgpu TOP_K (radix select, then sorted, first two swapped)", ignore }, async () => {
  const b = gc!.bed;
  for (
    const [ne, k] of [[[16, 3, 2], 3], [[60, 5], 1], [[2049, 2], 100], [[3, 2], 3]] as [number[], number][]
  ) {
    const a = b.tensor(F32, ne, { rowGap: 1 });
    await gc!.check(b.node(GgmlOp.TOP_K, I32, [k, ...ne.slice(1)], [a]), 0);
  }
});
