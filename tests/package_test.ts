/**
 * The offline worker package as a worker node uses it: `deno task package` into a temporary folder,
 * unpacked into another, `./graphwire rpc-server` started on loopback with a PATH that has no deno
 * (only sh), and the packaged `./graphwire rpc-client info` against it.
 */

import { dawnLibrary } from "../cli/dist.ts";
import { buildPackage, LAUNCH_FLAGS, relinkWorkers, shLauncher } from "../cli/package.ts";
import { assert, assertEquals } from "./asserts.ts";
import { readBanner } from "./helpers.ts";

const dec = new TextDecoder();

function which(cmd: string, path: string): string | undefined {
  for (const dir of path.split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return `${dir}/${cmd}`;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** A PATH holding only `sh`: the launcher must need nothing else. */
async function shOnlyPath(tmp: string): Promise<string> {
  const bin = `${tmp}/bin`;
  await Deno.mkdir(bin);
  const sh = which("sh", Deno.env.get("PATH") ?? "/usr/bin:/bin") ?? "/bin/sh";
  await Deno.symlink(sh, `${bin}/sh`);
  assertEquals(which("deno", bin), undefined);
  return bin;
}

/** Starts the packaged rpc-server; resolves with its endpoint once the banner names it. */
async function startPackagedServer(dir: string, env: Record<string, string>) {
  const child = new Deno.Command(`${dir}/graphwire`, {
    args: ["rpc-server", "-H", "127.0.0.1", "-p", "0", "-d", "cpu"],
    cwd: dir,
    clearEnv: true,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const banner = await readBanner(child.stdout);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.stdout.cancel();
    const err = await new Response(child.stderr).text();
    await child.status;
    return err;
  };
  const m = /endpoint\s*:\s*(\S+)/.exec(banner);
  if (!m) throw new Error(`no endpoint in the banner:\n${banner}\n${await stop()}`);
  return { endpoint: m[1], banner, stop };
}

Deno.test("the launcher uses only sh builtins and runs the shipped deno with graphwire's flags", () => {
  const sh = shLauncher();
  assert.match(sh, /^#!\/bin\/sh\n/);
  assert.match(sh, /exec "\$here\/deno" run .*"\$here\/graphwire\.js" "\$@"/);
  for (const f of ["--allow-net", "--allow-ffi", "--unstable-webgpu", "--no-config", "--no-remote"]) {
    assert.ok(LAUNCH_FLAGS.includes(f), f);
  }
  // No external tools but readlink (only when the launcher is reached through a symlink).
  for (const tool of ["dirname", "basename", "realpath", "sed", "awk", "id "]) {
    assert.ok(!sh.includes(tool), `launcher uses ${tool}`);
  }
});

Deno.test("the bundle's web workers are pointed at their own bundles, each within its module's part", () => {
  const bundle = [
    "// a/pool.ts",
    'const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });',
    'const again = new Worker(new URL("./worker.ts", import.meta.url));',
    "// b/other.ts",
    'const v = new Worker(new URL("./worker.ts", import.meta.url));',
    'const u = new URL("./worker.ts", import.meta.url); // b starts no worker from it: left alone',
    "// c/gpu.ts",
    "const x = new Worker(new URL('./sub/worker.ts', import.meta.url));",
  ].join("\n");
  const r = relinkWorkers(bundle, [
    { module: "/r/a/pool.ts", spec: "./worker.ts", path: "/r/a/worker.ts" },
    { module: "/r/a/pool.ts", spec: "./worker.ts", path: "/r/a/worker.ts" },
    { module: "/r/c/gpu.ts", spec: "./sub/worker.ts", path: "/r/c/sub/worker.ts" },
  ], "/r");
  assertEquals([...r.placement], [["workers/0-worker.js", "/r/a/worker.ts"], [
    "workers/1-worker.js",
    "/r/c/sub/worker.ts",
  ]]);
  const lines = r.text.split("\n");
  assert.match(lines[1], /new URL\("\.\/workers\/0-worker\.js", import\.meta\.url\)/);
  assert.match(lines[2], /workers\/0-worker\.js/);
  assert.match(lines[4], /"\.\/worker\.ts"/);
  assert.match(lines[5], /"\.\/worker\.ts"/);
  assert.match(lines[7], /workers\/1-worker\.js/);
  assert.throws(
    () => relinkWorkers(bundle, [{ module: "/r/z.ts", spec: "./w.ts", path: "/r/w.ts" }], "/r"),
    /no part/,
  );
});

Deno.test({
  name: "worker package: built offline, unpacked, rpc-server and rpc-client info with no deno on PATH",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "gw-package-test-" });
    try {
      const lines: string[] = [];
      const archive = await buildPackage({ outDir: `${tmp}/dist`, log: (l) => lines.push(l) });
      assert.match(archive, /graphwire-worker-[a-z]+-[a-z0-9_]+\.tar\.gz$/);
      for (let i = 1; i <= 6; i++) assert.ok(lines.some((l) => l.startsWith(`[${i}/6]`)), lines.join("\n"));

      const unpack = `${tmp}/unpacked`;
      await Deno.mkdir(unpack);
      const tar = await new Deno.Command("tar", { args: ["-xzf", archive, "-C", unpack] }).output();
      assertEquals(tar.code, 0, dec.decode(tar.stderr));
      const name = archive.slice(archive.lastIndexOf("/") + 1).replace(/\.tar\.gz$/, "");
      const dir = `${unpack}/${name}`;
      for (const f of ["graphwire", "deno", "graphwire.js", "workers/0-worker.js", "README.txt"]) {
        assert.ok(Deno.statSync(`${dir}/${f}`).isFile, `${f} in the package`);
      }

      const env = { PATH: await shOnlyPath(tmp), HOME: `${tmp}/home` };
      const server = await startPackagedServer(dir, env);
      let serverLog = "";
      try {
        assert.match(server.banner, /Starting RPC server v5\.1\.0 \(graphwire\)/);
        assert.match(server.banner, /cpu: /);
        const info = await new Deno.Command(`${dir}/graphwire`, {
          args: ["rpc-client", "info", server.endpoint, "--json"],
          cwd: dir,
          clearEnv: true,
          env,
          stdin: "null",
        }).output();
        assertEquals(info.code, 0, dec.decode(info.stderr));
        const j = JSON.parse(dec.decode(info.stdout));
        assertEquals([j.version, j.devices.length], ["5.1.0", 1]);
      } finally {
        serverLog = await server.stop();
      }
      assert.ok(!/panicked|Uncaught/.test(serverLog), serverLog);

      // Reached through a symlink from elsewhere (as from /usr/local/bin), it still finds its files.
      await Deno.mkdir(`${tmp}/elsewhere`);
      await Deno.symlink(`${dir}/graphwire`, `${tmp}/elsewhere/graphwire`);
      const help = await new Deno.Command(`${tmp}/elsewhere/graphwire`, { args: ["--help"], cwd: tmp })
        .output();
      assertEquals(help.code, 0, dec.decode(help.stderr));
      assert.match(dec.decode(help.stdout), /rpc-server/);

      // Dawn's library, when this machine's Deno cache has it, ships beside the package's deno and is
      // found there with no Deno cache at all (HOME and DENO_DIR hold nothing).
      if (dawnLibrary()) {
        assert.ok(Deno.statSync(`${dir}/libwebgpu_wrapper.so`).isFile, "Dawn's library in the package");
        const list = await new Deno.Command(`${dir}/graphwire`, {
          args: ["rpc-server", "--list-devices", "--webgpu-provider", "dawn"],
          cwd: dir,
          clearEnv: true,
          env,
          stdin: "null",
        }).output();
        const said = dec.decode(list.stdout) + dec.decode(list.stderr);
        assert.ok(!/not in Deno's cache|could not be fetched/.test(said), said);
      } else {
        console.log(
          "no Dawn library in this machine's Deno cache: the package ships none (checked elsewhere)",
        );
      }
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
