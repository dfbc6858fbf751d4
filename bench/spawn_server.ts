/**
 * graphwire servers as child processes on loopback ports the OS picks: what `graphwire bench`
 * benches against when it is given no server (`--serve N`, or no arguments at all). A child
 * process runs on its own thread, so the numbers are those of a real client and a real server,
 * not of one event loop doing both.
 *
 * @example
 * ```ts
 * const s = await spawnServer(["-d", "cpu"]);
 * console.log(s.endpoint); // 127.0.0.1:40123
 * await s.close();
 * ```
 * @module
 */

/** A running child server. */
export interface SpawnedServer {
  /** "127.0.0.1:PORT" from the server's banner. */
  readonly endpoint: string;
  /** The banner the server printed. */
  readonly banner: string;
  /** The server's last log lines (stderr), newest last: why it closed a connection. */
  recentLog(): string[];
  /** Stops the server and waits for it to exit. */
  close(): Promise<void>;
}

/**
 * The command that runs graphwire itself: the worker package's launcher (it sets GRAPHWIRE_SELF),
 * the compiled executable, or deno with cli/main.ts.
 */
export function selfCommand(): { cmd: string; args: string[] } {
  let launcher: string | undefined;
  try {
    launcher = Deno.env.get("GRAPHWIRE_SELF") || undefined;
  } catch {
    // no env permission
  }
  if (launcher) return { cmd: launcher, args: [] };
  const exe = Deno.execPath();
  const base = exe.split(/[\\/]/).pop()!.toLowerCase();
  if (base === "deno" || base === "deno.exe") {
    const main = new URL("../cli/main.ts", import.meta.url).href;
    return {
      cmd: exe,
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        "--unstable-webgpu",
        main,
      ],
    };
  }
  return { cmd: exe, args: [] };
}

/**
 * Starts `graphwire rpc-server -H 127.0.0.1 -p 0 <serverArgs>` and waits for its banner (at most
 * `timeoutMs`). Its log lines are passed to `log`.
 */
export async function spawnServer(
  serverArgs: string[],
  opts: { timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<SpawnedServer> {
  const self = selfCommand();
  const child = new Deno.Command(self.cmd, {
    args: [...self.args, "rpc-server", "-H", "127.0.0.1", "-p", "0", ...serverArgs],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const log = opts.log ?? (() => {});
  const pump = async (stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    }
    if (rest) onLine(rest);
  };
  const lines: string[] = [];
  let found: (endpoint: string) => void;
  const endpoint = new Promise<string>((resolve) => found = resolve);
  const out = pump(child.stdout, (l) => {
    lines.push(l);
    const m = /^\s*endpoint\s*:\s*(\S+)/.exec(l);
    if (m) found(m[1]);
  });
  const recent: string[] = [];
  const err = pump(child.stderr, (l) => {
    recent.push(l);
    if (recent.length > 20) recent.shift();
    log(l);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the server did not start within ${opts.timeoutMs ?? 60000} ms`)),
      opts.timeoutMs ?? 60000,
    );
  });
  const exited = child.status.then((s) => {
    throw new Error(`the server exited with code ${s.code} before it listened:\n${lines.join("\n")}`);
  });
  try {
    const ep = await Promise.race([endpoint, timeout, exited]);
    return {
      endpoint: ep,
      banner: lines.join("\n"),
      recentLog: () => [...recent],
      async close() {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        await child.status;
        await Promise.allSettled([out, err]);
      },
    };
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    throw e;
  } finally {
    clearTimeout(timer);
    exited.catch(() => {});
  }
}
