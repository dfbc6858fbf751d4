/**
 * `deno task compile`: where denort cannot be had it stops with one clear message; with a runtime
 * base it writes an executable with graphwire's permissions, WebGPU and the CPU web worker embedded;
 * with a real denort (GRAPHWIRE_TEST_DENORT=/path/to/denort) the executable serves and answers.
 */

import { assert, assertEquals } from "./asserts.ts";
import { readBanner } from "./helpers.ts";

const COMPILE = new URL("../cli/compile.ts", import.meta.url).pathname;
const dec = new TextDecoder();

/** Runs the compile task as `deno task compile` does, with `env` on top of a copy of ours. */
async function compile(args: string[], env: Record<string, string>) {
  const base = Deno.env.toObject();
  delete base.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-net",
      COMPILE,
      ...args,
    ],
    clearEnv: true,
    env: { ...base, ...env },
    stdin: "null",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertClearMessage(stderr: string): void {
  assert.match(stderr, /^graphwire compile: deno compile needs denort/);
  assert.match(stderr, /Set DENORT_BIN=\/path\/to\/denort/);
  assert.match(
    stderr,
    /denort-[a-z0-9_]+-[a-z0-9_-]+\.zip from https:\/\/dl\.deno\.land\/release\/v\d+\.\d+\.\d+\//,
  );
  assert.ok(!/Stack backtrace|at \S+\.ts:\d+/.test(stderr), stderr);
  assertEquals(stderr.trim().split("\n").length, 4, stderr);
}

Deno.test("compile without denort (no DENORT_BIN, no cache, no network) stops with one clear message", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "gw-compile-test-" });
  try {
    // A fresh Deno cache (no denort in it) and a proxy that refuses: the download fails at once,
    // on a machine with internet too.
    const dead = "http://127.0.0.1:9";
    const r = await compile(["-o", `${tmp}/graphwire`], {
      DENO_DIR: `${tmp}/deno_dir`,
      HTTPS_PROXY: dead,
      HTTP_PROXY: dead,
      https_proxy: dead,
      http_proxy: dead,
      NO_PROXY: "",
      no_proxy: "",
    });
    assertEquals(r.code, 1, r.stderr);
    assertClearMessage(r.stderr);
    assert.match(r.stderr, /downloading denort-.*\.zip failed/);
    assert.throws(() => Deno.statSync(`${tmp}/graphwire`));
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("compile refuses DENORT_BIN that is missing or is the deno CLI itself, with the same message", async () => {
  const missing = await compile(["-o", "/nonexistent/graphwire"], { DENORT_BIN: "/nonexistent/denort" });
  assertEquals(missing.code, 1);
  assertClearMessage(missing.stderr);
  assert.match(missing.stderr, /DENORT_BIN=\/nonexistent\/denort does not exist/);
  const cli = await compile(["-o", "/nonexistent/graphwire"], { DENORT_BIN: Deno.execPath() });
  assertEquals(cli.code, 1);
  assertClearMessage(cli.stderr);
  assert.match(cli.stderr, /is the deno CLI itself/);
});

Deno.test("compile embeds graphwire's permissions, WebGPU and the CPU web worker", async () => {
  // A copy of the deno CLI lets deno compile write the executable (it would not run as graphwire:
  // only denort does), which is enough to read back what was embedded.
  const tmp = await Deno.makeTempDir({ prefix: "gw-compile-test-" });
  try {
    const standIn = `${tmp}/denort`;
    await Deno.copyFile(Deno.execPath(), standIn);
    const out = `${tmp}/graphwire`;
    const r = await compile(["-o", out], { DENORT_BIN: standIn });
    assertEquals(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[3\/3\] native libraries/);
    const bytes = await Deno.readFile(out);
    const baseSize = (await Deno.stat(standIn)).size;
    const tail = new TextDecoder("latin1").decode(bytes.subarray(baseSize));
    for (const p of ["net", "read", "write", "env", "ffi", "sys", "run"]) {
      assert.match(tail, new RegExp(`"allow_${p}":\\[\\]`), `--allow-${p} embedded`);
    }
    assert.match(tail, /"features":\[[^\]]*"webgpu"/);
    assert.match(tail, /"entrypoint_key":"cli\/main\.ts"/);
    // deno compile leaves a web worker out unless told (--include): its file is in the embedded tree.
    assert.ok(tail.includes('"n":"worker.ts"'), "the CPU worker module (backends/cpu/worker.ts) is embedded");
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

const realDenort = Deno.env.get("GRAPHWIRE_TEST_DENORT");
if (!realDenort) {
  console.log(
    "compile_test: the end-to-end compile test is skipped: set GRAPHWIRE_TEST_DENORT=/path/to/denort " +
      "(a real denort of this Deno version; none can be downloaded here)",
  );
}

Deno.test({
  name: "compiled executable (real denort): rpc-server and rpc-client info",
  ignore: !realDenort,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "gw-compile-test-" });
    try {
      const exe = `${tmp}/graphwire`;
      const r = await compile(["-o", exe], { DENORT_BIN: realDenort! });
      assertEquals(r.code, 0, r.stderr);
      const child = new Deno.Command(exe, {
        args: ["rpc-server", "-H", "127.0.0.1", "-p", "0", "-d", "cpu"],
        clearEnv: true,
        env: { PATH: "/nonexistent", HOME: tmp },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const banner = await readBanner(child.stdout, /endpoint\s*:\s*\S+[\s\S]*Devices:[\s\S]*free\)/);
      try {
        const endpoint = /endpoint\s*:\s*(\S+)/.exec(banner)?.[1];
        assert.ok(endpoint, banner);
        const info = await new Deno.Command(exe, {
          args: ["rpc-client", "info", endpoint, "--json"],
          clearEnv: true,
          env: { PATH: "/nonexistent", HOME: tmp },
        }).output();
        assertEquals(info.code, 0, dec.decode(info.stderr));
        assertEquals(JSON.parse(dec.decode(info.stdout)).version, "5.1.0");
      } finally {
        child.kill("SIGTERM");
        await child.stdout.cancel();
        await child.stderr.cancel();
        await child.status;
      }
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
