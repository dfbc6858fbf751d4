/**
 * Replays every recording of ggml's own client in ../shared/traces/public against graphwire's
 * server on each device this host has (cpu always; webgpu — software adapters included — and cuda
 * when present), by the rules of ../shared/traces/README.md. A trace is run on a device when the
 * device supports every node of its graphs; the count of traces left out per device is printed,
 * and for devices in FULL_COVERAGE it must be zero.
 */

import { discoverAll } from "../backends/all.ts";
import type { Device } from "../backends/device.ts";
import { RpcServer } from "../protocol/server.ts";
import { listenTcp } from "../protocol/wire/transport.ts";
import { assert } from "./asserts.ts";
import { listTraces, parseTrace, replay, unsupportedNodes } from "./replay.ts";

const TRACE_ROOT = new URL("../../shared/traces/public", import.meta.url).pathname;

/** Devices whose op set must cover every recording (names as the registry gives them). */
const FULL_COVERAGE: ReadonlySet<string> = new Set(["cpu", "webgpu:0"]);

let traces: string[] = [];
try {
  traces = listTraces(TRACE_ROOT);
} catch {
  // handled by the test below
}

const { devices } = await discoverAll({ threads: 2 });

Deno.test("the trace recordings are present", () => {
  assert.ok(traces.length > 100, `expected the recordings under ${TRACE_ROOT}, found ${traces.length}`);
});

for (const device of devices) {
  Deno.test(`replay ggml's recorded connections on ${device.name}`, async (t) => {
    await replayAll(t, device);
  });
}

async function replayAll(t: Deno.TestContext, device: Device): Promise<void> {
  const logs: string[] = [];
  const server = new RpcServer({ devices: [device], log: (l) => logs.push(l) });
  const listener = listenTcp("127.0.0.1", 0);
  const serving = server.serve(listener);
  const left: string[] = [];
  const missingOps = new Map<string, number>();
  let ran = 0;
  try {
    for (const file of traces) {
      const records = parseTrace(await Deno.readFile(file));
      const missing = unsupportedNodes(records, device);
      const name = file.slice(TRACE_ROOT.length + 1);
      if (missing.length) {
        left.push(`${name}: ${missing.join(", ")}`);
        for (const m of missing) missingOps.set(m, (missingOps.get(m) ?? 0) + 1);
        continue;
      }
      ran++;
      await t.step(name, async () => {
        const before = logs.length;
        const r = await replay(records, listener.addr);
        const serverSaid = logs.slice(before).join("\n");
        assert.deepEqual(r.failures, [], `${name}: ${r.failures.join("\n")}\n${serverSaid}`);
        assert.ok(r.compared > 0, `${name}: no GET_TENSOR answer was compared`);
      });
    }
  } finally {
    server.close();
    await serving;
  }
  console.log(`${device.name}: ${ran} recordings replayed, ${left.length} left out (unsupported ops)`);
  if (left.length) {
    const byOp = new Map<string, number>();
    for (const l of left) {
      const op = l.split("/")[0];
      byOp.set(op, (byOp.get(op) ?? 0) + 1);
    }
    console.log(`  left out: ${[...byOp].map(([op, n]) => `${op} ${n}`).join(", ")}`);
    console.log(`  unsupported nodes: ${[...missingOps].map(([op, n]) => `${op} ×${n}`).join(", ")}`);
  }
  if (FULL_COVERAGE.has(device.name)) {
    assert.deepEqual(left, [], `${device.name} must replay every recording`);
  }
}
