/**
 * A CPU worker thread: holds the shared buffers it was sent and computes the parts of nodes it is
 * given with the same kernels as the calling thread (see pool.ts for the protocol).
 * @module
 */

/// <reference lib="deno.worker" />

import { newTensor, type Tensor } from "../../protocol/graph/tensor.ts";
import { KERNELS } from "./ops/mod.ts";
import { CTL, ERROR_AT, ERROR_CAP, type PoolMessage, type TensorMessage } from "./pool.ts";

const buffers = new Map<number, { bytes: Uint8Array }>();
let ctl: Int32Array | null = null;
let ctlBytes: Uint8Array | null = null;

function tensorOf(m: TensorMessage): Tensor {
  const buffer = buffers.get(m.buffer);
  if (!buffer) throw new Error(`buffer ${m.buffer} was not sent to this worker`);
  const t = newTensor({
    type: m.type,
    ne: m.ne,
    nb: m.nb,
    op: m.op,
    opParams: m.opParams,
    src: m.src.map((s) => s ? tensorOf(s) : null),
    offset: m.offset,
    name: m.name,
  });
  t.buffer = buffer as unknown as Tensor["buffer"];
  return t;
}

function fail(e: unknown): void {
  const text = new TextEncoder().encode(e instanceof Error ? e.message : String(e)).subarray(0, ERROR_CAP);
  ctlBytes!.set(text, ERROR_AT);
  Atomics.store(ctl!, CTL.ERROR_LEN, text.length);
  Atomics.store(ctl!, CTL.ERROR, 1);
}

self.onmessage = (e: MessageEvent<PoolMessage>) => {
  const m = e.data;
  switch (m.kind) {
    case "init":
      ctl = new Int32Array(m.ctl);
      ctlBytes = new Uint8Array(m.ctl);
      Atomics.add(ctl, CTL.READY, 1);
      Atomics.notify(ctl, CTL.READY);
      return;
    case "buffer":
      buffers.set(m.id, { bytes: new Uint8Array(m.memory) });
      return;
    case "forget":
      buffers.delete(m.id);
      return;
    case "run":
      try {
        const kernel = KERNELS.get(m.key);
        if (!kernel) throw new Error(`no kernel ${m.key}`);
        kernel.run(tensorOf(m.node), m.ith, m.nth);
      } catch (err) {
        fail(err);
      } finally {
        if (Atomics.sub(ctl!, CTL.PENDING, 1) === 1) Atomics.notify(ctl!, CTL.PENDING);
      }
  }
};
