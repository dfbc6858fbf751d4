import { assertEquals } from "../../tests/asserts.ts";
import { fnv1a64, hashHex } from "./fnv.ts";

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

Deno.test("hashHex pads to 16 lowercase digits", () => {
  assertEquals(hashHex(0xabcn), "0000000000000abc");
});
