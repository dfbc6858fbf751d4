/**
 * What graph reuse saves per token, computed rather than measured: for each bench-model preset,
 * the size of the per-token GRAPH_COMPUTE message (command byte, size, payload) next to the
 * 13 bytes of GRAPH_RECOMPUTE that replace it when the graph is unchanged.
 *
 *   deno run bench/graph_bytes.ts [SPEC...]     (default: every preset, fa on and off)
 * @module
 */

import { graphPayloadSize } from "../protocol/wire/graph_payload.ts";
import { LlamaModel } from "./models/llama.ts";
import { type LlamaSpec, modelLabel, parseModelSpec, PRESETS } from "./models/spec.ts";
import { KV_PAD } from "./model_bench.ts";

/** Nodes, tensors and message bytes of a one-token graph of `spec`. */
export function tokenGraphBytes(
  spec: LlamaSpec,
  flashAttn: boolean,
): { nodes: number; tensors: number; bytes: number } {
  const m = new LlamaModel(spec, { kvSize: KV_PAD, flashAttn });
  const g = m.buildUbatch(1, KV_PAD, true).graph;
  return {
    nodes: g.nodes.length,
    tensors: g.tensors.length,
    bytes: 9 + graphPayloadSize(g.nodes.length, g.tensors.length),
  };
}

if (import.meta.main) {
  const specs = Deno.args.length ? Deno.args.map(parseModelSpec) : Object.values(PRESETS);
  console.log("| model | fa | nodes | tensors | GRAPH_COMPUTE bytes/token | GRAPH_RECOMPUTE bytes/token |");
  console.log("| --- | --: | --: | --: | --: | --: |");
  for (const s of specs) {
    for (const fa of [true, false]) {
      const r = tokenGraphBytes(s, fa);
      console.log(`| ${modelLabel(s)} | ${fa ? 1 : 0} | ${r.nodes} | ${r.tensors} | ${r.bytes} | 13 |`);
    }
  }
}
