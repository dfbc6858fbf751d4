/**
 * The bench model end to end: its logits for a fixed prompt agree between the local cpu device, a
 * graphwire server over RPC, and the same model split over two servers; `graphwire bench` runs the
 * tiny preset against a server it starts, with and without graph reuse.
 *
 * With GW_REF_SERVER=HOST:PORT set (ggml's reference rpc-server, e.g. the scratch build's
 * gw-ref-rpc-server), the logits are also compared with that server's — a manual check, since CI
 * has no ggml.
 */

import { CpuDevice } from "../backends/cpu/device.ts";
import type { Device } from "../backends/device.ts";
import { openRpcDevice, openRpcServer } from "../backends/rpc/mod.ts";
import { startLocalServer } from "../bench/local_server.ts";
import { ModelBench } from "../bench/model_bench.ts";
import { parseModelSpec } from "../bench/models/spec.ts";
import { Cmd } from "../protocol/wire/constants.ts";
import { assert, assertNmse, nmse } from "./asserts.ts";

const SPEC = parseModelSpec("tiny");
const PROMPT = Int32Array.from({ length: 6 }, (_, i) => (i * 977 + 13) % SPEC.nVocab);
const REF = Deno.env.get("GW_REF_SERVER");

async function logitsOn(devices: Device[], flashAttn: boolean, ratios?: number[]): Promise<Float32Array> {
  const mb = await ModelBench.load({ spec: SPEC, devices, kvSize: 256, flashAttn, ratios });
  try {
    const first = await mb.logits(PROMPT);
    // two generated tokens through the KV cache (one graph, run twice), then the second's logits
    await mb.decode([7], PROMPT.length, true);
    const next = (await mb.decode([11], PROMPT.length + 1, true))!;
    const out = new Float32Array(first.length + next.length);
    out.set(first);
    out.set(next, first.length);
    return out;
  } finally {
    await mb.close();
  }
}

for (const flashAttn of [true, false]) {
  Deno.test(`bench model (tiny, fa=${flashAttn ? 1 : 0}): logits agree on local cpu, over RPC, split over two servers`, async () => {
    const cpu = new CpuDevice({ threads: 1 });
    const want = await logitsOn([cpu], flashAttn);
    assert.ok(want.every(Number.isFinite), "finite logits");
    const a = startLocalServer([new CpuDevice({ threads: 1 })]);
    const b = startLocalServer([new CpuDevice({ threads: 1 })]);
    try {
      const da = await openRpcDevice(a.endpoint, 0);
      const db = await openRpcDevice(b.endpoint, 0);
      assertNmse(await logitsOn([da], flashAttn), want, 1e-5, "graphwire server vs local cpu");
      assertNmse(
        await logitsOn([da, db], flashAttn, [1, 1]),
        want,
        1e-5,
        "split over two servers vs local cpu",
      );
      assert.ok((da.connection.stats.get(Cmd.GRAPH_RECOMPUTE)?.count ?? 0) > 0, "tokens re-ran their graph");
      da.close();
      db.close();
      if (REF) {
        const ref = await openRpcServer(REF);
        assertNmse(await logitsOn(ref, flashAttn), want, 1e-5, `ggml's reference server ${REF} vs local cpu`);
        for (const d of ref) d.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
}

async function benchJson(args: string[]): Promise<Record<string, unknown>[]> {
  const main = new URL("../cli/main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", main, "bench", ...args, "-o", "json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("graphwire bench: the tiny preset end to end against a server it starts, reuse on and off", async () => {
  const args = ["-m", "tiny", "-d", "cpu", "-t", "1", "--serve", "-p", "8", "-n", "4", "-r", "2"];
  const [pp, tg] = await benchJson(args);
  assert.equal(pp.test, "pp8");
  assert.equal(tg.test, "tg4");
  for (const r of [pp, tg]) {
    assert.ok((r.tokens_per_s as number) > 0);
    for (const k of ["stddev", "bytes_sent_per_token", "bytes_received_per_token", "round_trips_per_token"]) {
      assert.equal(typeof r[k], "number", k);
    }
  }
  // every timed token re-ran its graph: 4 tokens × 2 repetitions
  assert.equal(tg.graph_reuse_hits, 8);
  assert.equal(tg.round_trips_per_token, 1, "one GET_TENSOR of the logits per token, nothing else waits");
  const [, tgNoReuse] = await benchJson([...args, "--no-reuse"]);
  assert.equal(tgNoReuse.graph_reuse_hits, 0);
  assert.ok(
    (tgNoReuse.bytes_sent_per_token as number) > (tg.bytes_sent_per_token as number) + 20_000,
    `without reuse each token sends its graph: ${tgNoReuse.bytes_sent_per_token} vs ${tg.bytes_sent_per_token}`,
  );
});

Deno.test("bench model: a prompt in several ubatches gives the logits of one ubatch, and attends to its start", async () => {
  const tokens = Int32Array.from({ length: 40 }, (_, i) => (i * 131 + 7) % SPEC.nVocab);
  const run = async (ubatch: number, t: Int32Array) => {
    const mb = await ModelBench.load({
      spec: SPEC,
      devices: [new CpuDevice({ threads: 1 })],
      kvSize: 256,
      ubatch,
    });
    try {
      return await mb.logits(t);
    } finally {
      await mb.close();
    }
  };
  const whole = await run(40, tokens);
  assertNmse(await run(16, tokens), whole, 1e-10, "ubatches of 16 vs one of 40");
  const changed = tokens.slice();
  changed[0] = 5;
  assert.ok(
    nmse(await run(16, changed), whole) > 1e-6,
    "the first token reaches the last one through the KV cache",
  );
});
