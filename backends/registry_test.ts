import type { Device } from "./device.ts";
import { rankDevices } from "./registry.ts";
import { assertEquals } from "../tests/asserts.ts";

Deno.test("best device: native GPU, then a real WebGPU adapter, then the CPU, then an emulated one", () => {
  const dev = (name: string, emulated = false) => ({ name, emulated }) as unknown as Device;
  const cpu = dev("cpu"), llvmpipe = dev("webgpu:0", true), h100 = dev("webgpu:0"), cuda = dev("cuda:0");
  const names = (ds: Device[]) => ds.map((d) => `${d.name}${d.emulated ? " (emulated)" : ""}`);
  assertEquals(
    names(rankDevices([{ device: llvmpipe, rank: -1 }, { device: cpu, rank: 0 }])),
    ["cpu", "webgpu:0 (emulated)"],
  );
  assertEquals(
    names(rankDevices([{ device: cpu, rank: 0 }, { device: h100, rank: 50 }, { device: cuda, rank: 100 }])),
    ["cuda:0", "webgpu:0", "cpu"],
  );
});
