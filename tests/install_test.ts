/**
 * `deno task install` (deno.json's install task: `deno install --global` of cli/main.ts) into a
 * temporary DENO_INSTALL_ROOT: the installed `graphwire` runs from any folder.
 */

import { assert, assertEquals } from "./asserts.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const dec = new TextDecoder();

Deno.test({
  name: "deno task install puts a working graphwire on PATH",
  sanitizeResources: false,
  async fn() {
    const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
    const task: string = config.tasks.install;
    assert.match(task, /^deno install --global /);
    const tmp = await Deno.makeTempDir({ prefix: "gw-install-test-" });
    try {
      // The task's own command line, with this deno: no argument has spaces or quotes.
      const [, ...args] = task.split(/\s+/);
      const installed = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: ROOT,
        env: { DENO_INSTALL_ROOT: tmp },
        stdin: "null",
      }).output();
      assertEquals(installed.code, 0, dec.decode(installed.stderr));
      const bin = `${tmp}/bin/graphwire`;
      assert.ok(Deno.statSync(bin).isFile, bin);
      const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
      const env = { PATH: `${tmp}/bin:${denoDir}:/usr/bin:/bin` };
      const help = await new Deno.Command("graphwire", { args: ["--help"], cwd: tmp, env }).output();
      assertEquals(help.code, 0, dec.decode(help.stderr));
      assert.match(dec.decode(help.stdout), /rpc-server/);
      const list = await new Deno.Command("graphwire", {
        args: ["rpc-server", "--list-devices"],
        cwd: tmp,
        env,
      })
        .output();
      assertEquals(list.code, 0, dec.decode(list.stderr));
      assert.match(dec.decode(list.stdout), /\bcpu\b/);
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
