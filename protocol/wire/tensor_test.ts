import { assert, assertEquals } from "../../tests/asserts.ts";
import { RPC_TENSOR_SIZE } from "./constants.ts";
import { decodeRpcTensor, emptyRpcTensor, encodeRpcTensor, rpcTensorBytes, TensorField } from "./tensor.ts";

function sample() {
  const t = emptyRpcTensor();
  t.id = 0x1122334455667788n;
  t.type = 30;
  t.buffer = 0xa1a2a3a4a5a6a7a8n;
  t.ne = [1, 2, 3, 4];
  t.nb = [5, 6, 7, 8];
  t.op = 91;
  t.opParams = new Uint8Array(64).map((_, i) => i + 1);
  t.flags = -2;
  t.src = Array.from({ length: 10 }, (_, i) => BigInt(0x100 + i));
  t.viewSrc = 0x200n;
  t.viewOffs = 0x300n;
  t.data = 0xdeadbeefcafef00dn;
  t.name = "blk.0.attn_q";
  t.useCount = 7;
  return t;
}

Deno.test("rpc_tensor is 296 bytes with every field at ggml's offset", () => {
  assertEquals(RPC_TENSOR_SIZE, 296);
  const b = rpcTensorBytes(sample());
  assertEquals(b.length, 296);
  const v = new DataView(b.buffer);
  assertEquals(TensorField, {
    id: 0,
    type: 8,
    buffer: 12,
    ne: 20,
    nb: 36,
    op: 52,
    opParams: 56,
    flags: 120,
    src: 124,
    viewSrc: 204,
    viewOffs: 212,
    data: 220,
    name: 228,
    useCount: 292,
  });
  assertEquals(v.getBigUint64(0, true), 0x1122334455667788n);
  assertEquals(v.getUint32(8, true), 30);
  assertEquals(v.getBigUint64(12, true), 0xa1a2a3a4a5a6a7a8n);
  assertEquals([20, 24, 28, 32].map((o) => v.getUint32(o, true)), [1, 2, 3, 4]);
  assertEquals([36, 40, 44, 48].map((o) => v.getUint32(o, true)), [5, 6, 7, 8]);
  assertEquals(v.getUint32(52, true), 91);
  assertEquals(b[56], 1);
  assertEquals(b[119], 64);
  assertEquals(v.getInt32(120, true), -2);
  for (let i = 0; i < 10; i++) assertEquals(v.getBigUint64(124 + 8 * i, true), BigInt(0x100 + i));
  assertEquals(v.getBigUint64(204, true), 0x200n);
  assertEquals(v.getBigUint64(212, true), 0x300n);
  assertEquals(v.getBigUint64(220, true), 0xdeadbeefcafef00dn);
  assertEquals(new TextDecoder().decode(b.subarray(228, 240)), "blk.0.attn_q");
  assertEquals(b[240], 0);
  assertEquals(v.getInt32(292, true), 7);
});

Deno.test("rpc_tensor round-trips and names are cut to 63 bytes plus NUL", () => {
  const t = sample();
  assertEquals(decodeRpcTensor(rpcTensorBytes(t)), t);
  t.name = "x".repeat(100);
  const b = rpcTensorBytes(t);
  assertEquals(b[228 + 63], 0);
  assertEquals(decodeRpcTensor(b).name, "x".repeat(63));
});

Deno.test("rpc_tensor decoding at an offset and bounds", () => {
  const buf = new Uint8Array(296 + 10);
  encodeRpcTensor(sample(), buf, 10);
  assertEquals(decodeRpcTensor(buf, 10).id, 0x1122334455667788n);
  assert.throws(() => decodeRpcTensor(buf, 11), RangeError);
  assert.throws(() => encodeRpcTensor(sample(), new Uint8Array(295)), RangeError);
});
