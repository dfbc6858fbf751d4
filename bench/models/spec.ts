/**
 * Shapes of the bench's llama-family decoder: presets and a spec string.
 *
 * A spec string is a comma list: an optional preset name first, then `key=value` overrides, e.g.
 * `tiny`, `llama-1b,type=f32`, `n_layer=4,n_embd=512,n_head=8,n_ff=1024`. Keys are llama.cpp's
 * hparam names: n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, type (f32|f16|bf16),
 * rope_theta, eps, tied (0|1: output shares tok_embd), rope_freqs (0|1), seed.
 *
 * @example
 * ```ts
 * const s = parseModelSpec("llama-1b,type=f32");
 * paramCount(s); // 1235814400
 * ```
 * @module
 */

import { GgmlType } from "../../protocol/graph/types.ts";

/** Weight types the bench generates. */
export type WeightType = "f32" | "f16" | "bf16";

/** The ggml type of a {@linkcode WeightType}. */
export const WEIGHT_TYPES: Record<WeightType, number> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  bf16: GgmlType.BF16,
};

/** A llama-family decoder's hyper-parameters. */
export interface LlamaSpec {
  /** Preset name, or "custom". */
  name: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nVocab: number;
  type: WeightType;
  ropeTheta: number;
  eps: number;
  /** The output projection is tok_embd (Llama 3.2 1B ties them). */
  tied: boolean;
  /** Per-frequency rope factors (a `rope_freqs` tensor, as Llama 3.1+ GGUFs carry). */
  ropeFreqs: boolean;
  /** Seed of the deterministic random weights. */
  seed: number;
  /** Context length the model was trained with (rope's n_ctx_orig). */
  nCtxTrain: number;
}

const LLAMA3 = {
  ropeTheta: 500000,
  eps: 1e-5,
  nVocab: 128256,
  nCtxTrain: 131072,
  ropeFreqs: false,
  seed: 42,
};

/** The presets: `tiny` for CI, and the shapes of Llama 3.2 1B and Llama 3.1 8B. */
export const PRESETS: Readonly<Record<string, LlamaSpec>> = {
  tiny: {
    name: "tiny",
    nLayer: 2,
    nEmbd: 256,
    nHead: 4,
    nHeadKv: 2,
    nFf: 512,
    nVocab: 4096,
    type: "f32",
    ropeTheta: 10000,
    eps: 1e-5,
    tied: false,
    ropeFreqs: false,
    seed: 42,
    nCtxTrain: 4096,
  },
  small: {
    name: "small",
    nLayer: 8,
    nEmbd: 768,
    nHead: 12,
    nHeadKv: 4,
    nFf: 2048,
    nVocab: 32000,
    type: "f16",
    ropeTheta: 10000,
    eps: 1e-5,
    tied: false,
    ropeFreqs: false,
    seed: 42,
    nCtxTrain: 4096,
  },
  "llama-1b": {
    name: "llama-1b",
    nLayer: 16,
    nEmbd: 2048,
    nHead: 32,
    nHeadKv: 8,
    nFf: 8192,
    type: "f16",
    tied: true,
    ...LLAMA3,
  },
  "llama-8b": {
    name: "llama-8b",
    nLayer: 32,
    nEmbd: 4096,
    nHead: 32,
    nHeadKv: 8,
    nFf: 14336,
    type: "f16",
    tied: false,
    ...LLAMA3,
  },
};

const INT_KEYS: Record<string, keyof LlamaSpec> = {
  n_layer: "nLayer",
  n_embd: "nEmbd",
  n_head: "nHead",
  n_head_kv: "nHeadKv",
  n_ff: "nFf",
  n_vocab: "nVocab",
  seed: "seed",
  n_ctx_train: "nCtxTrain",
};

