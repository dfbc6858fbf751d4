/**
 * The bench's llama-family decoder, built the way llama.cpp builds `llm_build_llama`: RMS norm,
 * Q/K/V projections, rope, a KV cache written with SET_ROWS (so the per-token graph is the same
 * graph every token — only its inputs change), attention with FLASH_ATTN_EXT or with
 * MUL_MAT + SOFT_MAX over a transposed V cache, SwiGLU feed-forward, and the output projection of
 * the last token only.
 *
 * Every tensor a graph builds carries its layer as the builder's placement hint (-1: input,
 * n_layer: output), which is how {@linkcode LlamaModel.placement} splits it over devices.
 *
 * @example
 * ```ts
 * const m = new LlamaModel(parseModelSpec("tiny"), { kvSize: 256, flashAttn: true });
 * const ub = m.buildUbatch(8, 256, true); // graph, inputs, logits
 * ```
 * @module
 */

import { GgmlPrec, GraphBuilder, RopeType } from "../../protocol/graph/builder.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { rowSize, type Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { headDim, kvWidth, type LlamaSpec, WEIGHT_TYPES } from "./spec.ts";

/** One layer's weights. */
export interface LayerWeights {
  attnNorm: Tensor;
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  wo: Tensor;
  ffnNorm: Tensor;
  ffnGate: Tensor;
  ffnUp: Tensor;
  ffnDown: Tensor;
}

/** A weight and how to fill it: uniform in ±scale around `center`. */
export interface WeightInit {
  tensor: Tensor;
  /** Layer index; -1 for the input embedding, n_layer for the output. */
  layer: number;
  scale: number;
  center: number;
  /** Another weight whose data this one copies (a tied output duplicated onto another device). */
  copyOf?: Tensor;
}

/** Options of the model. */
export interface LlamaOptions {
  /** KV cache cells (the context). */
  kvSize: number;
  /** FLASH_ATTN_EXT (f16 mask, V cache as rows) or MUL_MAT + SOFT_MAX (f32 mask, V transposed). */
  flashAttn: boolean;
  /** Device index of each layer 0..n_layer (n_layer = output); default all 0. */
  layerDevices?: number[];
}

/** The inputs a ubatch graph reads; the client writes them before each run. */
export interface UbatchInputs {
  /** i32 [n_tokens]: token ids. */
  tokens: Tensor;
  /** i32 [n_tokens]: positions. */
  pos: Tensor;
  /** i64 [n_tokens]: the KV cells the tokens' K (and, with flash attention, V) rows go to. */
  kIdx: Tensor;
  /** i64 [n_embd_v_gqa · n_tokens]: without flash attention, one cell index per V element. */
  vIdx: Tensor | null;
  /** [n_kv, n_tokens]: 0 where a token may attend to a cell, -inf elsewhere (f16 with flash attention, else f32). */
  mask: Tensor;
}

/** One ubatch's graph. */
export interface Ubatch {
  nTokens: number;
  nKv: number;
  graph: Graph;
  inputs: UbatchInputs;
  /** f32 [n_vocab, 1]: the last token's logits, or null for a ubatch without output. */
  logits: Tensor | null;
  /** The layer hint of each tensor the graph built. */
  hints: (t: Tensor) => number | undefined;
}

/** A llama-family decoder: its weights, KV cache and per-ubatch graphs. */
export class LlamaModel {
  readonly spec: LlamaSpec;
  readonly opts: LlamaOptions;
  readonly tokEmbd: Tensor;
  readonly outputNorm: Tensor;
  /** The output projection (tok_embd itself when tied on one device). */
  readonly output: Tensor;
  readonly ropeFreqs: Tensor | null;
  readonly layers: LayerWeights[] = [];
  /** Per layer: K cache f16 [n_embd_k_gqa, kv_size] and V cache f16 (transposed without flash attention). */
  readonly cache: { k: Tensor; v: Tensor }[] = [];
  /** Every weight with its layer and fill. */
  readonly weights: WeightInit[] = [];

