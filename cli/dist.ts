/**
 * What `deno task compile` (cli/compile.ts) and `deno task package` (cli/package.ts) share: the
 * permissions graphwire runs with, the platform name in the output files, the source tree's module
 * graph with the web workers it starts, and the native libraries built beside it (Dawn's too).
 * @module
 */

import { DAWN_NPM_VERSION, dawnPackage } from "../backends/webgpu/providers/dawn_ffi.ts";
import { findPackageFile } from "../backends/webgpu/providers/npm.ts";

/** The permissions graphwire runs with (the rpc-server and bench tasks' flags, as one set). */
export const RUN_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--allow-run",
];

/** Unstable features graphwire needs at run time (WebGPU). */
export const RUN_UNSTABLE: readonly string[] = ["--unstable-webgpu"];

/** The entry module, relative to the source tree's root. */
export const ENTRY = "cli/main.ts";

/** The root of this source tree (the folder holding deno.json). */
export function repoRoot(): string {
  return decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
}

/** The folder the user ran the task from (`deno task` runs in deno.json's folder and says where in INIT_CWD). */
export function callerCwd(): string {
  return Deno.env.get("INIT_CWD") || Deno.cwd();
}

/** `<os>-<arch>` of this machine as Deno names them, e.g. `linux-x86_64`. */
export function platformName(): string {
  return `${Deno.build.os}-${Deno.build.arch}`;
}

/** A finished subprocess: its exit code and text output. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` in `cwd` and collects its output. */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Drops ANSI colour codes from Deno's output. */
export function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** The local files of the module graph of `entry` (static and literal dynamic imports), by `deno info`. */
export async function localModules(root: string, entry = ENTRY): Promise<string[]> {
  const r = await runCommand(Deno.execPath(), ["info", "--json", "--no-lock", entry], { cwd: root });
  if (r.code !== 0) throw new Error(`deno info ${entry} failed:\n${plain(r.stderr).trim()}`);
  const graph = JSON.parse(r.stdout) as { modules?: { specifier?: string; local?: string }[] };
  const files: string[] = [];
  for (const m of graph.modules ?? []) {
    if (m.specifier?.startsWith("file:") && m.local) files.push(m.local);
  }
  return files;
}

/** A web worker started by a module of the graph: `new Worker(new URL(spec, import.meta.url))`. */
export interface WorkerRef {
  /** The module that starts it. */
  module: string;
  /** The relative specifier written in that module, e.g. `./worker.ts`. */
  spec: string;
  /** The worker's main module on disk. */
  path: string;
}

const WORKER_RE = /new\s+Worker\s*\(\s*new\s+URL\s*\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g;

function dirOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** Resolves `spec` (a relative specifier) against the folder `dir`. */
export function resolveRelative(dir: string, spec: string): string {
  return decodeURIComponent(new URL(spec, `file://${dir}/`).pathname);
}

/**
 * The web workers the modules in `files` start. A worker is a module of its own: `deno compile`
 * must be told to include it, and a bundle must ship it at the same relative place.
 */
export async function findWorkers(files: string[]): Promise<WorkerRef[]> {
  const out: WorkerRef[] = [];
  for (const module of files) {
    if (!/\.(ts|js|mts|mjs)$/.test(module)) continue;
    const text = await Deno.readTextFile(module);
    for (const m of text.matchAll(WORKER_RE)) {
      out.push({ module, spec: m[2], path: resolveRelative(dirOf(module), m[2]) });
    }
  }
  return out;
}

/** The native libraries (libgraphwire_*) built in native/build (or native/build/Release). */
export async function nativeLibraries(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const dir of [`${root}/native/build`, `${root}/native/build/Release`]) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && /^(lib)?graphwire_[a-z0-9]+\.(so|dylib|dll)$/.test(e.name)) {
          out.push(`${dir}/${e.name}`);
        }
      }
    } catch {
      // not built
    }
  }
  // One library per name: native/build wins over native/build/Release.
  const byName = new Map<string, string>();
  for (const p of out) {
    const name = p.slice(p.lastIndexOf("/") + 1);
    if (!byName.has(name)) byName.set(name, p);
  }
  return [...byName.values()];
}

/**
 * Dawn's library (the `dawn` WebGPU provider) from Deno's npm cache, when this machine has it; the
 * provider finds it beside the runtime (the package's `deno`, a compiled executable).
 */
export function dawnLibrary(): string | undefined {
  const pkg = dawnPackage();
  return "reason" in pkg ? undefined : findPackageFile(pkg.name, DAWN_NPM_VERSION, pkg.file);
}

/** A byte count for progress lines, e.g. `95.6 MB`. */
export function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}
