import { assert, assertEquals } from "../../tests/asserts.ts";
import { ProtocolError } from "../errors.ts";
import { Cmd, CMD_COUNT, CMD_NAMES, NO_RESPONSE, REQUEST_SIZE, RESPONSE_SIZE } from "./constants.ts";
import * as m from "./messages.ts";
import { emptyRpcTensor } from "./tensor.ts";

Deno.test("command numbers are ggml's enum rpc_cmd, HELLO is 14", () => {
  assertEquals(CMD_COUNT, 18);
  assertEquals(CMD_NAMES, [
    "ALLOC_BUFFER",
    "GET_ALIGNMENT",
    "GET_MAX_SIZE",
    "BUFFER_GET_BASE",
    "FREE_BUFFER",
    "BUFFER_CLEAR",
    "SET_TENSOR",
    "SET_TENSOR_HASH",
    "GET_TENSOR",
    "COPY_TENSOR",
    "GRAPH_COMPUTE",
    "GET_DEVICE_MEMORY",
    "INIT_TENSOR",
    "GET_ALLOC_SIZE",
    "HELLO",
    "DEVICE_COUNT",
    "GRAPH_RECOMPUTE",
    "MEMSET_TENSOR",
  ]);
  assertEquals(Cmd.HELLO, 14);
  assertEquals([...NO_RESPONSE].sort(), [Cmd.SET_TENSOR, Cmd.GRAPH_COMPUTE, Cmd.GRAPH_RECOMPUTE].sort());
});

Deno.test("every fixed message size is pinned", () => {
  assertEquals(REQUEST_SIZE, {
    [Cmd.ALLOC_BUFFER]: 12,
    [Cmd.GET_ALIGNMENT]: 4,
    [Cmd.GET_MAX_SIZE]: 4,
    [Cmd.BUFFER_GET_BASE]: 8,
    [Cmd.FREE_BUFFER]: 8,
    [Cmd.BUFFER_CLEAR]: 9,
    [Cmd.SET_TENSOR_HASH]: 312,
    [Cmd.GET_TENSOR]: 312,
    [Cmd.COPY_TENSOR]: 592,
    [Cmd.GET_DEVICE_MEMORY]: 4,
    [Cmd.INIT_TENSOR]: 296,
    [Cmd.GET_ALLOC_SIZE]: 3260,
    [Cmd.HELLO]: 24,
    [Cmd.DEVICE_COUNT]: 0,
    [Cmd.GRAPH_RECOMPUTE]: 4,
    [Cmd.MEMSET_TENSOR]: 313,
  });
  assertEquals(RESPONSE_SIZE, {
    [Cmd.ALLOC_BUFFER]: 16,
    [Cmd.GET_ALIGNMENT]: 8,
    [Cmd.GET_MAX_SIZE]: 8,
    [Cmd.BUFFER_GET_BASE]: 8,
    [Cmd.FREE_BUFFER]: 0,
    [Cmd.BUFFER_CLEAR]: 0,
    [Cmd.SET_TENSOR_HASH]: 1,
    [Cmd.COPY_TENSOR]: 1,
    [Cmd.GET_DEVICE_MEMORY]: 16,
    [Cmd.INIT_TENSOR]: 0,
    [Cmd.GET_ALLOC_SIZE]: 8,
    [Cmd.HELLO]: 28,
    [Cmd.DEVICE_COUNT]: 4,
    [Cmd.MEMSET_TENSOR]: 0,
  });
});

const u64 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);
const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);