  constructor(spec: LlamaSpec, opts: LlamaOptions) {
    this.spec = spec;
    this.opts = opts;
    const b = new GraphBuilder();
    const wt = WEIGHT_TYPES[spec.type];
    const e = spec.nEmbd, kv = kvWidth(spec);
    const add = (tensor: Tensor, layer: number, fanIn: number | null) => {
      this.weights.push({
        tensor,
        layer,
        scale: fanIn === null ? 0.1 : 1 / Math.sqrt(fanIn),
        center: fanIn === null ? 1 : 0,
      });
      return tensor;
    };
    this.tokEmbd = add(b.newTensor2d(wt, e, spec.nVocab, "token_embd.weight"), -1, 1);
    for (let il = 0; il < spec.nLayer; il++) {
      const n = (s: string) => `blk.${il}.${s}.weight`;
      this.layers.push({
        attnNorm: add(b.newTensor1d(GgmlType.F32, e, n("attn_norm")), il, null),
        wq: add(b.newTensor2d(wt, e, e, n("attn_q")), il, e),
        wk: add(b.newTensor2d(wt, e, kv, n("attn_k")), il, e),
        wv: add(b.newTensor2d(wt, e, kv, n("attn_v")), il, e),
        wo: add(b.newTensor2d(wt, e, e, n("attn_output")), il, e),
        ffnNorm: add(b.newTensor1d(GgmlType.F32, e, n("ffn_norm")), il, null),
        ffnGate: add(b.newTensor2d(wt, e, spec.nFf, n("ffn_gate")), il, e),
        ffnUp: add(b.newTensor2d(wt, e, spec.nFf, n("ffn_up")), il, e),
        ffnDown: add(b.newTensor2d(wt, spec.nFf, e, n("ffn_down")), il, spec.nFf),
      });
      this.cache.push({
        k: b.newTensor2d(GgmlType.F16, kv, opts.kvSize, `cache_k_l${il}`),
        v: b.newTensor2d(GgmlType.F16, kv, opts.kvSize, `cache_v_l${il}`),
      });
    }
    this.outputNorm = add(b.newTensor1d(GgmlType.F32, e, "output_norm.weight"), spec.nLayer, null);
    const devs = opts.layerDevices;
    if (!spec.tied) {
      this.output = add(b.newTensor2d(wt, e, spec.nVocab, "output.weight"), spec.nLayer, e);
    } else if (!devs || devs[0] === devs[spec.nLayer]) {
      this.output = this.tokEmbd;
    } else {
      // llama.cpp duplicates a tied output onto the output layer's device (TENSOR_DUPLICATED).
      this.output = b.newTensor2d(wt, e, spec.nVocab, "output.weight");
      this.weights.push({
        tensor: this.output,
        layer: spec.nLayer,
        scale: 1,
        center: 0,
        copyOf: this.tokEmbd,
      });
    }
    // Llama 3 style factors: 1 for high frequencies rising to 8 for low ones.
    this.ropeFreqs = spec.ropeFreqs
      ? add(b.newTensor1d(GgmlType.F32, headDim(spec) / 2, "rope_freqs.weight"), -1, null)
      : null;
  }

  /** Device index of a layer (-1: the input embedding, which sits with layer 0). */
  deviceOfLayer(layer: number): number {
    const d = this.opts.layerDevices;
    if (!d) return 0;
    return d[Math.min(Math.max(layer, 0), this.spec.nLayer)];
  }

  /** Weights and caches grouped by the device they belong on. */
  tensorsByDevice(nDevices: number): { weights: Tensor[][]; caches: Tensor[][] } {
    const weights: Tensor[][] = Array.from({ length: nDevices }, () => []);
    const caches: Tensor[][] = Array.from({ length: nDevices }, () => []);
    for (const w of this.weights) weights[this.deviceOfLayer(w.layer)].push(w.tensor);
    this.cache.forEach((c, il) => caches[this.deviceOfLayer(il)].push(c.k, c.v));
    return { weights, caches };
  }

