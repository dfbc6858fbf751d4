/**
 * The on-disk tensor cache of `rpc-server -c`, compatible with ggml's: files named by the FNV-1a
 * hash of their bytes (16 lowercase hex digits). Unlike the reference, a file is used only if its
 * bytes still hash to its name; a corrupt or planted file is ignored and removed.
 * @module
 */

import { HASH_THRESHOLD } from "../wire/constants.ts";
import { fnv1a64, hashHex } from "../wire/fnv.ts";

/** The default directory: `~/.cache/graphwire/rpc/`. */
export function defaultCacheDir(): string {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`;
  return `${base}/graphwire/rpc`;
}

/** A directory of cached tensors. */
export class TensorCache {
  readonly dir: string;
  /** Messages about stored, rejected and removed files go here. */
  log: (msg: string) => void;

  constructor(dir: string, log: (msg: string) => void = () => {}) {
    this.dir = dir.replace(/\/+$/, "") || "/";
    this.log = log;
    Deno.mkdirSync(this.dir, { recursive: true });
  }

  /** Path of the file for `hash`. */
  pathOf(hash: bigint): string {
    return `${this.dir}/${hashHex(hash)}`;
  }

  /** Whether data of this size is cached at all (the reference stores only tensors over 10 MiB). */
  static wants(size: number): boolean {
    return size > HASH_THRESHOLD;
  }

  /** Stores `data` under its hash (written to a temporary name, then renamed). */
  async store(data: Uint8Array, hash: bigint = fnv1a64(data)): Promise<string> {
    const path = this.pathOf(hash);
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeFile(tmp, data);
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    return path;
  }

  /**
   * The cached bytes for `hash`, or null when there is no such file or its bytes do not hash to its
   * name (then the file is removed).
   */
  async load(hash: bigint): Promise<Uint8Array | null> {
    const path = this.pathOf(hash);
    let data: Uint8Array;
    try {
      const st = await Deno.lstat(path);
      if (!st.isFile) {
        this.log(`tensor cache: ${path} is not a regular file; ignored`);
        return null;
      }
      data = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      this.log(`tensor cache: cannot read ${path}: ${(e as Error).message}`);
      return null;
    }
    const actual = fnv1a64(data);
    if (actual !== hash) {
      this.log(`tensor cache: ${path} hashes to ${hashHex(actual)}, not its name; removed`);
      await Deno.remove(path).catch(() => {});
      return null;
    }
    return data;
  }
}
