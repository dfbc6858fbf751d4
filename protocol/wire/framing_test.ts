import { assert, assertEquals } from "../../tests/asserts.ts";
import { ProtocolError } from "../errors.ts";
import {
  type ByteSource,
  FrameReader,
  frameRequest,
  frameResponse,
  readRequest,
  readResponse,
} from "./framing.ts";

/** A source that hands out `data` in chunks of at most `chunk` bytes. */
function source(data: Uint8Array, chunk: number): ByteSource {
  let o = 0;
  return {
    read(p) {
      if (o >= data.length) return Promise.resolve(null);
      const n = Math.min(chunk, p.length, data.length - o);
      p.set(data.subarray(o, o + n));
      o += n;
      return Promise.resolve(n);
    },
  };
}

Deno.test("request frame: u8 cmd, u64 size, payload in one buffer", () => {
  const f = frameRequest(7, Uint8Array.of(1, 2, 3));
  assertEquals([...f], [7, 3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
  assertEquals([...frameResponse(Uint8Array.of(9))], [1, 0, 0, 0, 0, 0, 0, 0, 9]);
});

Deno.test("frames are read whole across any chunking", async () => {
  const big = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const stream = new Uint8Array([
    ...frameRequest(1, Uint8Array.of(5)),
    ...frameRequest(6, big),
    ...frameRequest(15, new Uint8Array(0)),
  ]);
  for (const chunk of [1, 7, 4096, 1 << 20]) {
    const r = new FrameReader(source(stream, chunk));
    const a = await readRequest(r, 1n << 32n);
    assertEquals([a!.cmd, [...a!.payload]], [1, [5]]);
    const b = await readRequest(r, 1n << 32n);
    assertEquals(b!.cmd, 6);
    assert.ok(b!.payload.length === big.length && b!.payload.every((x, i) => x === big[i]));
    const c = await readRequest(r, 1n << 32n);
    assertEquals([c!.cmd, c!.payload.length], [15, 0]);
    assertEquals(await readRequest(r, 1n << 32n), null);
  }
});

Deno.test("a frame over the cap is refused before its payload is read or allocated", async () => {
  const header = new Uint8Array(9);
  header[0] = 6;
  new DataView(header.buffer).setBigUint64(1, 0xffffffffffffffffn, true);
  await assert.rejects(
    () => readRequest(new FrameReader(source(header, 64)), 1n << 32n),
    /exceeds the limit/,
  );
});

Deno.test("a stream that ends inside a frame is a protocol error", async () => {
  const f = frameRequest(6, new Uint8Array(100));
  await assert.rejects(
    () => readRequest(new FrameReader(source(f.subarray(0, 50), 64)), 1n << 32n),
    ProtocolError,
  );
  await assert.rejects(
    () => readRequest(new FrameReader(source(f.subarray(0, 5), 64)), 1n << 32n),
    ProtocolError,
  );
  // A huge announced size with few bytes behind it ends cleanly without allocating the whole.
  const h = new Uint8Array(9 + 10);
  h[0] = 6;
  new DataView(h.buffer).setBigUint64(1, 3n << 30n, true);
  await assert.rejects(() => readRequest(new FrameReader(source(h, 64)), 4n << 30n), ProtocolError);
  await assert.rejects(
    () => readResponse(new FrameReader(source(new Uint8Array(3), 64)), 100n),
    ProtocolError,
  );
});
