/**
 * Client-side graph reuse, as ggml's RPC client does it: per remote device, the identity of the
 * graph last sent. When the next graph is that same graph, the client sends GRAPH_RECOMPUTE
 * (4 bytes) instead of the whole GRAPH_COMPUTE payload.
 *
 * - a graph with a uid (non-zero) is the same graph when its uid is the same;
 * - a graph without one (uid 0) is the same graph when its payload bytes are the same;
 * - anything that may invalidate the server's stored graph (a freed buffer) forgets the device.
 *
 * One instance belongs to one connection (server-side stored graphs are per connection).
 *
 * @example
 * ```ts
 * const reuse = new GraphReuse();
 * reuse.canRecompute(0, 7n, payload); // false: nothing sent yet
 * reuse.sent(0, 7n, payload);
 * reuse.canRecompute(0, 7n, payload); // true → send GRAPH_RECOMPUTE(0)
 * ```
 * @module
 */

import { sameBytes } from "./graph_store.ts";

interface LastSent {
  uid: bigint;
  /** Kept only for graphs without a uid, which are compared by bytes. */
  payload: Uint8Array | null;
}

/** Per-device memory of the last graph sent on one connection. */
export class GraphReuse {
  /** False turns reuse off (`--no-reuse`): every graph is sent in full. */
  enabled: boolean;
  /** Graphs answered with GRAPH_RECOMPUTE. */
  hits = 0;
  /** Graphs sent in full. */
  misses = 0;
  #last = new Map<number, LastSent>();

  constructor(enabled = true) {
    this.enabled = enabled;
  }

  /**
   * Whether the graph (`uid`, or `payload` when uid is 0) is the one `device` last ran, so that
   * GRAPH_RECOMPUTE does the same work. Counts a hit or a miss.
   */
  canRecompute(device: number, uid: bigint, payload?: Uint8Array): boolean {
    const last = this.#last.get(device);
    let same = false;
    if (this.enabled && last) {
      if (uid !== 0n) same = last.uid === uid;
      else if (payload && last.payload) same = last.uid === 0n && sameBytes(last.payload, payload);
    }
    if (same) this.hits++;
    else this.misses++;
    return same;
  }

  /** Records that `device` now holds this graph (GRAPH_COMPUTE was sent). */
  sent(device: number, uid: bigint, payload: Uint8Array): void {
    this.#last.set(device, { uid, payload: uid === 0n ? payload : null });
  }

  /** Forgets `device` (or every device): its next graph is sent in full. */
  forget(device?: number): void {
    if (device === undefined) this.#last.clear();
    else this.#last.delete(device);
  }

  /** Resets the hit and miss counters. */
  resetStats(): void {
    this.hits = 0;
    this.misses = 0;
  }
}