Deno.test("request encoders put each field at its offset and decoders invert them", () => {
  const t = emptyRpcTensor();
  t.id = 42n;
  const a = m.encodeAllocBufferReq({ device: 3, size: 0x123456789n });
  assertEquals([a.length, u32(a, 0), u64(a, 4)], [12, 3, 0x123456789n]);
  assertEquals(m.decodeAllocBufferReq(a), { device: 3, size: 0x123456789n });

  const c = m.encodeBufferClearReq({ remotePtr: 0xffn, value: 0xab });
  assertEquals([c.length, u64(c, 0), c[8]], [9, 0xffn, 0xab]);
  assertEquals(m.decodeBufferClearReq(c), { remotePtr: 0xffn, value: 0xab });

  const s = m.encodeSetTensorReq({ tensor: t, offset: 16n, data: Uint8Array.of(9, 8, 7) });
  assertEquals([s.length, u64(s, 0), u64(s, 296), s[304], s[306]], [307, 42n, 16n, 9, 7]);
  const sd = m.decodeSetTensorReq(s);
  assertEquals([sd.tensor.id, sd.offset, [...sd.data]], [42n, 16n, [9, 8, 7]]);

  const h = m.encodeSetTensorHashReq({ tensor: t, offset: 1n, hash: 0xfeedn });
  assertEquals([h.length, u64(h, 296), u64(h, 304)], [312, 1n, 0xfeedn]);
  assertEquals(m.decodeSetTensorHashReq(h).hash, 0xfeedn);

  const g = m.encodeGetTensorReq({ tensor: t, offset: 2n, size: 3n });
  assertEquals([g.length, u64(g, 296), u64(g, 304)], [312, 2n, 3n]);
  assertEquals(m.decodeGetTensorReq(g).size, 3n);

  const t2 = emptyRpcTensor();
  t2.id = 43n;
  const cp = m.encodeCopyTensorReq({ src: t, dst: t2 });
  assertEquals([cp.length, u64(cp, 0), u64(cp, 296)], [592, 42n, 43n]);
  assertEquals(m.decodeCopyTensorReq(cp).dst.id, 43n);

  const ga = m.encodeGetAllocSizeReq({ device: 1, tensor: t, srcs: [t2] });
  assertEquals([ga.length, u32(ga, 0), u64(ga, 4), u64(ga, 300), u64(ga, 596)], [3260, 1, 42n, 43n, 0n]);
  const gad = m.decodeGetAllocSizeReq(ga);
  assertEquals([gad.srcs.length, gad.srcs[0].id, gad.srcs[9].id], [10, 43n, 0n]);

  const ms = m.encodeMemsetTensorReq({ tensor: t, offset: 4n, size: 5n, value: 6 });
  assertEquals([ms.length, u64(ms, 296), u64(ms, 304), ms[312]], [313, 4n, 5n, 6]);
  assertEquals(m.decodeMemsetTensorReq(ms).value, 6);

  assertEquals(m.encodeInitTensorReq(t).length, 296);
  assertEquals(m.decodeDeviceReq(Cmd.GRAPH_RECOMPUTE, m.encodeDeviceReq(7)), { device: 7 });
  assertEquals(m.decodeBufferReq(Cmd.FREE_BUFFER, m.encodeBufferReq(9n)), { remotePtr: 9n });
  assertEquals(m.encodeHelloReq().length, 24);
});

Deno.test("response encoders and decoders", () => {
  const h = m.encodeHelloRsp({ major: 5, minor: 1, patch: 0, caps: new Uint8Array(24).fill(3) });
  assertEquals([h.length, h[0], h[1], h[2], h[3], h[4], h[27]], [28, 5, 1, 0, 0, 3, 3]);
  assertEquals(m.decodeHelloRsp(h).minor, 1);
  const a = m.encodeAllocBufferRsp({ remotePtr: 1n, remoteSize: 2n });
  assertEquals([a.length, u64(a, 0), u64(a, 8)], [16, 1n, 2n]);
  const d = m.encodeDeviceMemoryRsp({ free: 3n, total: 4n });
  assertEquals([u64(d, 0), u64(d, 8)], [3n, 4n]);
  assertEquals(m.decodeDeviceCountRsp(m.encodeDeviceCountRsp(2)), 2);
  assertEquals(m.decodeU64Rsp(Cmd.GET_ALIGNMENT, m.encodeU64Rsp(32n)), 32n);
  assertEquals(m.decodeResultRsp(Cmd.COPY_TENSOR, m.encodeResultRsp(1)), 1);
});

Deno.test("decoders reject every wrong size", () => {
  for (const [cmd, size] of Object.entries(REQUEST_SIZE)) {
    for (const wrong of [size - 1, size + 1]) {
      if (wrong < 0) continue;
      assert.throws(() => m.expectRequestSize(Number(cmd), new Uint8Array(wrong)), ProtocolError);
    }
  }
  assert.throws(() => m.decodeSetTensorReq(new Uint8Array(303)), ProtocolError);
  assert.throws(() => m.decodeHelloRsp(new Uint8Array(27)), ProtocolError);
});
