import { assert, assertEquals } from "../../tests/asserts.ts";
import { ProtocolError } from "../errors.ts";
import {
  decodeGraphPayload,
  encodeGraphPayload,
  graphPayloadDevice,
  graphPayloadSize,
} from "./graph_payload.ts";
import { emptyRpcTensor } from "./tensor.ts";

Deno.test("graph payload layout: device, n_nodes, ids, n_tensors, tensors", () => {
  const a = emptyRpcTensor(), b = emptyRpcTensor();
  a.id = 1n;
  b.id = 2n;
  b.src[0] = 1n;
  const p = encodeGraphPayload({ device: 3, nodeIds: [2n], tensors: [a, b] });
  assertEquals(p.length, graphPayloadSize(1, 2));
  assertEquals(p.length, 12 + 8 + 2 * 296);
  const v = new DataView(p.buffer);
  assertEquals([v.getUint32(0, true), v.getUint32(4, true), v.getBigUint64(8, true), v.getUint32(16, true)], [
    3,
    1,
    2n,
    2,
  ]);
  assertEquals(v.getBigUint64(20, true), 1n);
  assertEquals(v.getBigUint64(20 + 296, true), 2n);
  const d = decodeGraphPayload(p);
  assertEquals([d.device, d.nodeIds, d.tensors.map((t) => t.id), d.tensors[1].src[0]], [
    3,
    [2n],
    [1n, 2n],
    1n,
  ]);
  assertEquals(graphPayloadDevice(p), 3);
});

Deno.test("graph payload counts must agree with its length", () => {
  const p = encodeGraphPayload({ device: 0, nodeIds: [1n], tensors: [emptyRpcTensor()] });
  assert.throws(() => decodeGraphPayload(p.subarray(0, p.length - 1)), ProtocolError);
  const longer = new Uint8Array(p.length + 1);
  longer.set(p);
  assert.throws(() => decodeGraphPayload(longer), ProtocolError);
  const huge = p.slice();
  new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
  assert.throws(() => decodeGraphPayload(huge), /does not fit/);
  const manyTensors = p.slice();
  new DataView(manyTensors.buffer).setUint32(16, 0xffffffff, true);
  assert.throws(() => decodeGraphPayload(manyTensors), ProtocolError);
  assert.throws(() => decodeGraphPayload(new Uint8Array(11)), ProtocolError);
});
