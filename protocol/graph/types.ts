/**
 * ggml's tensor types, numbered exactly as `enum ggml_type` at ggml-org/ggml d99724f2, with the
 * block size and bytes per block of ggml's `type_traits` (generated from that commit's library).
 *
 * @example
 * ```ts
 * import { GgmlType, typeInfo } from "./types.ts";
 * typeInfo(GgmlType.Q4_0).blockSize; // 32
 * ```
 * @module
 */

/** `enum ggml_type`: the numbers that travel in rpc_tensor.type. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;

/** A value of {@linkcode GgmlType}. */
export type GgmlType = typeof GgmlType[keyof typeof GgmlType];

/** `GGML_TYPE_COUNT`: every valid type is below it. */
export const GGML_TYPE_COUNT = 43;

/** What ggml's type_traits say of one type. */
export interface TypeInfo {
  /** ggml's name (`ggml_type_name`), e.g. "q4_K". */
  readonly name: string;
  /** Elements per block; 0 for removed type numbers. */
  readonly blockSize: number;
  /** Bytes per block; 0 for removed type numbers. */
  readonly typeSize: number;
  /** `ggml_is_quantized`. */
  readonly quantized: boolean;
}

const REMOVED: TypeInfo = { name: "removed", blockSize: 0, typeSize: 0, quantized: false };

/** Indexed by type number, 0 … 42. Removed numbers (4, 5, 31–33, 36–38) have block size 0. */
export const TYPES: readonly TypeInfo[] = [
  { name: "f32", blockSize: 1, typeSize: 4, quantized: false }, // 0
  { name: "f16", blockSize: 1, typeSize: 2, quantized: false }, // 1
  { name: "q4_0", blockSize: 32, typeSize: 18, quantized: true }, // 2
  { name: "q4_1", blockSize: 32, typeSize: 20, quantized: true }, // 3
  REMOVED, // 4
  REMOVED, // 5
  { name: "q5_0", blockSize: 32, typeSize: 22, quantized: true }, // 6
  { name: "q5_1", blockSize: 32, typeSize: 24, quantized: true }, // 7
  { name: "q8_0", blockSize: 32, typeSize: 34, quantized: true }, // 8
  { name: "q8_1", blockSize: 32, typeSize: 36, quantized: true }, // 9
  { name: "q2_K", blockSize: 256, typeSize: 84, quantized: true }, // 10
  { name: "q3_K", blockSize: 256, typeSize: 110, quantized: true }, // 11
  { name: "q4_K", blockSize: 256, typeSize: 144, quantized: true }, // 12
  { name: "q5_K", blockSize: 256, typeSize: 176, quantized: true }, // 13
  { name: "q6_K", blockSize: 256, typeSize: 210, quantized: true }, // 14
  { name: "q8_K", blockSize: 256, typeSize: 292, quantized: true }, // 15
  { name: "iq2_xxs", blockSize: 256, typeSize: 66, quantized: true }, // 16
  { name: "iq2_xs", blockSize: 256, typeSize: 74, quantized: true }, // 17
  { name: "iq3_xxs", blockSize: 256, typeSize: 98, quantized: true }, // 18
  { name: "iq1_s", blockSize: 256, typeSize: 50, quantized: true }, // 19
  { name: "iq4_nl", blockSize: 32, typeSize: 18, quantized: true }, // 20
  { name: "iq3_s", blockSize: 256, typeSize: 110, quantized: true }, // 21
  { name: "iq2_s", blockSize: 256, typeSize: 82, quantized: true }, // 22
  { name: "iq4_xs", blockSize: 256, typeSize: 136, quantized: true }, // 23
  { name: "i8", blockSize: 1, typeSize: 1, quantized: false }, // 24
  { name: "i16", blockSize: 1, typeSize: 2, quantized: false }, // 25
  { name: "i32", blockSize: 1, typeSize: 4, quantized: false }, // 26
  { name: "i64", blockSize: 1, typeSize: 8, quantized: false }, // 27
  { name: "f64", blockSize: 1, typeSize: 8, quantized: false }, // 28
  { name: "iq1_m", blockSize: 256, typeSize: 56, quantized: true }, // 29
  { name: "bf16", blockSize: 1, typeSize: 2, quantized: false }, // 30
  REMOVED, // 31
  REMOVED, // 32
  REMOVED, // 33
  { name: "tq1_0", blockSize: 256, typeSize: 54, quantized: true }, // 34
  { name: "tq2_0", blockSize: 256, typeSize: 66, quantized: true }, // 35
  REMOVED, // 36
  REMOVED, // 37
  REMOVED, // 38
  { name: "mxfp4", blockSize: 32, typeSize: 17, quantized: true }, // 39
  { name: "nvfp4", blockSize: 64, typeSize: 36, quantized: true }, // 40
  { name: "q1_0", blockSize: 128, typeSize: 18, quantized: true }, // 41
  { name: "q2_0", blockSize: 64, typeSize: 18, quantized: true }, // 42
];

/** The traits of `type`, or undefined when it is not a valid, present type. */
export function typeInfo(type: number): TypeInfo | undefined {
  const info = TYPES[type];
  return info && info.blockSize > 0 ? info : undefined;
}

/** ggml's name of a type number ("f32", "q8_0"), or `type#N` for numbers that name none. */
export function typeName(type: number): string {
  return typeInfo(type)?.name ?? `type#${type}`;
}
