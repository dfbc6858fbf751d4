/**
 * `graphwire rpc-server`: serve this host's devices to ggml RPC clients.
 * @module
 */

import { discoverAll, selectDevices } from "../backends/all.ts";
import type { Device } from "../backends/device.ts";
import { defaultCacheDir, TensorCache } from "../protocol/cache/tensor_cache.ts";
import { DEFAULT_MAX_FRAME, RpcServer } from "../protocol/server.ts";
import { RPC_PROTO_MAJOR, RPC_PROTO_MINOR, RPC_PROTO_PATCH } from "../protocol/wire/constants.ts";
import { isLoopback, listenTcp } from "../protocol/wire/transport.ts";
import { intOption, listOption, parseArgs, UsageError } from "./args.ts";
import { mib, table } from "./format.ts";

/** Help text of rpc-server. */
export const RPC_SERVER_HELP = `Usage: graphwire rpc-server [options]

Serves this host's devices to ggml RPC clients (llama.cpp --rpc, ggml's tools, graphwire).

Options:
  -H, --host HOST        address to listen on (default 127.0.0.1)
  -p, --port PORT        port to listen on (default 50052)
  -d, --device LIST      comma-separated devices to serve, e.g. cuda:0,cpu (default: the best found)
      --list-devices     list the devices of this host and exit
  -c, --cache [DIR]      enable the tensor cache (default dir ~/.cache/graphwire/rpc/)
  -m, --mem MB           most memory handed out per device, in MiB
  -t, --threads N        CPU worker threads (default: all cores)
      --max-frame BYTES  largest message accepted (default 4294967296)
      --native-lib PATH  the native CUDA/HIP library (also GRAPHWIRE_NATIVE_LIB)
      --webgpu-provider NAME  WebGPU implementation: auto (default), dawn, dawn-node, deno
                         (also GRAPHWIRE_WEBGPU_PROVIDER)
  -v, --verbose          one log line per command (also GGML_RPC_DEBUG=1)
  -h, --help             show this help
`;

/** Runs rpc-server with `argv`; resolves when the server stops. */
export async function rpcServerMain(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    host: { type: "string", short: "H", default: "127.0.0.1" },
    port: { type: "string", short: "p", default: "50052" },
    device: { type: "string", short: "d", multiple: true },
    "list-devices": { type: "boolean" },
    cache: { type: "string", short: "c", optionalValue: "" },
    mem: { type: "string", short: "m" },
    threads: { type: "string", short: "t" },
    "max-frame": { type: "string" },
    "native-lib": { type: "string" },
    "webgpu-provider": { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(RPC_SERVER_HELP);
    return 0;
  }
  const discover = {
    threads: values.threads === undefined ? undefined : intOption(values.threads, "threads", 1, 1, 1024),
    nativeLib: (values["native-lib"] as string | undefined) ?? Deno.env.get("GRAPHWIRE_NATIVE_LIB"),
    webgpuProvider: values["webgpu-provider"] as string | undefined,
  };
  if (values["list-devices"]) {
    await listDevices(discover);
    return 0;
  }
  const port = intOption(values.port, "port", 50052, 0, 65535);
  const host = String(values.host);
  const memMb = intOption(values.mem, "mem", 0, 1);
  const maxFrame = values["max-frame"] === undefined
    ? DEFAULT_MAX_FRAME
    : BigInt(intOption(values["max-frame"], "max-frame", 0, 1024));
  const debug = !!values.verbose || !!Deno.env.get("GGML_RPC_DEBUG");
  let devices: Device[];
  try {
    devices = await selectDevices(listOption(values.device), discover);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const cacheDir = values.cache === undefined ? null : (values.cache as string) || defaultCacheDir();
  const cache = cacheDir ? new TensorCache(cacheDir) : null;

  const listener = listenTcp(host, port);
  const server = new RpcServer({ devices, cache, memLimit: memMb * 1048576, maxFrame, debug });
  const endpoint = listener.addr;
  const lines = [
    `Starting RPC server v${RPC_PROTO_MAJOR}.${RPC_PROTO_MINOR}.${RPC_PROTO_PATCH} (graphwire)`,
    `  endpoint       : ${endpoint}`,
    `  local cache    : ${cacheDir ?? "n/a"}`,
    memMb ? `  memory limit   : ${memMb} MiB per device` : "",
    `Devices:`,
  ].filter(Boolean);
  for (let i = 0; i < devices.length; i++) {
    const m = await server.memory(i);
    lines.push(`  ${devices[i].name}: ${devices[i].description} (${mib(m.total)}, ${mib(m.free)} free)`);
  }
  if (!isLoopback(host)) {
    console.error(
      `\n!!! WARNING: listening on ${host}, not on loopback.\n` +
        `!!! Anyone who can reach ${endpoint} can allocate memory and run compute on this host.\n` +
        `!!! The ggml RPC protocol has no authentication and no encryption:\n` +
        `!!! never expose this server to an untrusted network.\n`,
    );
  }
  const slowWaits = devices.some((d) =>
    d.kind === "webgpu" && !d.emulated && (d as { provider?: string }).provider === "deno"
  );
  if (slowWaits && !values["webgpu-provider"] && !Deno.env.get("GRAPHWIRE_WEBGPU_PROVIDER")) {
    lines.push(
      `note: WebGPU runs on Deno's built-in provider, whose every wait for the GPU costs >= 10 ms; fetch the`,
      `      Dawn provider once (npm) with: deno task rpc-server --webgpu-provider dawn --list-devices`,
    );
  }
  console.log(lines.join("\n"));
  const stop = () => server.close();
  try {
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch {
    // signals are not available on every platform
  }
  await server.serve(listener);
  for (const d of devices) await d.close();
  return 0;
}

async function listDevices(discover: Parameters<typeof discoverAll>[0]): Promise<void> {
  const report = await discoverAll(discover);
  const rows: string[][] = [];
  for (const d of report.devices) {
    const m = await d.memory();
    rows.push([d.name, d.description, mib(m.total), mib(m.free)]);
  }
  console.log(table(["device", "description", "total", "free"], rows, ["left", "left", "right", "right"]));
  if (report.devices.length) console.log(`\nbest: ${report.devices[0].name}`);
  for (const [kind, why] of report.absent) console.log(`${kind}: ${why}`);
}
