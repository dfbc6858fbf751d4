/**
 * Wire constants of ggml's RPC protocol v5.1.0 (ggml-org/ggml d99724f2, `src/ggml-rpc/ggml-rpc.cpp`).
 * @module
 */

/** Protocol version graphwire speaks. */
export const RPC_PROTO_MAJOR = 5;
/** Protocol minor version. */
export const RPC_PROTO_MINOR = 1;
/** Protocol patch version. */
export const RPC_PROTO_PATCH = 0;

/** `enum rpc_cmd`. HELLO is 14 forever. */
export const Cmd = {
  ALLOC_BUFFER: 0,
  GET_ALIGNMENT: 1,
  GET_MAX_SIZE: 2,
  BUFFER_GET_BASE: 3,
  FREE_BUFFER: 4,
  BUFFER_CLEAR: 5,
  SET_TENSOR: 6,
  SET_TENSOR_HASH: 7,
  GET_TENSOR: 8,
  COPY_TENSOR: 9,
  GRAPH_COMPUTE: 10,
  GET_DEVICE_MEMORY: 11,
  INIT_TENSOR: 12,
  GET_ALLOC_SIZE: 13,
  HELLO: 14,
  DEVICE_COUNT: 15,
  GRAPH_RECOMPUTE: 16,
  MEMSET_TENSOR: 17,
} as const;

/** A value of {@linkcode Cmd}. */
export type Cmd = typeof Cmd[keyof typeof Cmd];

/** `RPC_CMD_COUNT`: command bytes at or above it are unknown. */
export const CMD_COUNT = 18;

/** Command names indexed by number. */
export const CMD_NAMES: readonly string[] = Object.keys(Cmd);

/** The command's name, or `cmd#N`. */
export function cmdName(cmd: number): string {
  return CMD_NAMES[cmd] ?? `cmd#${cmd}`;
}

/** Commands that send no response: a failure there shows only as a closed connection. */
export const NO_RESPONSE: ReadonlySet<number> = new Set([
  Cmd.SET_TENSOR,
  Cmd.GRAPH_COMPUTE,
  Cmd.GRAPH_RECOMPUTE,
]);

/** `GGML_MAX_DIMS`. */
export const MAX_DIMS = 4;
/** `GGML_MAX_SRC`. */
export const MAX_SRC = 10;
/** `GGML_MAX_OP_PARAMS` in bytes. */
export const MAX_OP_PARAMS = 64;
/** `GGML_MAX_NAME`. */
export const MAX_NAME = 64;
/** `sizeof(rpc_tensor)`. */
export const RPC_TENSOR_SIZE = 296;
/** Bytes of the HELLO capability block (`conn_caps`). */
export const CONN_CAPS_SIZE = 24;
/** The client sends SET_TENSOR_HASH first for tensors larger than this (10 MiB). */
export const HASH_THRESHOLD = 10 * 1024 * 1024;
/** Size of the frame header of a request: u8 cmd + u64 size. */
export const REQUEST_HEADER_SIZE = 9;
/** Size of the frame header of a response: u64 size. */
export const RESPONSE_HEADER_SIZE = 8;

/**
 * Exact request payload sizes of fixed-size commands; SET_TENSOR and GRAPH_COMPUTE are variable
 * (SET_TENSOR at least 304 bytes), so they are absent here.
 */
export const REQUEST_SIZE: Readonly<Record<number, number>> = {
  [Cmd.ALLOC_BUFFER]: 12,
  [Cmd.GET_ALIGNMENT]: 4,
  [Cmd.GET_MAX_SIZE]: 4,
  [Cmd.BUFFER_GET_BASE]: 8,
  [Cmd.FREE_BUFFER]: 8,
  [Cmd.BUFFER_CLEAR]: 9,
  [Cmd.SET_TENSOR_HASH]: RPC_TENSOR_SIZE + 16,
  [Cmd.GET_TENSOR]: RPC_TENSOR_SIZE + 16,
  [Cmd.COPY_TENSOR]: 2 * RPC_TENSOR_SIZE,
  [Cmd.GET_DEVICE_MEMORY]: 4,
  [Cmd.INIT_TENSOR]: RPC_TENSOR_SIZE,
  [Cmd.GET_ALLOC_SIZE]: 4 + RPC_TENSOR_SIZE * (1 + MAX_SRC),
  [Cmd.HELLO]: CONN_CAPS_SIZE,
  [Cmd.DEVICE_COUNT]: 0,
  [Cmd.GRAPH_RECOMPUTE]: 4,
  [Cmd.MEMSET_TENSOR]: RPC_TENSOR_SIZE + 17,
};

/**
 * Exact response payload sizes; GET_TENSOR answers with the requested size, and the three
 * commands of {@linkcode NO_RESPONSE} send nothing.
 */
export const RESPONSE_SIZE: Readonly<Record<number, number>> = {
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
  [Cmd.HELLO]: 4 + CONN_CAPS_SIZE,
  [Cmd.DEVICE_COUNT]: 4,
  [Cmd.MEMSET_TENSOR]: 0,
};
