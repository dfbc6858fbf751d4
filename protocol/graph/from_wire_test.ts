import { assert, assertEquals } from "../../tests/asserts.ts";
import { ValidationError } from "../errors.ts";
import { emptyRpcTensor, type RpcTensor } from "../wire/tensor.ts";
import { type BufferEntry, graphFromPayload, tensorFromWire } from "./from_wire.ts";
import { GgmlOp } from "./ops.ts";
import { GgmlType } from "./types.ts";
import type { DeviceBuffer } from "../../backends/device.ts";

const fakeBuffer = { size: 1024 } as unknown as DeviceBuffer;
const entry: BufferEntry = { buffer: fakeBuffer, base: 0x10000000000n, size: 1024n, device: 0 };
const lookup = (h: bigint) => (h === 77n ? entry : undefined);

function wire(id: bigint, init: Partial<RpcTensor> = {}): RpcTensor {
  const t = emptyRpcTensor();
  t.id = id;
  t.type = GgmlType.F32;
  t.ne = [4, 1, 1, 1];
  t.nb = [4, 16, 16, 16];
  t.buffer = 77n;
  t.data = entry.base + 16n * id;
  return Object.assign(t, init);
}

Deno.test("a valid tensor resolves to its buffer and offset", () => {
  const t = tensorFromWire(wire(2n), lookup);
  assertEquals([t.buffer === fakeBuffer, t.offset, t.ne], [true, 32, [4, 1, 1, 1]]);
});

Deno.test("tensor checks: type, op, handle, range, overflow", () => {
  const bad: [Partial<RpcTensor>, RegExp][] = [
    [{ type: 43 }, /invalid type/],
    [{ type: 4 }, /invalid type/],
    [{ op: 101 }, /invalid op/],
    [{ buffer: 78n }, /not one of this connection's/],
    [{ buffer: 0n }, /without a buffer/],
    [{ data: entry.base - 4n }, /outside/],
    [{ data: entry.base + 1021n }, /outside/],
    [{ data: 0xfffffffffffffff0n }, /outside/],
    [{ ne: [0xffffffff, 0xffffffff, 0xffffffff, 2] }, /overflows/],
    [{ nb: [4, 0xffffffff, 0xffffffff, 0xffffffff], ne: [4, 0xffff, 0xffff, 0xffff] }, /overflows|outside/],
    [{ viewOffs: 1n << 60n }, /view_offs/],
  ];
  for (const [init, re] of bad) {
    assert.throws(
      () => tensorFromWire(wire(1n, init), lookup),
      (e: Error) => e instanceof ValidationError && re.test(e.message),
      JSON.stringify(init, (_, v) => typeof v === "bigint" ? String(v) : v),
    );
  }
  // A tensor with neither buffer nor data is allowed (ggml sends such for unallocated views).
  assertEquals(tensorFromWire(wire(1n, { buffer: 0n, data: 0n }), lookup).buffer, null);
});

Deno.test("graphs: sources linked by id, dependency order, nodes resolved", () => {
  const a = wire(1n), b = wire(2n), c = wire(3n, { op: GgmlOp.ADD });
  c.src[0] = 1n;
  c.src[1] = 2n;
  const g = graphFromPayload({ device: 0, nodeIds: [3n], tensors: [c, b, a] }, lookup);
  assertEquals(g.nodes.map((n) => n.id), [3n]);
  assertEquals(g.nodes[0].src.slice(0, 2).map((s) => s!.id), [1n, 2n]);
  assertEquals(g.tensors.map((t) => t.id).indexOf(3n), 2);
});

Deno.test("graphs: duplicate ids, missing sources, unknown nodes and cycles are refused", () => {
  const dup = () => graphFromPayload({ device: 0, nodeIds: [1n], tensors: [wire(1n), wire(1n)] }, lookup);
  assert.throws(dup, /appears twice/);
  const c = wire(3n);
  c.src[2] = 9n;
  assert.throws(() => graphFromPayload({ device: 0, nodeIds: [3n], tensors: [c] }, lookup), /src\[2\] id 9/);
  assert.throws(() => graphFromPayload({ device: 0, nodeIds: [5n], tensors: [wire(1n)] }, lookup), /node #0/);
  const x = wire(1n), y = wire(2n);
  x.src[0] = 2n;
  y.viewSrc = 1n;
  assert.throws(() => graphFromPayload({ device: 0, nodeIds: [1n], tensors: [x, y] }, lookup), /cycle/);
  const self = wire(1n);
  self.src[0] = 1n;
  assert.throws(() => graphFromPayload({ device: 0, nodeIds: [1n], tensors: [self] }, lookup), /cycle/);
  assert.throws(() => graphFromPayload({ device: 0, nodeIds: [], tensors: [wire(0n)] }, lookup), /id 0/);
});

Deno.test("a 200000-deep chain is rebuilt without recursion", () => {
  const n = 200_000;
  const ts: RpcTensor[] = [];
  for (let i = 1; i <= n; i++) {
    const t = wire(1n, { id: BigInt(i), data: entry.base });
    if (i > 1) t.src[0] = BigInt(i - 1);
    ts.push(t);
  }
  ts.reverse();
  const g = graphFromPayload({ device: 0, nodeIds: [BigInt(n)], tensors: ts }, lookup);
  assertEquals(g.tensors.length, n);
  assertEquals(g.tensors[0].id, 1n);
});
