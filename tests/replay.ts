/**
 * Replays recorded ggml RPC connections (GWTRACE1 files, ../shared/traces) against a server and
 * checks its answers against the reference server's, by the rules of ../shared/traces/README.md:
 * handles and base addresses are mapped to the replaying server's own; sizes and exact results must
 * match; computed floats must agree within test-backend-ops' NMSE; index results are compared by
 * the values they select.
 * @module
 */

import { graphFromPayload } from "../protocol/graph/from_wire.ts";
import { GgmlOp, opName } from "../protocol/graph/ops.ts";
import { nbytes } from "../protocol/graph/tensor.ts";
import { GgmlType, typeInfo, typeName } from "../protocol/graph/types.ts";
import { Cmd, cmdName, RPC_TENSOR_SIZE } from "../protocol/wire/constants.ts";
import { FrameReader, frameRequest, readResponse } from "../protocol/wire/framing.ts";
import { decodeGraphPayload } from "../protocol/wire/graph_payload.ts";
import { decodeRpcTensor, encodeRpcTensor, type RpcTensor, TensorField } from "../protocol/wire/tensor.ts";
import { type Connection, connectTcp, parseEndpoint } from "../protocol/wire/transport.ts";
import type { Device } from "../backends/device.ts";
import type { Graph } from "../protocol/graph/graph.ts";
import { nmse } from "./asserts.ts";

/** One record of a trace. */
export interface TraceRecord {
  /** 0 = request (client → server), 1 = response. */
  dir: 0 | 1;
  cmd: number;
  payload: Uint8Array;
}

/** Parses a GWTRACE1 file. */
export function parseTrace(bytes: Uint8Array): TraceRecord[] {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== "GWTRACE1") throw new Error(`not a GWTRACE1 file (magic "${magic}")`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: TraceRecord[] = [];
  let o = 8;
  while (o < bytes.length) {
    if (o + 10 > bytes.length) throw new Error(`truncated record header at ${o}`);
    const dir = bytes[o] as 0 | 1;
    const cmd = bytes[o + 1];
    const len = Number(v.getBigUint64(o + 2, true));
    o += 10;
    if (o + len > bytes.length) throw new Error(`truncated record payload at ${o}`);
    out.push({ dir, cmd, payload: bytes.subarray(o, o + len) });
    o += len;
  }
  return out;
}

/** Every trace file under `root` (recursively), sorted. */
export function listTraces(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".gwtrace")) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

/** The graphs a trace computes, rebuilt without buffers (for asking a device what it supports). */
export function traceGraphs(records: TraceRecord[]): Graph[] {
  const fake = {
    buffer: null as never,
    base: 0n,
    size: 1n << 62n,
    device: 0,
  };
  return records
    .filter((r) => r.dir === 0 && r.cmd === Cmd.GRAPH_COMPUTE)
    .map((r) => graphFromPayload(decodeGraphPayload(r.payload), () => fake));
}

/** Nodes of a trace that `device` does not support, described; empty when it runs them all. */
export function unsupportedNodes(records: TraceRecord[], device: Device): string[] {
  const out = new Set<string>();
  for (const g of traceGraphs(records)) {
    for (const n of g.nodes) {
      if (!device.supportsOp(n)) {
        const srcs = n.src.filter((s) => s).map((s) => typeName(s!.type)).join(",");
        out.add(`${opName(n.op)}(${typeName(n.type)}<-${srcs})`);
      }
    }
  }
  return [...out];
}

/** Outcome of one replay. */
export interface ReplayResult {
  requests: number;
  /** GET_TENSOR answers compared. */
  compared: number;
  /** Problems found; empty means the replay is clean. */
  failures: string[];
}

const DATA_MOVEMENT: ReadonlySet<number> = new Set([
  GgmlOp.NONE,
  GgmlOp.CPY,
  GgmlOp.DUP,
  GgmlOp.CONT,
  GgmlOp.GET_ROWS,
  GgmlOp.SET_ROWS,
  GgmlOp.VIEW,
  GgmlOp.RESHAPE,
  GgmlOp.PERMUTE,
  GgmlOp.TRANSPOSE,
]);
const LOOSE_OPS: ReadonlySet<number> = new Set([GgmlOp.MUL_MAT, GgmlOp.MUL_MAT_ID, GgmlOp.FLASH_ATTN_EXT]);
const INDEX_OPS: ReadonlySet<number> = new Set([GgmlOp.ARGSORT, GgmlOp.TOP_K, GgmlOp.ARGMAX]);

