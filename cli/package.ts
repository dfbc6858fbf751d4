/**
 * `deno task package`: the offline worker package `dist/graphwire-worker-<os>-<arch>.tar.gz`, made
 * from what this machine has: the Deno binary running this build, graphwire bundled by `deno bundle`
 * (with the web workers it starts), the native libraries when they are built, Dawn's WebGPU library
 * when Deno's cache has it (the fast `dawn` provider), and a launcher
 * `graphwire` (a POSIX sh script; `graphwire.cmd` on Windows). Unpacked anywhere, `./graphwire
 * rpc-server ...` runs with no network and no Deno installed.
 *
 * Usage: deno task package [-o FILE] [--out-dir DIR]
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
  type WorkerRef,
} from "./dist.ts";

/** Help text of the package task. */
export const PACKAGE_HELP = `Usage: deno task package [options]

Builds dist/graphwire-worker-<os>-<arch>.tar.gz: this machine's deno, graphwire bundled by
"deno bundle", the native libraries in native/build (when built) and a launcher "graphwire".
No network is needed (the bundler, esbuild, must be in Deno's cache: it is after one bundle).

Options:
  -o, --output FILE   the archive to write (default dist/graphwire-worker-<os>-<arch>.tar.gz)
      --out-dir DIR   folder for the default archive name (default dist)
  -h, --help          show this help
`;

/** The flags the launcher passes to `deno run`. */
export const LAUNCH_FLAGS: readonly string[] = [
  "--no-config",
  "--no-lock",
  "--no-remote",
  ...RUN_PERMISSIONS,
  ...RUN_UNSTABLE,
];

/** The POSIX sh launcher: needs nothing but sh's builtins (readlink only to follow a symlink to it). */
export function shLauncher(): string {
  const flags = LAUNCH_FLAGS.join(" ");
  return `#!/bin/sh
# graphwire worker package launcher: runs the bundled graphwire (graphwire.js) on the Deno runtime
# shipped beside it. No deno on PATH and no network needed. Usage: ./graphwire <command> [options]
self=$0
# Follow symlinks to this script (e.g. /usr/local/bin/graphwire -> /opt/graphwire/graphwire).
while [ -h "$self" ] && command -v readlink >/dev/null 2>&1; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) case $self in */*) self=\${self%/*}/$link ;; *) self=$link ;; esac ;;
  esac
done
case $self in
  */*) here=\${self%/*} ;;
  *) here=. ;;
esac
here=$(cd "$here" && pwd -P) || exit 1
if [ ! -x "$here/deno" ] || [ ! -f "$here/graphwire.js" ]; then
  echo "graphwire: $here/deno or $here/graphwire.js is missing: unpack the whole package" >&2
  exit 1
fi
# Deno's own cache stays private to the package (or a temp folder when the package is read-only),
# so no user cache is read or written and nothing is fetched.
if [ -n "\${GRAPHWIRE_DENO_DIR:-}" ]; then
  DENO_DIR=$GRAPHWIRE_DENO_DIR
elif [ -w "$here" ]; then
  DENO_DIR=$here/.deno
else
  DENO_DIR=\${TMPDIR:-/tmp}/graphwire-deno-\${USER:-user}
fi
export DENO_DIR
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 DENO_NO_DEPRECATION_WARNINGS=1
# How graphwire starts itself again (bench --serve spawns local servers).
export GRAPHWIRE_SELF="$here/graphwire"
exec "$here/deno" run ${flags} "$here/graphwire.js" "$@"
`;
}

/** The Windows launcher. */
export function cmdLauncher(): string {
  const flags = LAUNCH_FLAGS.join(" ");
  return [
    "@echo off",
    "rem graphwire worker package launcher: runs graphwire.js on the Deno runtime shipped beside it.",
    "setlocal",
    'if "%GRAPHWIRE_DENO_DIR%"=="" (set "DENO_DIR=%~dp0.deno") else (set "DENO_DIR=%GRAPHWIRE_DENO_DIR%")',
    "set DENO_NO_UPDATE_CHECK=1",
    "set DENO_NO_PROMPT=1",
    "set DENO_NO_DEPRECATION_WARNINGS=1",
    'set "GRAPHWIRE_SELF=%~dp0graphwire.cmd"',
    `"%~dp0deno.exe" run ${flags} "%~dp0graphwire.js" %*`,
    "",
  ].join("\r\n");
}