/** Parses a spec string (see the module doc); throws RangeError with what is wrong. */
export function parseModelSpec(text: string): LlamaSpec {
  const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
  let spec: LlamaSpec;
  if (parts.length && !parts[0].includes("=")) {
    const p = PRESETS[parts[0]];
    if (!p) {
      throw new RangeError(`unknown model preset "${parts[0]}"; presets: ${Object.keys(PRESETS).join(", ")}`);
    }
    spec = { ...p };
    parts.shift();
  } else {
    spec = { ...PRESETS.tiny, name: "custom" };
  }
  for (const kv of parts) {
    const m = /^([a-z_0-9]+)=(.+)$/.exec(kv);
    if (!m) throw new RangeError(`model spec item "${kv}" is not key=value`);
    const [, key, value] = m;
    if (key in INT_KEYS) {
      if (!/^\d+$/.test(value)) throw new RangeError(`${key} takes a whole number, got "${value}"`);
      (spec[INT_KEYS[key]] as number) = Number(value);
    } else if (key === "type") {
      if (!(value in WEIGHT_TYPES)) throw new RangeError(`type must be f32, f16 or bf16, got "${value}"`);
      spec.type = value as WeightType;
    } else if (key === "rope_theta" || key === "eps") {
      const x = Number(value);
      if (!(x > 0)) throw new RangeError(`${key} must be a positive number, got "${value}"`);
      if (key === "eps") spec.eps = x;
      else spec.ropeTheta = x;
    } else if (key === "tied" || key === "rope_freqs") {
      if (value !== "0" && value !== "1") throw new RangeError(`${key} takes 0 or 1, got "${value}"`);
      if (key === "tied") spec.tied = value === "1";
      else spec.ropeFreqs = value === "1";
    } else {
      throw new RangeError(`unknown model spec key "${key}"`);
    }
  }
  if (parts.length && spec.name !== "custom") spec.name = `${spec.name}*`;
  validateSpec(spec);
  return spec;
}

/** Checks that the shapes make a decoder (heads divide the width, KV heads divide the heads). */
export function validateSpec(s: LlamaSpec): void {
  for (const k of ["nLayer", "nEmbd", "nHead", "nHeadKv", "nFf", "nVocab"] as const) {
    if (!(s[k] >= 1)) throw new RangeError(`${k} must be at least 1`);
  }
  if (s.nEmbd % s.nHead !== 0) {
    throw new RangeError(`n_embd ${s.nEmbd} is not a multiple of n_head ${s.nHead}`);
  }
  if (s.nHead % s.nHeadKv !== 0) {
    throw new RangeError(`n_head ${s.nHead} is not a multiple of n_head_kv ${s.nHeadKv}`);
  }
  if ((s.nEmbd / s.nHead) % 2 !== 0) {
    throw new RangeError(`head size ${s.nEmbd / s.nHead} must be even (rope)`);
  }
}

/** Elements per head. */
export function headDim(s: LlamaSpec): number {
  return s.nEmbd / s.nHead;
}

/** Width of K and V per token (n_embd_k_gqa). */
export function kvWidth(s: LlamaSpec): number {
  return headDim(s) * s.nHeadKv;
}

/** Weights per layer (attention, norms, feed-forward). */
export function layerParams(s: LlamaSpec): number {
  const kv = kvWidth(s);
  return 2 * s.nEmbd + s.nEmbd * s.nEmbd * 2 + 2 * s.nEmbd * kv + 3 * s.nEmbd * s.nFf;
}

/** Number of parameters, as llama-bench counts them (a tied output counted once). */
export function paramCount(s: LlamaSpec): number {
  const embd = s.nVocab * s.nEmbd;
  return embd + (s.tied ? 0 : embd) + s.nEmbd + s.nLayer * layerParams(s) +
    (s.ropeFreqs ? headDim(s) / 2 : 0);
}

/** Bytes of the weights (norms and rope factors are f32, as in GGUF files). */
export function modelBytes(s: LlamaSpec): number {
  const w = s.type === "f32" ? 4 : 2;
  const norms = s.nEmbd * (1 + 2 * s.nLayer) + (s.ropeFreqs ? headDim(s) / 2 : 0);
  return (paramCount(s) - norms) * w + norms * 4;
}

/** The model's name as the table shows it: "llama-1b F16". */
export function modelLabel(s: LlamaSpec): string {
  return `${s.name} ${s.type.toUpperCase()}`;
}
