/**
 * The CLI as a user runs it: rpc-server in a subprocess (banner, endpoint, warning off loopback),
 * rpc-client info and ping against it, --list-devices, help and usage errors.
 */

import { assert, assertEquals } from "./asserts.ts";
import { readBanner } from "./helpers.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const FLAGS = [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--unstable-webgpu",
];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...FLAGS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts rpc-server and resolves with its endpoint once the banner names it. */
async function startServer(
  args: string[],
): Promise<{ endpoint: string; banner: string; stop: () => Promise<string> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...FLAGS, MAIN, "rpc-server", "-p", "0", ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const banner = await readBanner(child.stdout);
  const m = /endpoint\s*:\s*(\S+)/.exec(banner);
  assert.ok(m, `banner has an endpoint: ${banner}`);
  return {
    endpoint: m[1],
    banner,
    stop: async () => {
      child.kill("SIGTERM");
      await child.stdout.cancel();
      const err = await new Response(child.stderr).text();
      await child.status;
      return err;
    },
  };
}

Deno.test("rpc-server prints ggml's banner; rpc-client info and ping work against it", async () => {
  const s = await startServer(["-d", "cpu"]);
  try {
    assert.match(s.banner, /Starting RPC server v5\.1\.0/);
    assert.match(s.banner, /local cache\s*: n\/a/);
    assert.match(s.banner, /cpu: .*MiB, \d+ MiB free\)/);
    const info = await run(["rpc-client", "info", s.endpoint, "--json"]);
    assertEquals(info.code, 0, info.stderr);
    const j = JSON.parse(info.stdout);
    assertEquals([j.version, j.devices.length, j.devices[0].alignment], ["5.1.0", 1, 32]);
    const text = await run(["rpc-client", "info", s.endpoint]);
    assert.match(text.stdout, /version : 5\.1\.0/);
    const ping = await run(["rpc-client", "ping", s.endpoint, "-n", "50", "--json"]);
    assertEquals(ping.code, 0, ping.stderr);
    const p = JSON.parse(ping.stdout);
    assert.ok(p.count === 50 && p.p50 > 0 && p.p50 <= p.p99);
    // a token's round trip: GRAPH_RECOMPUTE and a 500 KiB GET_TENSOR (the bytes read back are checked)
    const tok = await run(["rpc-client", "ping", s.endpoint, "-n", "20", "--token", "513024"]);
    assertEquals(tok.code, 0, tok.stderr);
    assert.match(tok.stdout, /20 token round trips to .* \(GRAPH_RECOMPUTE \+ GET_TENSOR of 501 KiB\)/);
    // with a step's inputs sent first (they are read back once and checked)
    const inp = await run([
      "rpc-client",
      "ping",
      s.endpoint,
      "-n",
      "20",
      "--token",
      "64",
      "--inputs",
      "2097152",
    ]);
    assertEquals(inp.code, 0, inp.stderr);
    assert.match(
      inp.stdout,
      /20 token round trips to .* \(SET_TENSOR of 2\.00 MiB \+ GRAPH_RECOMPUTE \+ GET_TENSOR of 64 B\)/,
    );
    const bad = await run(["rpc-client", "ping", s.endpoint, "--inputs", "64"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--inputs goes with --token/);
  } finally {
    await s.stop();
  }
});

Deno.test("rpc-server warns loudly off loopback and shows the cache directory", async () => {
  const dir = await Deno.makeTempDir();
  const s = await startServer(["-d", "cpu", "-H", "0.0.0.0", "-c", dir]);
  const err = await s.stop();
  assert.match(s.banner, new RegExp(`local cache\\s*: ${dir}`));
  assert.match(err, /WARNING: listening on 0\.0\.0\.0, not on loopback/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--list-devices lists cpu; help and usage errors", async () => {
  const l = await run(["rpc-server", "--list-devices"]);
  assertEquals(l.code, 0, l.stderr);
  assert.match(l.stdout, /^cpu\s/m);
  const h = await run(["rpc-server", "--help"]);
  assertEquals(h.code, 0);
  assert.match(h.stdout, /--cache \[DIR\]/);
  const bad = await run(["rpc-server", "--no-such-flag"]);
  assertEquals(bad.code, 2);
  assert.match(bad.stderr, /Usage: graphwire rpc-server/);
  const dev = await run(["rpc-server", "-d", "nosuch"]);
  assertEquals(dev.code, 2);
  assert.match(dev.stderr, /device "nosuch" not found/);
  const unknown = await run(["frobnicate"]);
  assertEquals(unknown.code, 2);
  const down = await run(["rpc-client", "info", "127.0.0.1:1"]);
  assertEquals(down.code, 1);
});
