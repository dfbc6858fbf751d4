import { assert } from "../../tests/asserts.ts";
import { GraphBuilder } from "../../protocol/graph/builder.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { weightChunks } from "./weights.ts";

function all(chunks: Iterable<Uint8Array>): Uint8Array {
  const parts = [...chunks];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

Deno.test("weights are deterministic, chunk-independent, and within center ± scale", () => {
  const b = new GraphBuilder();
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16]) {
    const t = b.newTensor2d(type, 100, 33);
    const init = { tensor: t, layer: 0, scale: 0.5, center: 1 };
    const one = all(weightChunks(init, 42, 3));
    assert.deepEqual(all(weightChunks(init, 42, 3, 1000)), one, "chunking does not change the values");
    assert.notDeepEqual(all(weightChunks(init, 42, 4)), one, "another weight differs");
    assert.notDeepEqual(all(weightChunks(init, 43, 3)), one, "another seed differs");
    const dv = new DataView(one.buffer);
    let sum = 0;
    const n = 3300, size = type === GgmlType.F32 ? 4 : 2;
    for (let i = 0; i < n; i++) {
      const x = type === GgmlType.F32
        ? dv.getFloat32(i * size, true)
        : type === GgmlType.F16
        ? dv.getFloat16(i * size, true)
        : new Float32Array(new Uint32Array([dv.getUint16(i * size, true) << 16]).buffer)[0];
      assert.ok(x >= 0.49 && x <= 1.51, `${x}`);
      sum += x;
    }
    assert.ok(Math.abs(sum / n - 1) < 0.02, `mean ${sum / n}`);
  }
});