function decodeValues(type: number, bytes: Uint8Array): Float64Array | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = typeInfo(type)?.typeSize ?? 0;
  if (!size) return null;
  const n = Math.floor(bytes.length / size);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (type) {
      case GgmlType.F32:
        out[i] = v.getFloat32(o, true);
        break;
      case GgmlType.F16:
        out[i] = v.getFloat16(o, true);
        break;
      case GgmlType.BF16: {
        const f = new DataView(new ArrayBuffer(4));
        f.setUint32(0, v.getUint16(o, true) << 16, true);
        out[i] = f.getFloat32(0, true);
        break;
      }
      case GgmlType.I32:
        out[i] = v.getInt32(o, true);
        break;
      case GgmlType.I64:
        out[i] = Number(v.getBigInt64(o, true));
        break;
      default:
        return null;
    }
  }
  return out;
}

/** Replays `records` against the server at `endpoint`. */
export async function replay(records: TraceRecord[], endpoint: string): Promise<ReplayResult> {
  const { host, port } = parseEndpoint(endpoint);
  const conn = await connectTcp(host, port);
  try {
    return await new Replayer(conn).run(records);
  } finally {
    conn.close();
  }
}

class Replayer {
  #conn: Connection;
  #reader: FrameReader;
  #handles = new Map<bigint, bigint>(); // recorded remote_ptr → ours
  #recBase = new Map<bigint, bigint>(); // recorded remote_ptr → recorded base
  #ourBase = new Map<bigint, bigint>(); // recorded remote_ptr → our base
  #types = new Map<bigint, RpcTensor>(); // tensor id → last rpc_tensor seen (our addresses)
  #written: { buffer: bigint; start: bigint; end: bigint }[] = []; // node outputs computed so far
  /** Ids of tensors whose values depend on f16/bf16 data or on MUL_MAT/MUL_MAT_ID/FLASH_ATTN_EXT. */
  #loose = new Set<bigint>();
  result: ReplayResult = { requests: 0, compared: 0, failures: [] };

  constructor(conn: Connection) {
    this.#conn = conn;
    this.#reader = new FrameReader(conn);
  }

