/** ROPE on WebGPU against the CPU reference: every mode, f32/f16, freq factors, YaRN, n_offs. */
import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, I32 } = GgmlType;

Deno.test(
  { name: "webgpu ROPE normal/neox/mrope/imrope/vision, ff, YaRN, large positions", ignore },
  async () => {
    const b = gc!.bed;
    const cases: [number, number, number][] = [[0, 12, 0], [2, 12, 0], [0, 8, 4], [2, 8, 2], [8, 16, 0], [
      40,
      16,
      0,
    ], [
      24,
      8,
      0,
    ]];
    let i = 0;
    for (const [mode, nDims, nOffs] of cases) {
      for (const type of [F32, F16]) {
        const yarn = (i++ % 2) === 1;
        const mr = (mode & 8) !== 0;
        const [d, heads, tokens] = [16, 3, 5];
        const npos = tokens * (mr ? 4 : 1);
        const a = b.tensor(type, [d, heads, tokens], { rowGap: 2, offset: type === F16 ? 2 : 4 });
        const pos = b.tensor(I32, [npos], {
          values: Array.from({ length: npos }, (_, k) => [0, 3, 17, 250, 40960, 9, 11][k % 7]),
        });
        const ff = yarn ? b.tensor(F32, [nDims / 2], { lo: 1, hi: 4 }) : null;
        const p = [
          0,
          nDims,
          mode,
          0,
          4096,
          f32Param(10000),
          f32Param(yarn ? 0.25 : 1),
          f32Param(yarn ? 1 : 0),
        ];
        p.push(f32Param(1), f32Param(32), f32Param(1), 2, 2, 2, 2, nOffs);
        await gc!.check(
          b.node(GgmlOp.ROPE, type, [d, heads, tokens], [a, pos, ff], p),
          type === F32 ? 1e-9 : 1e-6,
        );
      }
    }
  },
);

Deno.test(
  { name: "webgpu ROPE in place, odd row length, rotation not at the row start", ignore },
  async () => {
    const b = gc!.bed;
    for (const type of [F32, F16]) {
      for (const mode of [0, 2]) {
        const [d, heads, tokens] = [19, 2, 3];
        const a = b.tensor(type, [d, heads, tokens]);
        const pos = b.tensor(I32, [tokens], { values: [5, 70, 3000] });
        const p = [0, 8, mode, 0, 4096, f32Param(10000), f32Param(1), f32Param(0), f32Param(1), f32Param(32)];
        p.push(f32Param(1), 0, 0, 0, 0, 6);
        const out = b.node(GgmlOp.ROPE, type, [d, heads, tokens], [a, pos, null], p);
        await gc!.check(out, type === F32 ? 1e-9 : 1e-6);
        // the same node writing over its source
        const inPlace = b.node(GgmlOp.ROPE, type, [d, heads, tokens], [a, pos, null], p);
        inPlace.buffer = a.buffer;
        inPlace.offset = a.offset;
        await gc!.check(inPlace, type === F32 ? 1e-9 : 1e-6);
      }
    }
  },
);
