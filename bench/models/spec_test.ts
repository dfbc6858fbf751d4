import { assert } from "../../tests/asserts.ts";
import { modelBytes, modelLabel, paramCount, parseModelSpec, PRESETS } from "./spec.ts";

Deno.test("model presets have the parameter counts of the models they copy", () => {
  assert.equal(paramCount(PRESETS["llama-1b"]), 1_235_814_400, "Llama 3.2 1B (tied output)");
  assert.equal(paramCount(PRESETS["llama-8b"]), 8_030_261_248, "Llama 3.1 8B");
  const tiny = PRESETS.tiny;
  assert.equal(tiny.nLayer, 2);
  assert.equal(tiny.nEmbd, 256);
  // f32 weights: 4 bytes a parameter
  assert.equal(modelBytes(tiny), paramCount(tiny) * 4);
  assert.equal(modelLabel(PRESETS["llama-1b"]), "llama-1b F16");
});

Deno.test("model spec strings: preset with overrides, custom shapes, errors", () => {
  const s = parseModelSpec("llama-1b,type=f32,n_layer=2");
  assert.equal(s.type, "f32");
  assert.equal(s.nLayer, 2);
  assert.equal(s.nEmbd, 2048);
  assert.equal(s.name, "llama-1b*");
  const c = parseModelSpec("n_layer=3,n_embd=128,n_head=2,n_head_kv=1,n_ff=256,n_vocab=100,tied=1");
  assert.equal(c.name, "custom");
  assert.equal(c.tied, true);
  assert.equal(paramCount(c), 100 * 128 + 128 + 3 * (2 * 128 + 2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 256));
  for (
    const bad of [
      "nope",
      "tiny,n_head=3",
      "tiny,type=q4_0",
      "tiny,n_layer",
      "tiny,color=red",
      "tiny,n_head_kv=3",
    ]
  ) {
    assert.throws(() => parseModelSpec(bad), RangeError, bad);
  }
});
