/**
 * `deno task compile`: one executable `dist/graphwire-<os>-<arch>` made by `deno compile`, with the
 * permissions graphwire needs and WebGPU (`--unstable-webgpu`) embedded, the CPU backend's web
 * worker included, and the built native libraries copied beside it (the CUDA/HIP backend looks next
 * to the executable first, see backends/cuda/ffi.ts).
 *
 * `deno compile` builds on denort, Deno's runtime without the CLI: it downloads it from dl.deno.land
 * once (then it is in Deno's cache), or takes the file DENORT_BIN names. Where neither works this
 * stops with one message saying what to do. The `deno` binary itself cannot stand in for denort.
 *
 * Usage: deno task compile [-o FILE] [--check]
 * @module
 */

import { parseArgs, UsageError } from "./args.ts";
import {
  callerCwd,
  dawnLibrary,
  ENTRY,
  findWorkers,
  localModules,
  nativeLibraries,
  plain,
  platformName,
  repoRoot,
  RUN_PERMISSIONS,
  RUN_UNSTABLE,
  runCommand,
  size,
} from "./dist.ts";

/** Help text of the compile task. */
export const COMPILE_HELP = `Usage: deno task compile [options]

Builds dist/graphwire-<os>-<arch>, one executable (deno compile) with graphwire's permissions and
WebGPU embedded; the native libraries in native/build (when built) are copied beside it.
deno compile needs denort (Deno's runtime without the CLI): it is downloaded once from dl.deno.land,
or taken from DENORT_BIN=/path/to/denort (of the same Deno version as the deno running this).
Without network, "deno task package" makes an offline worker package instead.

Options:
  -o, --output FILE   the executable to write (default dist/graphwire-<os>-<arch>)
      --check         type-check before compiling (deno task check does it for the whole tree)
  -h, --help          show this help
`;

/** A failure of the compile task that carries the whole message for the user. */
export class CompileError extends Error {
  override name = "CompileError";
}

/** Where denort of this Deno version for this machine is published. */
export function denortUrl(): { dir: string; zip: string } {
  return {
    dir: `https://dl.deno.land/release/v${Deno.version.deno}/`,
    zip: `denort-${Deno.build.target}.zip`,
  };
}

/** The message for a machine where denort can be neither downloaded nor found. */
export function noDenortMessage(cause: string): string {
  const { dir, zip } = denortUrl();
  return `deno compile needs denort (Deno's runtime without the CLI) and could not get it${
    cause ? `: ${cause}` : ""
  }.
Set DENORT_BIN=/path/to/denort and run again: on a machine with internet, download ${zip} from ${dir}
(the version must match this deno, ${Deno.version.deno}), unzip it and copy the file denort here.
Or run "deno task package": it makes an offline worker package from this machine's deno.`;
}

function realPath(p: string): string {
  try {
    return Deno.realPathSync(p);
  } catch {
    return p;
  }
}

/** Checks DENORT_BIN when set; returns it, or undefined when unset. */
export function checkDenortBin(env: string | undefined): string | undefined {
  if (!env) return undefined;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(env);
  } catch {
    throw new CompileError(noDenortMessage(`DENORT_BIN=${env} does not exist`));
  }
  if (!info.isFile) throw new CompileError(noDenortMessage(`DENORT_BIN=${env} is not a file`));
  if (realPath(env) === realPath(Deno.execPath())) {
    throw new CompileError(
      noDenortMessage(
        `DENORT_BIN=${env} is the deno CLI itself, which does not work as a runtime base ` +
          `(the executable would start a REPL)`,
      ),
    );
  }
  return env;
}

/** True when deno compile's error output says it could not get denort. */
export function isDenortFailure(stderr: string): boolean {
  return /denort|dl\.deno\.land|base binary/i.test(stderr);
}