function readme(name: string, natives: string[], dawn: string | undefined, denoVersion: string): string {
  return `${name}: a graphwire worker package (graphwire ${version()}, Deno ${denoVersion}).

  ./graphwire rpc-server -H 0.0.0.0 -p 50052     serve this host's devices to llama.cpp --rpc
  ./graphwire rpc-server --list-devices          what this host can serve
  ./graphwire rpc-client info HOST:PORT          ask any ggml RPC server what it has
  ./graphwire bench --help                       llama-bench for ggml RPC

Needs nothing else: no Deno installed, no network. Contents: deno (the runtime), graphwire.js (the
bundled code)${natives.length ? `, ${natives.join(", ")} (native CUDA/HIP backend)` : ""}${
    dawn ? `, ${dawn} (Dawn, the fast WebGPU provider)` : ""
  }, and this launcher.

SECURITY: the ggml RPC protocol has no authentication and no encryption. Anyone who can reach the
port can allocate memory and run compute on this host. Listen on loopback (the default) or on a
trusted private network only; never expose the port to an untrusted network.
`;
}

function version(): string {
  try {
    const j = JSON.parse(Deno.readTextFileSync(`${repoRoot()}/deno.json`));
    return String(j.version ?? "?");
  } catch {
    return "?";
  }
}

/** The bundle with its workers relinked, and where each worker's own bundle goes in the package. */
export interface Relinked {
  text: string;
  /** Place in the package (relative to graphwire.js) -> the worker's main module. */
  placement: Map<string, string>;
}

const MODULE_MARKER = /^\/\/ \S+\.(?:[cm]?[jt]sx?)$/;

/**
 * Points the bundle's web workers at their own bundles: each `new URL(spec, import.meta.url)` that
 * started a worker in a module keeps its spec in the bundle, where it would now resolve against
 * graphwire.js, so within that module's part of the bundle (esbuild heads each part with a
 * `// path/of/module.ts` line) it is rewritten to `./workers/<n>-<name>.js`. Workers are found in
 * the source (see findWorkers), so new ones need no change here.
 */
export function relinkWorkers(text: string, workers: WorkerRef[], root: string): Relinked {
  const placement = new Map<string, string>();
  const placeOf = new Map<string, string>();
  const lines = text.split("\n");
  const seen = new Set<string>();
  for (const w of workers) {
    const key = `${w.module}\0${w.spec}`;
    if (seen.has(key)) continue; // one module starting the same worker twice: one rewrite does both
    seen.add(key);
    let place = placeOf.get(w.path);
    if (!place) {
      const base = w.path.slice(w.path.lastIndexOf("/") + 1).replace(/\.[^.]+$/, "");
      place = `workers/${placeOf.size}-${base}.js`;
      placeOf.set(w.path, place);
      placement.set(place, w.path);
    }
    const rel = w.module.startsWith(`${root}/`) ? w.module.slice(root.length + 1) : w.module;
    const start = lines.indexOf(`// ${rel}`);
    if (start < 0) {
      throw new Error(
        `the bundle has no part for ${rel} (which starts the worker ${w.spec}); is it minified?`,
      );
    }
    let end = start + 1;
    while (end < lines.length && !MODULE_MARKER.test(lines[end])) end++;
    const quoted = w.spec.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const re = new RegExp(`new URL\\((["'\`])${quoted}\\1,\\s*import\\.meta\\.url\\)`, "g");
    let hits = 0;
    for (let i = start + 1; i < end; i++) {
      lines[i] = lines[i].replace(re, () => {
        hits++;
        return `new URL("./${place}", import.meta.url)`;
      });
    }
    if (!hits) {
      throw new Error(`the bundle's part for ${rel} does not start the worker ${w.spec} as the source does`);
    }
  }
  return { text: lines.join("\n"), placement };
}

async function bundle(root: string, entry: string, output: string): Promise<void> {
  const r = await runCommand(
    Deno.execPath(),
    ["bundle", "--platform", "deno", "--keep-names", "--no-lock", "-o", output, entry],
    { cwd: root },
  );
  if (r.code !== 0) {
    const err = plain(r.stderr).trim();
    const hint = /esbuild|registry\.npmjs|npm/i.test(err)
      ? "\n(deno bundle needs esbuild from the npm registry the first time; after one bundle it is in Deno's cache)"
      : "";
    throw new Error(`deno bundle ${entry} failed:\n${err}${hint}`);
  }
}