  /**
   * The graph of one ubatch of `nTokens` tokens attending over KV cells [0, nKv). With `withOutput`
   * the last token's logits are computed (and the last layer's feed-forward runs on that token
   * only, as llama.cpp does); without, the graph ends after the last layer's attention.
   */
  buildUbatch(nTokens: number, nKv: number, withOutput: boolean): Ubatch {
    const s = this.spec, fa = this.opts.flashAttn;
    if (nKv > this.opts.kvSize) throw new RangeError(`n_kv ${nKv} exceeds the cache of ${this.opts.kvSize}`);
    const b = new GraphBuilder();
    const hd = headDim(s), kv = kvWidth(s), e = s.nEmbd;
    const f16Row = (n: number) => rowSize(GgmlType.F16, n);
    b.hint = -1;
    const inputs: UbatchInputs = {
      tokens: b.setInput(b.newTensor1d(GgmlType.I32, nTokens, "inp_tokens")),
      pos: b.setInput(b.newTensor1d(GgmlType.I32, nTokens, "inp_pos")),
      kIdx: b.setInput(b.newTensor1d(GgmlType.I64, nTokens, "inp_k_idxs")),
      vIdx: fa ? null : b.setInput(b.newTensor1d(GgmlType.I64, kv * nTokens, "inp_v_idxs")),
      mask: b.setInput(b.newTensor2d(fa ? GgmlType.F16 : GgmlType.F32, nKv, nTokens, "inp_kq_mask")),
    };
    const rope = {
      nCtxOrig: s.nCtxTrain,
      freqBase: s.ropeTheta,
      freqScale: 1,
      extFactor: 0,
      attnFactor: 1,
      betaFast: 32,
      betaSlow: 1,
      freqFactors: this.ropeFreqs,
    };
    const kqScale = 1 / Math.sqrt(hd);
    let inpL = b.getRows(this.tokEmbd, inputs.tokens);
    let last: Tensor = inpL;
    for (let il = 0; il < s.nLayer; il++) {
      b.hint = il;
      const w = this.layers[il], c = this.cache[il];
      const inpSA = inpL;
      let cur = b.mul(b.rmsNorm(inpL, s.eps), w.attnNorm);
      let q = b.reshape3d(b.mulMat(w.wq, cur), hd, s.nHead, nTokens);
      let k = b.reshape3d(b.mulMat(w.wk, cur), hd, s.nHeadKv, nTokens);
      const v = b.mulMat(w.wv, cur); // [kv, n_tokens]
      q = b.ropeExt(q, inputs.pos, hd, RopeType.NORMAL, rope);
      k = b.ropeExt(k, inputs.pos, hd, RopeType.NORMAL, rope);
      // store K and V of these tokens into their cells
      b.expand(b.setRows(c.k, b.reshape2d(k, kv, nTokens), inputs.kIdx));
      if (fa) {
        b.expand(b.setRows(c.v, v, inputs.kIdx));
      } else {
        // transposed V: every element is a row of one value (llama.cpp's v_trans layout)
        const vView = b.reshape2d(c.v, 1, kv * this.opts.kvSize);
        b.expand(b.setRows(vView, b.reshape2d(v, 1, kv * nTokens), inputs.vIdx!));
      }
      // attention over cells [0, nKv)
      const qp = b.permute(q, 0, 2, 1, 3); // [hd, n_tokens, n_head]
      const kp = b.permute(b.view3d(c.k, hd, s.nHeadKv, nKv, f16Row(hd), f16Row(kv), 0), 0, 2, 1, 3);
      if (fa) {
        const vp = b.permute(b.view3d(c.v, hd, s.nHeadKv, nKv, f16Row(hd), f16Row(kv), 0), 0, 2, 1, 3);
        const o = b.flashAttnExtSetPrec(b.flashAttnExt(qp, kp, vp, inputs.mask, kqScale), GgmlPrec.F32);
        cur = b.reshape2d(o, e, nTokens);
      } else {
        const kq = b.softMaxExt(b.mulMat(kp, qp), inputs.mask, kqScale, 0); // [n_kv, n_tokens, n_head]
        const kvs = this.opts.kvSize;
        const vt = b.view3d(c.v, nKv, hd, s.nHeadKv, f16Row(kvs), f16Row(kvs * hd), 0);
        const kqv = b.mulMat(vt, kq); // [hd, n_tokens, n_head]
        cur = b.cont4d(b.permute(kqv, 0, 2, 1, 3), e, nTokens);
      }
      cur = b.mulMat(w.wo, cur);
      let resid = inpSA;
      if (il === s.nLayer - 1) {
        if (!withOutput) {
          last = cur;
          break;
        }
        if (nTokens > 1) {
          // only the last token goes on: its row of the attention output and of the residual
          cur = b.view2d(cur, e, 1, cur.nb[1], (nTokens - 1) * cur.nb[1]);
          resid = b.view2d(inpSA, e, 1, inpSA.nb[1], (nTokens - 1) * inpSA.nb[1]);
        }
      }
      const ffnInp = b.add(cur, resid);
      cur = b.mul(b.rmsNorm(ffnInp, s.eps), w.ffnNorm);
      const ffn = b.swigluSplit(b.mulMat(w.ffnGate, cur), b.mulMat(w.ffnUp, cur));
      cur = b.mulMat(w.ffnDown, ffn);
      inpL = b.add(cur, ffnInp);
      last = inpL;
    }
    let logits: Tensor | null = null;
    if (withOutput) {
      b.hint = s.nLayer;
      const cur = b.mul(b.rmsNorm(last, s.eps), this.outputNorm);
      logits = b.setName(b.mulMat(this.output, cur), "result_output");
      last = logits;
    }
    const graph = b.build(last);
    return { nTokens, nKv, graph, inputs, logits, hints: (t) => b.hintOf(t) };
  }

  /** The device index of a node built by {@linkcode buildUbatch}, from its layer hint. */
  placement(ub: Ubatch): (t: Tensor) => number | undefined {
    return (t) => {
      const h = ub.hints(t);
      return h === undefined ? undefined : this.deviceOfLayer(h);
    };
  }
}
