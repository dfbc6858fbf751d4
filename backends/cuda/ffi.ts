/**
 * The native library's C ABI (native/include/graphwire.h) as a Deno.dlopen symbol table, where to
 * find the library, and status handling. One library serves one vendor: libgraphwire_cuda (nvcc)
 * or libgraphwire_hip (hipcc).
 * @module
 */

import { DeviceError, UnsupportedOpError } from "../../protocol/errors.ts";

/** The ABI version this module speaks (GW_ABI_VERSION). */
export const ABI_VERSION = 1;

/** Symbols of graphwire.h. Device pointers travel as u64. */
export const SYMBOLS = {
  gw_abi_version: { parameters: [], result: "u32" },
  gw_backend_name: { parameters: [], result: "pointer" },
  gw_last_error: { parameters: [], result: "pointer" },
  gw_blas_info: { parameters: [], result: "pointer" },
  gw_set_option: { parameters: ["i32", "i64"], result: "i32" },
  gw_get_option: { parameters: ["i32", "buffer"], result: "i32" },
  gw_device_count: { parameters: ["buffer"], result: "i32" },
  gw_device_get_info: { parameters: ["i32", "buffer"], result: "i32" },
  gw_device_memory: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  gw_alloc: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  gw_free: { parameters: ["i32", "u64"], result: "i32" },
  gw_copy_to_device: { parameters: ["i32", "u64", "buffer", "u64"], result: "i32" },
  gw_copy_to_host: { parameters: ["i32", "buffer", "u64", "u64"], result: "i32" },
  gw_copy_device: { parameters: ["i32", "u64", "u64", "u64"], result: "i32" },
  gw_memset: { parameters: ["i32", "u64", "i32", "u64"], result: "i32" },
  gw_synchronize: { parameters: ["i32"], result: "i32" },
  gw_node_supported: { parameters: ["i32", "buffer"], result: "i32" },
  gw_graph_compute: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  gw_plan_create: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  gw_plan_update: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  gw_plan_compute: { parameters: ["pointer"], result: "i32" },
  gw_plan_get_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  gw_plan_time: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  gw_plan_free: { parameters: ["pointer"], result: "void" },
} as const;

/** The opened library. */
export type NativeLib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** gw_status. */
export const Status = {
  OK: 0,
  INVALID: 1,
  UNSUPPORTED: 2,
  OUT_OF_MEMORY: 3,
  DEVICE: 4,
  NO_DEVICE: 5,
  STRUCTURE: 6,
  INTERNAL: 7,
} as const;

/** gw_option. */
export const NativeOption = {
  CUDA_GRAPHS: 0,
  UPDATE_LIMIT: 1,
  BLAS: 2,
  BLAS_LOADED: 3,
  CAPTURE_FIRST_RUN: 4,
  MATVEC_MAX_COLS: 5,
  MATVEC_ROWS: 6,
  FA_BLOCKS_PER_SM: 7,
  MATVEC_WARPS: 8,
  COPY_BLOCKS_PER_SM: 9,
  COPY_ORDER: 10,
  MATVEC_UNROLL: 11,
  MATVEC_MMA_COLS: 12,
  COPY_ROWS: 13,
  FA_KERNEL: 14,
  PDL: 15,
  FA_MERGE: 16,
  FA_EXACT_WAVE: 17,
} as const;

/** A loaded library and what it says of itself. */
export interface Native {
  readonly lib: NativeLib;
  readonly path: string;
  /** "cuda" or "hip". */
  readonly backend: "cuda" | "hip";
  close(): void;
}

