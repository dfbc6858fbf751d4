/**
 * The `graphwire` command: `rpc-server`, `rpc-client`, `bench`.
 * @module
 */

import { UsageError } from "./args.ts";
import { RPC_SERVER_HELP, rpcServerMain } from "./rpc_server.ts";

const HELP = `graphwire — a ggml RPC worker, client and bench

Usage: graphwire <command> [options]

Commands:
  rpc-server   serve this host's devices to ggml RPC clients (llama.cpp --rpc)
  rpc-client   talk to any ggml RPC server (info, ping)
  bench        llama-bench for ggml RPC: t/s and bytes on the wire per token; "bench ops" per op

Run "graphwire <command> --help" for a command's options.
`;

type Main = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { main: () => Promise<Main>; help: () => Promise<string> }> = {
  "rpc-server": { main: () => Promise.resolve(rpcServerMain), help: () => Promise.resolve(RPC_SERVER_HELP) },
  "rpc-client": {
    main: async () => (await import("./rpc_client.ts")).rpcClientMain,
    help: async () => (await import("./rpc_client.ts")).RPC_CLIENT_HELP,
  },
  bench: {
    main: async () => (await import("./bench.ts")).benchMain,
    help: async () => (await import("./bench.ts")).BENCH_HELP,
  },
};

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (!cmd || cmd === "-h" || cmd === "--help" || cmd === "help") {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`graphwire: unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  try {
    return await (await c.main())(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`graphwire ${cmd}: ${e.message}\n\n${await c.help()}`);
      return 2;
    }
    console.error(`graphwire ${cmd}: ${(e as Error)?.message ?? e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