/** Builds the worker package; returns the archive's path. */
export async function buildPackage(
  opts: { output?: string; outDir?: string; log?: (line: string) => void } = {},
): Promise<string> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const root = repoRoot();
  const platform = platformName();
  const name = `graphwire-worker-${platform}`;
  const outDir = opts.outDir ?? `${root}/dist`;
  const output = opts.output ?? `${outDir}/${name}.tar.gz`;
  const windows = Deno.build.os === "windows";
  const t0 = performance.now();
  const step = (n: number, what: string) => log(`[${n}/6] ${what}`);

  const stage = await Deno.makeTempDir({ prefix: "graphwire-package-" });
  try {
    const pkg = `${stage}/${name}`;
    await Deno.mkdir(pkg);

    step(1, `module graph of ${ENTRY} (deno info)`);
    const modules = await localModules(root);
    const workers = await findWorkers(modules);
    log(`      ${modules.length} local modules, ${new Set(workers.map((w) => w.path)).size} web worker(s)`);

    step(2, `bundling ${ENTRY} -> graphwire.js (deno bundle)`);
    await bundle(root, ENTRY, `${pkg}/graphwire.js`);
    const { text, placement } = relinkWorkers(await Deno.readTextFile(`${pkg}/graphwire.js`), workers, root);
    await Deno.writeTextFile(`${pkg}/graphwire.js`, text);
    log(`      graphwire.js ${size((await Deno.stat(`${pkg}/graphwire.js`)).size)}`);

    step(3, `bundling web workers`);
    for (const [place, path] of placement) {
      const dest = `${pkg}/${place}`;
      await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
      await bundle(root, path, dest);
      log(`      ${path.slice(root.length + 1)} -> ${place}`);
    }
    if (!placement.size) log(`      none`);

    step(4, `Deno runtime: ${Deno.execPath()} (Deno ${Deno.version.deno})`);
    const denoDest = `${pkg}/${windows ? "deno.exe" : "deno"}`;
    await Deno.copyFile(Deno.execPath(), denoDest);
    if (!windows) await Deno.chmod(denoDest, 0o755);
    log(`      ${size((await Deno.stat(denoDest)).size)}`);

    step(5, `native libraries`);
    const natives = await nativeLibraries(root);
    for (const lib of natives) {
      const base = lib.slice(lib.lastIndexOf("/") + 1);
      await Deno.copyFile(lib, `${pkg}/${base}`);
      log(`      ${lib.slice(root.length + 1)}`);
    }
    if (!natives.length) log(`      none built (deno task build:native builds the CUDA/HIP one)`);
    const dawn = dawnLibrary();
    const dawnBase = dawn?.slice(dawn.lastIndexOf("/") + 1);
    if (dawn) {
      await Deno.copyFile(dawn, `${pkg}/${dawnBase}`);
      log(`      ${dawn} (Dawn, the fast WebGPU provider)`);
    } else {
      log(`      no Dawn library in Deno's cache: the package's WebGPU waits with Deno's built-in provider`);
    }

    step(6, `launcher and archive`);
    await Deno.writeTextFile(`${pkg}/graphwire`, shLauncher());
    await Deno.chmod(`${pkg}/graphwire`, 0o755).catch(() => {});
    if (windows) await Deno.writeTextFile(`${pkg}/graphwire.cmd`, cmdLauncher());
    await Deno.writeTextFile(
      `${pkg}/README.txt`,
      readme(name, natives.map((p) => p.slice(p.lastIndexOf("/") + 1)), dawnBase, Deno.version.deno),
    );
    await Deno.mkdir(output.slice(0, Math.max(output.lastIndexOf("/"), 0)) || ".", { recursive: true });
    const tar = await runCommand("tar", ["-czf", output, "-C", stage, name]).catch((e) => ({
      code: -1,
      stdout: "",
      stderr: `cannot run tar: ${e.message}`,
    }));
    if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr.trim()}`);
    const bytes = (await Deno.stat(output)).size;
    log(`\n${output} (${size(bytes)}, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    log(`On a worker: tar xzf ${name}.tar.gz && ./${name}/graphwire rpc-server -H 0.0.0.0 -p 50052`);
    return output;
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

/** Runs the package task with `argv`; returns the exit code. */
export async function packageMain(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    output: { type: "string", short: "o" },
    "out-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(PACKAGE_HELP);
    return 0;
  }
  const abs = (p: string | undefined) =>
    p === undefined ? undefined : p.startsWith("/") ? p : `${callerCwd()}/${p}`;
  await buildPackage({
    output: abs(values.output as string | undefined),
    outDir: abs(values["out-dir"] as string | undefined),
  });
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await packageMain(Deno.args));
  } catch (e) {
    console.error(`graphwire package: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(`\n${PACKAGE_HELP}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
