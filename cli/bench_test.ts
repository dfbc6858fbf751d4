import { PRESETS } from "../bench/models/spec.ts";
import { assert, assertRejects } from "../tests/asserts.ts";
import { UsageError } from "./args.ts";
import { benchMain, type BenchRow, formatCsv, formatMarkdown, rowJson } from "./bench.ts";

function row(over: Partial<BenchRow> = {}): BenchRow {
  return {
    model: "tiny F32",
    modelSpec: PRESETS.tiny,
    sizeBytes: 13107200,
    params: 3276800,
    devices: ["rpc:127.0.0.1:5000/0"],
    flashAttn: true,
    reuse: true,
    test: "tg128",
    nPrompt: 0,
    nGen: 128,
    reps: 5,
    tokensPerS: 123.456,
    stddev: 1.5,
    samples: [122, 124, 123, 125, 123.28],
    bytesSentPerToken: 2114,
    bytesReceivedPerToken: 16392,
    commandsPerToken: 6,
    roundTripsPerToken: 1,
    graphReuseHits: 640,
    graphsSent: 0,
    perCommand: { GRAPH_RECOMPUTE: { countPerToken: 1, bytesSentPerToken: 13 } },
    ...over,
  };
}

Deno.test("bench output: llama-bench table, wire table, JSON fields, CSV", () => {
  const md = formatMarkdown([
    row(),
    row({ test: "pp512", nPrompt: 512, nGen: 0, graphReuseHits: 4, graphsSent: 1 }),
  ]);
  assert.match(md, /\| model +\| +size \| +params \| devices +\| +fa \| +test \| +t\/s \|/);
  assert.match(
    md,
    /\| tiny F32 \| 12\.5 MiB \| 3\.28 M \| rpc:127\.0\.0\.1:5000\/0 \| +1 \| tg128 \| 123\.46 ± 1\.50 \|/,
  );
  assert.match(md, /Wire statistics per token/);
  assert.match(md, /\| +2\.06 KiB \| +16\.0 KiB \| +6\.00 \| +1\.00 \| +640 of 640 \|/);
  assert.match(md, /4 of 5/);
  assert.match(formatMarkdown([row({ commandsPerToken: 0 })]), /local devices only/);
  const j = rowJson(row());
  for (
    const k of [
      "test",
      "tokens_per_s",
      "stddev",
      "bytes_sent_per_token",
      "bytes_received_per_token",
      "round_trips_per_token",
      "graph_reuse_hits",
    ]
  ) assert.ok(k in j, k);
  assert.equal(j.test, "tg128");
  const csv = formatCsv([row()]).split("\n");
  assert.equal(csv.length, 2);
  assert.ok(csv[0].startsWith("model,size_bytes,params,devices"));
  assert.ok(
    csv[1].startsWith("tiny F32,13107200,3276800,rpc:127.0.0.1:5000/0,true,true,tg128,0,128,5,123.456"),
  );
});

Deno.test("bench flags: bad values are usage errors", async () => {
  for (
    const args of [
      ["-o", "xml"],
      ["-m", "nope", "-d", "cpu"],
      ["-ts", "1,-1", "-d", "cpu"],
      ["-ts", "1,1", "-d", "cpu"],
      ["-p", "0", "-n", "0", "-d", "cpu"],
      ["-fa", "2"],
      ["--serve", "--rpc", "127.0.0.1:1"],
      ["extra"],
    ]
  ) {
    await assertRejects(() => benchMain(args), UsageError, args.join(" "));
  }
});