/** The calling thread's last error message of the library. */
export function lastError(lib: NativeLib): string {
  const p = lib.gw_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/** Throws a typed error for a failed status: unsupported ops as UnsupportedOpError. */
export function check(lib: NativeLib, status: number, what: string): void {
  if (status === Status.OK) return;
  const msg = `${what}: ${lastError(lib) || `status ${status}`}`;
  if (status === Status.UNSUPPORTED) throw new UnsupportedOpError(msg);
  throw new DeviceError(msg);
}

/** The library file name of a backend on this OS. */
export function libraryName(backend: "cuda" | "hip"): string {
  switch (Deno.build.os) {
    case "windows":
      return `graphwire_${backend}.dll`;
    case "darwin":
      return `libgraphwire_${backend}.dylib`;
    default:
      return `libgraphwire_${backend}.so`;
  }
}

function dirname(p: string): string {
  const i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\"));
  return i <= 0 ? "." : p.slice(0, i);
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Where the library of `backend` is looked for, in order: `explicit` (--native-lib) or else
 * GRAPHWIRE_NATIVE_LIB, next to the executable, and native/build (or native/build/Release, where
 * cmake-js puts it) of this source tree and of the working directory.
 */
export function candidatePaths(backend: "cuda" | "hip", explicit?: string): string[] {
  if (!explicit) {
    try {
      explicit = Deno.env.get("GRAPHWIRE_NATIVE_LIB") || undefined;
    } catch {
      // no env permission: the default places only
    }
  }
  if (explicit) return [explicit];
  const name = libraryName(backend);
  const out: string[] = [];
  try {
    out.push(`${dirname(Deno.execPath())}/${name}`);
  } catch {
    // no read permission for the executable's path
  }
  // cmake-js puts the library in native/build/Release; a plain CMake build in native/build
  for (const sub of ["", "Release/"]) {
    const here = new URL(`../../native/build/${sub}${name}`, import.meta.url);
    if (here.protocol === "file:") out.push(decodeURIComponent(here.pathname));
    try {
      out.push(`${Deno.cwd()}/native/build/${sub}${name}`);
    } catch {
      // no read permission for the working directory
    }
  }
  return [...new Set(out)];
}

const opened = new Map<string, Native>();

/**
 * Opens the library of `backend`, or says why it cannot: no file at any candidate path, no
 * --allow-ffi, an ABI mismatch, or a library of the other vendor at an explicit path.
 */
export function openNative(backend: "cuda" | "hip", explicit?: string): Native | { absent: string } {
  const paths = candidatePaths(backend, explicit);
  const path = paths.find(exists);
  if (!path) {
    return {
      absent: explicit
        ? `native library ${explicit} does not exist`
        : `no ${libraryName(backend)} (looked in ${
          paths.join(", ")
        }; build it with \`deno task build:native\` ` +
          `or pass --native-lib)`,
    };
  }
  const cached = opened.get(path);
  if (cached) {
    return cached.backend === backend ? cached : { absent: `${path} is the ${cached.backend} library` };
  }
  let dl: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    dl = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return { absent: `${path} found, but loading it needs --allow-ffi` };
    }
    return { absent: `${path} could not be loaded: ${(e as Error).message}` };
  }
  const lib = dl.symbols;
  const abi = lib.gw_abi_version();
  if (abi !== ABI_VERSION) {
    dl.close();
    return { absent: `${path} speaks ABI ${abi}, this graphwire speaks ${ABI_VERSION}: rebuild the library` };
  }
  const namePtr = lib.gw_backend_name();
  const name = namePtr ? Deno.UnsafePointerView.getCString(namePtr) : "";
  if (name !== "cuda" && name !== "hip") {
    dl.close();
    return { absent: `${path} names an unknown backend "${name}"` };
  }
  const native: Native = { lib, path, backend: name, close: () => dl.close() };
  opened.set(path, native);
  if (name !== backend) return { absent: `${path} is the ${name} library` };
  return native;
}

/** Sets a library option (tests and benchmarks switch CUDA graphs or cuBLAS off with it). */
export function setOption(native: Native, key: number, value: number): void {
  check(native.lib, native.lib.gw_set_option(key, BigInt(value)), "gw_set_option");
}

/** Reads a library option. */
export function getOption(native: Native, key: number): number {
  const out = new BigInt64Array(1);
  check(native.lib, native.lib.gw_get_option(key, out), "gw_get_option");
  return Number(out[0]);
}

/**
 * Whether the library runs `descriptor` (one gw_node) on device `index`; index -1 asks without a GPU
 * (a generic sm_80 device), which lets machines without one test the validation. Null when it
 * does, else the library's reason.
 */
export function whyRefused(native: Native, descriptor: Uint8Array, index = -1): string | null {
  const st = native.lib.gw_node_supported(index, descriptor);
  return st === Status.OK ? null : lastError(native.lib) || `status ${st}`;
}

/** Which BLAS library the native code uses, or why none. */
export function blasInfo(native: Native): string {
  const p = native.lib.gw_blas_info();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}
