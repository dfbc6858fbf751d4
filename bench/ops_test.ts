/** The op bench on the CPU device: a case, the anchor presets' graphs, and the graph-cost figures. */
import { assert, assertEquals } from "../tests/asserts.ts";
import { CpuDevice } from "../backends/cpu/device.ts";
import { benchCase, benchGraph, mulMatCase, presetCases, softMaxCase } from "./ops.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { GraphBuilder } from "../protocol/graph/builder.ts";

Deno.test("bench ops: a MUL_MAT and a SOFT_MAX case time on the cpu device", async () => {
  const dev = new CpuDevice({ threads: 1 });
  const r = await benchCase(dev, mulMatCase(GgmlType.F16, 32, 64, 2), 3, 0.01);
  assertEquals(r.reps, 3);
  assert.ok(r.us > 0 && r.gbps > 0 && r.tflops > 0, JSON.stringify(r));
  const s = await benchCase(dev, softMaxCase([16, 4, 2, 1], 10), 2, 0.01);
  assert.ok(s.us > 0 && s.vsCuda! > 0);
  await dev.close();
});

Deno.test("bench ops: every anchor preset builds a graph", () => {
  for (const c of presetCases()) {
    const b = new GraphBuilder();
    const g = b.build(c.build(b));
    assert.ok(g.nodes.length >= 1, c.name);
  }
});

Deno.test("bench ops: graph costs, including the round trip through a loopback server", async () => {
  const dev = new CpuDevice({ threads: 1 });
  const g = await benchGraph(dev, 12, 0.01);
  assertEquals(g.nodes, 12);
  assert.ok(g.usPerNode > 0 && g.encodeUs > 0 && g.roundTripUs > 0, JSON.stringify(g));
  await dev.close();
});
