import { assertEquals, assertOk } from "../../tests/asserts.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, f32ToI32, roundBf16 } from "./numeric.ts";

Deno.test("f16: round to nearest even, specials, every bit pattern round-trips", () => {
  assertEquals(f32ToF16Bits(1), 0x3c00);
  assertEquals(f32ToF16Bits(65504), 0x7bff);
  assertEquals(f32ToF16Bits(65520), 0x7c00); // halfway to the next binade rounds to inf
  assertEquals(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assertEquals(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assertEquals(f32ToF16Bits(2 ** -25), 0); // half the smallest subnormal → 0 (even)
  assertEquals(f32ToF16Bits(-0), 0x8000);
  for (let b = 0; b < 65536; b++) {
    const x = f16BitsToF32(b);
    if (Number.isNaN(x)) assertOk((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0);
    else assertEquals(f32ToF16Bits(x), b);
  }
});

Deno.test("bf16: ggml's rounding (nearest even on the high half, NaN kept quiet)", () => {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const bits = (i: number) => (u[0] = i, f[0]);
  assertEquals(f32ToBf16Bits(bits(0x3f808000)), 0x3f80); // tie, even stays
  assertEquals(f32ToBf16Bits(bits(0x3f818000)), 0x3f82); // tie, odd rounds up
  assertEquals(f32ToBf16Bits(bits(0x3f808001)), 0x3f81);
  assertEquals(f32ToBf16Bits(bits(0x7f800001)), 0x7fc0); // signalling NaN → quiet
  assertEquals(f32ToBf16Bits(bits(0x7f7fffff)), 0x7f80); // max float rounds to inf, as ggml
  assertEquals(bf16BitsToF32(0x3f80), 1);
  assertEquals(roundBf16(1 + 2 ** -9), 1);
});

Deno.test("f32 → i32 truncates, and gives INT32_MIN for NaN and out of range (x86)", () => {
  assertEquals(f32ToI32(2.9), 2);
  assertEquals(f32ToI32(-2.9), -2);
  assertEquals(f32ToI32(NaN), -2147483648);
  assertEquals(f32ToI32(3e9), -2147483648);
  assertEquals(f32ToI32(-2147483648), -2147483648);
});
