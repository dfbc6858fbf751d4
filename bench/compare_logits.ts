/**
 * Do devices agree on the bench model? Runs a fixed 16-token prompt and 4 generated tokens on the
 * local cpu device (the reference) and on each target, and prints the NMSE of all 5 logit vectors
 * against the reference, with and without flash attention.
 *
 *   deno run -A bench/compare_logits.ts [-m SPEC] TARGET...
 *
 * A target is a server "HOST:PORT" (all its devices), or several joined by "+" to split the model
 * over them ("HOST:A+HOST:B"). Servers can be graphwire's or ggml's reference rpc-server.
 * @module
 */

import { CpuDevice } from "../backends/cpu/device.ts";
import type { Device } from "../backends/device.ts";
import { openRpcServer } from "../backends/rpc/mod.ts";
import { nmse } from "../tests/asserts.ts";
import { ModelBench } from "./model_bench.ts";
import { type LlamaSpec, modelLabel, parseModelSpec } from "./models/spec.ts";

/** The last-token logits of the prompt and of 4 generated tokens, concatenated. */
export async function modelLogits(
  spec: LlamaSpec,
  devices: Device[],
  flashAttn: boolean,
): Promise<Float32Array> {
  const mb = await ModelBench.load({ spec, devices, kvSize: 256, flashAttn });
  try {
    const prompt = Int32Array.from({ length: 16 }, (_, i) => (i * 977 + 13) % spec.nVocab);
    const parts = [await mb.logits(prompt)];
    for (let i = 0; i < 4; i++) parts.push((await mb.decode([(i * 31 + 1) % spec.nVocab], 16 + i, true))!);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  } finally {
    await mb.close();
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  let spec = parseModelSpec("tiny");
  const mi = args.indexOf("-m");
  if (mi >= 0) spec = parseModelSpec(args.splice(mi, 2)[1]);
  console.log(`| model | fa | target | NMSE vs local cpu |\n| --- | --: | --- | --: |`);
  for (const fa of [true, false]) {
    const want = await modelLogits(spec, [new CpuDevice()], fa);
    for (const target of args) {
      const devices: Device[] = [];
      for (const ep of target.split("+")) devices.push(...await openRpcServer(ep));
      const got = await modelLogits(spec, devices, fa);
      console.log(
        `| ${modelLabel(spec)} | ${fa ? 1 : 0} | ${target} | ${nmse(got, want).toExponential(2)} |`,
      );
      for (const d of devices) d.close();
    }
  }
}
