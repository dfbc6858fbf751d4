import { assertEquals } from "../../tests/asserts.ts";
import { fnv1a64, fnv1a64Js, hashHex } from "./fnv.ts";

/** The reference: BigInt arithmetic exactly as ggml's fnv_hash. */
function reference(data: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of data) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

Deno.test("FNV-1a 64 matches the published vectors", () => {
  const enc = new TextEncoder();
  assertEquals(fnv1a64(new Uint8Array(0)), 0xcbf29ce484222325n);
  assertEquals(hashHex(fnv1a64(enc.encode("a"))), "af63dc4c8601ec8c");
  assertEquals(hashHex(fnv1a64(enc.encode("foobar"))), "85944171f73967e8");
});

Deno.test("FNV-1a 64 agrees with BigInt arithmetic on random data", () => {
  const data = crypto.getRandomValues(new Uint8Array(4096));
  for (const n of [1, 7, 255, 4096]) {
    assertEquals(fnv1a64(data.subarray(0, n)), reference(data.subarray(0, n)));
  }
});

Deno.test("FNV-1a 64 in WebAssembly agrees with the JavaScript loop across chunk edges and seeds", () => {
  // 3 MiB and a bit: the module hashes 1 MiB per call, 8 bytes per load, the tail byte by byte
  const data = new Uint8Array((3 << 20) + 13);
  for (let o = 0; o < data.length; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
  for (
    const n of [4095, 4096, 4097, 65543, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (2 << 20) + 7, data.length]
  ) {
    assertEquals(fnv1a64(data.subarray(0, n)), fnv1a64Js(data.subarray(0, n)), `${n} bytes`);
  }
  // continuing from a seed (with the top bit set, and without) is hashing the concatenation
  const head = fnv1a64(data.subarray(0, 5000));
  assertEquals(fnv1a64(data.subarray(5000, 900000), head), fnv1a64Js(data.subarray(0, 900000)));
  assertEquals(fnv1a64(data.subarray(0, 8192), 0x1234n), fnv1a64Js(data.subarray(0, 8192), 0x1234n));
  assertEquals(fnv1a64(data.subarray(0, 8192), 1n << 63n), fnv1a64Js(data.subarray(0, 8192), 1n << 63n));
  const big = new Uint8Array(8192).fill(0xff);
  assertEquals(fnv1a64(big), reference(big));
});

Deno.test("hashHex pads to 16 lowercase digits", () => {
  assertEquals(hashHex(0xabcn), "0000000000000abc");
});