  #fail(msg: string): void {
    this.result.failures.push(msg);
  }

  #mapHandle(recorded: bigint): bigint {
    if (recorded === 0n) return 0n;
    return this.#handles.get(recorded) ?? recorded;
  }

  /** Rewrites the rpc_tensor at `off` in `p` in place; returns it decoded (rewritten). */
  #rewriteTensor(p: Uint8Array, off: number): RpcTensor {
    const v = new DataView(p.buffer, p.byteOffset + off, RPC_TENSOR_SIZE);
    const recBuf = v.getBigUint64(TensorField.buffer, true);
    if (recBuf !== 0n) {
      v.setBigUint64(TensorField.buffer, this.#mapHandle(recBuf), true);
      const data = v.getBigUint64(TensorField.data, true);
      const rb = this.#recBase.get(recBuf), ob = this.#ourBase.get(recBuf);
      if (data !== 0n && rb !== undefined && ob !== undefined) {
        v.setBigUint64(TensorField.data, ob + (data - rb), true);
      }
    }
    const t = decodeRpcTensor(p, off);
    if (t.id !== 0n) this.#types.set(t.id, t);
    return t;
  }

  #rewritePtr(p: Uint8Array, off = 0): bigint {
    const v = new DataView(p.buffer, p.byteOffset + off, 8);
    const rec = v.getBigUint64(0, true);
    v.setBigUint64(0, this.#mapHandle(rec), true);
    return rec;
  }

  async run(records: TraceRecord[]): Promise<ReplayResult> {
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r.dir !== 0) continue;
      const expected = records[i + 1]?.dir === 1 && records[i + 1].cmd === r.cmd ? records[i + 1] : null;
      this.result.requests++;
      const p = r.payload.slice();
      let tensor: RpcTensor | null = null;
      let recPtr = 0n;
      switch (r.cmd) {
        case Cmd.SET_TENSOR:
        case Cmd.SET_TENSOR_HASH:
        case Cmd.GET_TENSOR:
        case Cmd.INIT_TENSOR:
        case Cmd.MEMSET_TENSOR:
          tensor = this.#rewriteTensor(p, 0);
          break;
        case Cmd.COPY_TENSOR:
          this.#rewriteTensor(p, 0);
          tensor = this.#rewriteTensor(p, RPC_TENSOR_SIZE);
          break;
        case Cmd.GET_ALLOC_SIZE:
          tensor = this.#rewriteTensor(p, 4);
          for (let k = 0; k < 10; k++) this.#rewriteTensor(p, 4 + RPC_TENSOR_SIZE * (1 + k));
          break;
        case Cmd.FREE_BUFFER:
        case Cmd.BUFFER_CLEAR:
        case Cmd.BUFFER_GET_BASE:
          recPtr = this.#rewritePtr(p);
          break;
        case Cmd.GRAPH_COMPUTE:
          this.#rewriteGraph(p);
          break;
      }
      try {
        await this.#conn.writeAll(frameRequest(r.cmd, p));
      } catch (e) {
        this.#fail(`request #${i} ${cmdName(r.cmd)}: could not send (${(e as Error).message})`);
        return this.result;
      }
      if (!expected) continue;
      let got: Uint8Array;
      try {
        got = await readResponse(this.#reader, 1n << 36n);
      } catch (e) {
        this.#fail(
          `request #${i} ${cmdName(r.cmd)}: no response, the server closed the connection (${
            (e as Error).message
          })`,
        );
        return this.result;
      }
      const want = expected.payload;
      const what = `#${i} ${cmdName(r.cmd)}`;
      if (got.length !== want.length) {
        this.#fail(`${what}: response size ${got.length}, reference ${want.length}`);
        continue;
      }
      await this.#check(r.cmd, what, got, want, tensor, recPtr);
    }
    return this.result;
  }

  #rewriteGraph(p: Uint8Array): void {
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const nNodes = v.getUint32(4, true);
    const nodeIds = new Set<bigint>();
    for (let k = 0; k < nNodes; k++) nodeIds.add(v.getBigUint64(8 + 8 * k, true));
    let o = 8 + 8 * nNodes;
    const nTensors = v.getUint32(o, true);
    o += 4;
    const tensors: RpcTensor[] = [];
    for (let k = 0; k < nTensors; k++, o += RPC_TENSOR_SIZE) {
      const t = this.#rewriteTensor(p, o);
      tensors.push(t);
      if (nodeIds.has(t.id) && t.buffer !== 0n) {
        this.#written.push({ buffer: t.buffer, start: t.data, end: t.data + BigInt(safeNbytes(t)) });
      }
    }
    // A whole model's output inherits the tolerance of everything it was computed from; sources
    // come before users in ggml's serialisation, but iterate to a fixed point to be order-proof.
    for (let changed = true; changed;) {
      changed = false;
      for (const t of tensors) {
        if (this.#loose.has(t.id)) continue;
        const deps = [...t.src, t.viewSrc].filter((id) => id !== 0n);
        if (
          t.type === GgmlType.F16 || t.type === GgmlType.BF16 || LOOSE_OPS.has(t.op) ||
          deps.some((id) => this.#loose.has(id))
        ) {
          this.#loose.add(t.id);
          changed = true;
        }
      }
    }
  }

  async #check(
    cmd: number,
    what: string,
    got: Uint8Array,
    want: Uint8Array,
    tensor: RpcTensor | null,
    recPtr: bigint,
  ): Promise<void> {
    const u64 = (b: Uint8Array, o = 0) =>
      new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(o, true);
    switch (cmd) {
      case Cmd.HELLO:
        if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) {
          this.#fail(
            `${what}: version ${got.subarray(0, 3).join(".")}, reference ${want.subarray(0, 3).join(".")}`,
          );
        }
        return;
      case Cmd.ALLOC_BUFFER: {
        const rec = u64(want), ours = u64(got);
        if ((rec === 0n) !== (ours === 0n)) {
          this.#fail(`${what}: allocation ${ours ? "succeeded" : "failed"} unlike the reference`);
        }
        if (rec !== 0n) this.#handles.set(rec, ours);
        return;
      }
      case Cmd.BUFFER_GET_BASE:
        this.#recBase.set(recPtr, u64(want));
        this.#ourBase.set(recPtr, u64(got));
        return;
      case Cmd.GET_ALIGNMENT: {
        const a = u64(got);
        if (a === 0n || (a & (a - 1n)) !== 0n) this.#fail(`${what}: alignment ${a} is not a power of two`);
        return;
      }
      case Cmd.GET_MAX_SIZE:
        if (u64(got) === 0n) this.#fail(`${what}: max size 0`);
        return;
      case Cmd.GET_DEVICE_MEMORY:
        if (u64(got, 0) > u64(got, 8)) this.#fail(`${what}: free memory exceeds total`);
        return;
      case Cmd.GET_ALLOC_SIZE:
        if (tensor && u64(got) < BigInt(safeNbytes(tensor))) {
          this.#fail(`${what}: alloc size ${u64(got)} below nbytes`);
        }
        return;
      case Cmd.GET_TENSOR:
        this.result.compared++;
        await this.#compareData(what, got, want, tensor!);
        return;
      default:
        for (let k = 0; k < got.length; k++) {
          if (got[k] !== want[k]) {
            this.#fail(`${what}: response differs from the reference at byte ${k}`);
            return;
          }
        }
    }
  }

  async #compareData(what: string, got: Uint8Array, want: Uint8Array, t: RpcTensor): Promise<void> {
    if (bytesEqual(got, want)) return;
    const desc = `${what} of "${t.name}" ${opName(t.op)} ${typeName(t.type)}[${t.ne.join(",")}]`;
    const srcTypes = t.src.filter((id) => id !== 0n).map((id) => this.#types.get(id)?.type ?? -1);
    const sameTypeMove = DATA_MOVEMENT.has(t.op) && srcTypes.every((s) => s === t.type);
    const writtenByGraph = this.#written.some((w) =>
      w.buffer === t.buffer && w.start < t.data + BigInt(got.length) && t.data < w.end
    );
    if (sameTypeMove && (t.op !== GgmlOp.NONE || !writtenByGraph)) {
      this.#fail(`${desc}: must match exactly, differs`);
      return;
    }
    if (INDEX_OPS.has(t.op)) {
      await this.#compareIndices(desc, got, want, t);
      return;
    }
    const x = decodeValues(t.type, got), y = decodeValues(t.type, want);
    if (!x || !y) {
      this.#fail(`${desc}: differs and type ${typeName(t.type)} cannot be compared numerically`);
      return;
    }
    if (t.type === GgmlType.I32 || t.type === GgmlType.I64) {
      this.#fail(`${desc}: integer results differ`);
      return;
    }
    for (let k = 0; k < x.length; k++) {
      if (Number.isNaN(x[k]) !== Number.isNaN(y[k])) {
        this.#fail(`${desc}: NaN mismatch at element ${k} (got ${x[k]}, reference ${y[k]})`);
        return;
      }
    }
    const loose = this.#loose.has(t.id) || LOOSE_OPS.has(t.op) ||
      srcTypes.some((s) => s === GgmlType.F16 || s === GgmlType.BF16) || t.type === GgmlType.F16 ||
      t.type === GgmlType.BF16;
    const bound = loose ? 5e-4 : 1e-6;
    const e = nmse(x, y);
    if (!(e <= bound)) this.#fail(`${desc}: NMSE ${e.toExponential(3)} exceeds ${bound}`);
  }

  /**
   * Index results (ARGSORT, TOP_K, ARGMAX) are compared by the source values they select, since
   * ties may order differently. The source's values come from the replaying server itself, fetched
   * with an extra GET_TENSOR right away (before the trace frees anything).
   */
  async #compareIndices(desc: string, got: Uint8Array, want: Uint8Array, t: RpcTensor): Promise<void> {
    const a = decodeValues(t.type, got), b = decodeValues(t.type, want);
    const src = this.#types.get(t.src[0]);
    if (!a || !b || !src) {
      this.#fail(`${desc}: index results differ and the source is unknown`);
      return;
    }
    const req = new Uint8Array(RPC_TENSOR_SIZE + 16);
    encodeRpcTensor(src, req, 0);
    new DataView(req.buffer).setBigUint64(RPC_TENSOR_SIZE + 8, BigInt(safeNbytes(src)), true);
    await this.#conn.writeAll(frameRequest(Cmd.GET_TENSOR, req));
    const vals = decodeValues(src.type, await readResponse(this.#reader, 1n << 36n));
    if (!vals) {
      this.#fail(`${desc}: source type ${typeName(src.type)} cannot be compared`);
      return;
    }
    const es = typeInfo(src.type)!.typeSize;
    // Value of source element i0 of source row `row` (rows counted over dims 1..3).
    const at = (i0: number, row: number) => {
      const i1 = row % src.ne[1], i2 = Math.floor(row / src.ne[1]) % src.ne[2];
      const i3 = Math.floor(row / (src.ne[1] * src.ne[2]));
      return vals[(i0 * src.nb[0] + i1 * src.nb[1] + i2 * src.nb[2] + i3 * src.nb[3]) / es];
    };
    // ARGMAX gives one index per source row; ARGSORT and TOP_K give ne[0] indices per row.
    const k = t.op === GgmlOp.ARGMAX ? 1 : t.ne[0];
    const rows = Math.floor(a.length / k);
    for (let r = 0; r < rows; r++) {
      const va: number[] = [], vb: number[] = [];
      for (let j = 0; j < k; j++) {
        va.push(at(a[r * k + j], r));
        vb.push(at(b[r * k + j], r));
      }
      if (t.op === GgmlOp.TOP_K) {
        va.sort((x, y) => x - y);
        vb.sort((x, y) => x - y);
      }
      for (let j = 0; j < k; j++) {
        if (!(va[j] === vb[j] || (Number.isNaN(va[j]) && Number.isNaN(vb[j])))) {
          this.#fail(`${desc}: row ${r} position ${j} selects ${va[j]}, the reference selects ${vb[j]}`);
          return;
        }
      }
    }
  }
}

function safeNbytes(t: RpcTensor): number {
  try {
    return nbytes(t);
  } catch {
    return 0;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Replays the trace file at `path` against the server at `endpoint`. */
export async function replayFile(path: string, endpoint: string): Promise<ReplayResult> {
  return await replay(parseTrace(await Deno.readFile(path)), endpoint);
}
