/**
 * Replays ggml's recorded connections (../shared/traces/public, by the rules of its README) against
 * graphwire's server on ONE device, as tests/replay_test.ts does for every device of a host — on a
 * GPU host that test would also spend minutes on the cpu and webgpu devices, so the H100 runs use
 * this instead:
 *
 *   deno run -A backends/cuda/replay.ts [-d cuda:0] [--root DIR] [--filter TEXT] [--json FILE]
 *
 * Prints one line per failing recording, the count replayed, failed and left out (ops the device
 * does not run, by op), and exits 1 when any replayed recording failed.
 * @module
 */

import "../all.ts";
import { selectDevices } from "../registry.ts";
import { RpcServer } from "../../protocol/server.ts";
import { listenTcp } from "../../protocol/wire/transport.ts";
import { listTraces, parseTrace, replay, unsupportedNodes } from "../../tests/replay.ts";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string", short: "d", default: "cuda:0" },
    root: { type: "string", default: new URL("../../../shared/traces/public", import.meta.url).pathname },
    filter: { type: "string", default: "" },
    json: { type: "string" },
  },
});

const [device] = await selectDevices([values.device!]);
const logs: string[] = [];
const server = new RpcServer({ devices: [device], log: (l) => logs.push(l) });
const listener = listenTcp("127.0.0.1", 0);
const serving = server.serve(listener);
const root = values.root!;
const passed: string[] = [];
const failed: { name: string; why: string }[] = [];
const leftOut = new Map<string, number>();
const t0 = performance.now();
try {
  for (const file of listTraces(root)) {
    const name = file.slice(root.length + 1);
    if (!name.includes(values.filter!)) continue;
    const records = parseTrace(await Deno.readFile(file));
    const missing = unsupportedNodes(records, device);
    if (missing.length) {
      const op = name.split("/")[0];
      leftOut.set(op, (leftOut.get(op) ?? 0) + 1);
      continue;
    }
    const before = logs.length;
    try {
      const r = await replay(records, listener.addr);
      if (r.failures.length || r.compared === 0) {
        const why = r.failures.length ? r.failures.slice(0, 3).join("; ") : "no GET_TENSOR answer compared";
        failed.push({ name, why: `${why} ${logs.slice(before).slice(-2).join(" | ")}` });
      } else passed.push(name);
    } catch (e) {
      failed.push({ name, why: `${(e as Error).message} ${logs.slice(before).slice(-2).join(" | ")}` });
    }
  }
} finally {
  server.close();
  await serving;
}
for (const f of failed) console.log(`FAIL ${f.name}: ${f.why}`);
const left = [...leftOut].map(([op, n]) => `${op} ${n}`).join(", ");
const secs = ((performance.now() - t0) / 1000).toFixed(1);
console.log(
  `${device.name}: ${passed.length} recordings replayed clean, ${failed.length} failed, ` +
    `${[...leftOut.values()].reduce((a, b) => a + b, 0)} left out${left ? ` (${left})` : ""} in ${secs} s`,
);
if (values.json) {
  await Deno.writeTextFile(
    values.json,
    JSON.stringify({ device: device.name, passed, failed, leftOut: Object.fromEntries(leftOut) }, null, 1),
  );
}
Deno.exit(failed.length ? 1 : 0);