/** The deepest cause deno compile names (its error chain, before any backtrace), for the message. */
export function causeOf(stderr: string): string {
  const text = plain(stderr).split(/\n\s*Stack backtrace:/)[0];
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const chain = lines.filter((l) => /^\d+:\s/.test(l)).map((l) => l.replace(/^\d+:\s*/, ""));
  return chain.at(-1) ?? lines.find((l) => /^error:/.test(l))?.replace(/^error:\s*/, "") ?? "";
}

/** The `deno compile` arguments for `output`, including the web workers the graph starts. */
export async function compileArgs(root: string, output: string, check: boolean): Promise<string[]> {
  const workers = await findWorkers(await localModules(root));
  const includes = [...new Set(workers.map((w) => w.path))].flatMap((p) => ["--include", p]);
  return [
    "compile",
    // No lockfile: deno compile would embed every npm package it lists (build tools included).
    "--no-lock",
    ...(check ? [] : ["--no-check"]),
    ...RUN_PERMISSIONS,
    ...RUN_UNSTABLE,
    ...includes,
    "--output",
    output,
    ENTRY,
  ];
}

/** Compiles graphwire; returns the executable's path. */
export async function compile(
  opts: { output?: string; check?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const root = repoRoot();
  const windows = Deno.build.os === "windows";
  const output = opts.output ?? `${root}/dist/graphwire-${platformName()}${windows ? ".exe" : ""}`;
  const denort = checkDenortBin(Deno.env.get("DENORT_BIN") || undefined);
  log(`[1/3] module graph of ${ENTRY} (deno info)`);
  const args = await compileArgs(root, output, !!opts.check);
  const workers = args.filter((_, i) => args[i - 1] === "--include");
  log(`      web workers included: ${workers.map((w) => w.slice(root.length + 1)).join(", ") || "none"}`);
  log(
    `[2/3] deno compile -> ${output} (runtime base: ${
      denort ? `DENORT_BIN=${denort}` : `denort ${Deno.version.deno}, from Deno's cache or dl.deno.land`
    })`,
  );
  await Deno.mkdir(output.slice(0, output.lastIndexOf("/")) || ".", { recursive: true });
  const r = await runCommand(Deno.execPath(), args, { cwd: root });
  if (r.code !== 0) {
    if (isDenortFailure(r.stderr)) {
      const cause = causeOf(r.stderr);
      throw new CompileError(
        noDenortMessage(
          denort ? `DENORT_BIN=${denort}: ${cause}` : `downloading ${denortUrl().zip} failed (${cause})`,
        ),
      );
    }
    throw new CompileError(`deno compile failed:\n${plain(r.stderr).trim()}`);
  }
  log(`      ${size((await Deno.stat(output)).size)}`);
  log(`[3/3] native libraries beside it`);
  const dir = output.slice(0, output.lastIndexOf("/")) || ".";
  const natives = await nativeLibraries(root);
  for (const lib of natives) {
    const base = lib.slice(lib.lastIndexOf("/") + 1);
    await Deno.copyFile(lib, `${dir}/${base}`);
    log(`      ${lib.slice(root.length + 1)} -> ${dir}/${base}`);
  }
  if (!natives.length) log(`      none built (deno task build:native builds the CUDA/HIP one)`);
  const dawn = dawnLibrary();
  if (dawn) {
    const base = dawn.slice(dawn.lastIndexOf("/") + 1);
    await Deno.copyFile(dawn, `${dir}/${base}`);
    log(`      ${dawn} -> ${dir}/${base} (Dawn, the fast WebGPU provider)`);
  }
  log(`\n${output}\nOn a worker: ./${output.slice(dir.length + 1)} rpc-server -H 0.0.0.0 -p 50052`);
  return output;
}

/** Runs the compile task with `argv`; returns the exit code. */
export async function compileMain(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    output: { type: "string", short: "o" },
    check: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(COMPILE_HELP);
    return 0;
  }
  const out = values.output as string | undefined;
  await compile({
    output: out === undefined ? undefined : out.startsWith("/") ? out : `${callerCwd()}/${out}`,
    check: !!values.check,
  });
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await compileMain(Deno.args));
  } catch (e) {
    console.error(`graphwire compile: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(`\n${COMPILE_HELP}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
