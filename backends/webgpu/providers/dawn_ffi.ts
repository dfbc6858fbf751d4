/**
 * Dawn's C API (webgpu.h) through `Deno.dlopen`: the library, its symbols, and the struct layouts
 * of the Dawn build shipped in npm `bun-webgpu-linux-x64@0.1.7` (`libwebgpu_wrapper.so`).
 *
 * That library exports Dawn's `wgpu*` functions and, beside them, `zwgpu*` twins that take every
 * struct passed by value (callback infos) through a pointer and return a future as its u64 id;
 * this module binds the `zwgpu*` ones where a struct would travel by value, the plain ones
 * elsewhere.
 *
 * Layouts are those of Dawn's webgpu.h of that build (spring 2025: `WGPUStringView` strings,
 * `wgpuGetInstanceCapabilities`, `WGPULimits` with `maxImmediateSize` and the per-stage storage
 * limits appended, `WGPUBindGroupLayoutEntry.bindingArraySize`, `WGPUPipelineLayoutDescriptor.
 * immediateSize`). All offsets are for x86-64 / aarch64 Linux (8-byte pointers and size_t).
 * @module
 */

/** The symbols graphwire uses. */
export const DAWN_SYMBOLS = {
  zwgpuCreateInstance: { parameters: ["pointer"], result: "pointer" },
  zwgpuInstanceRelease: { parameters: ["pointer"], result: "void" },
  zwgpuInstanceProcessEvents: { parameters: ["pointer"], result: "void" },
  zwgpuInstanceRequestAdapter: { parameters: ["pointer", "pointer", "pointer"], result: "u64" },
  zwgpuInstanceWaitAny: { parameters: ["pointer", "u64", "buffer", "u64"], result: "u32" },

  zwgpuAdapterGetInfo: { parameters: ["pointer", "buffer"], result: "u32" },
  zwgpuAdapterGetLimits: { parameters: ["pointer", "buffer"], result: "u32" },
  zwgpuAdapterGetFeatures: { parameters: ["pointer", "buffer"], result: "void" },
  zwgpuAdapterRequestDevice: { parameters: ["pointer", "pointer", "pointer"], result: "u64" },
  zwgpuAdapterRelease: { parameters: ["pointer"], result: "void" },

  zwgpuDeviceGetLimits: { parameters: ["pointer", "buffer"], result: "u32" },
  zwgpuDeviceGetFeatures: { parameters: ["pointer", "buffer"], result: "void" },
  zwgpuDeviceGetQueue: { parameters: ["pointer"], result: "pointer" },
  zwgpuDeviceCreateBuffer: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreateShaderModule: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreateBindGroupLayout: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreateBindGroup: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreatePipelineLayout: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreateComputePipeline: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDeviceCreateCommandEncoder: { parameters: ["pointer", "pointer"], result: "pointer" },
  zwgpuDeviceCreateQuerySet: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuDevicePushErrorScope: { parameters: ["pointer", "u32"], result: "void" },
  zwgpuDevicePopErrorScope: { parameters: ["pointer", "buffer"], result: "u64" },
  zwgpuDeviceDestroy: { parameters: ["pointer"], result: "void" },
  zwgpuDeviceRelease: { parameters: ["pointer"], result: "void" },
  zwgpuDeviceTick: { parameters: ["pointer"], result: "void" },

  zwgpuQueueSubmit: { parameters: ["pointer", "u64", "buffer"], result: "void" },
  zwgpuQueueWriteBuffer: { parameters: ["pointer", "pointer", "u64", "buffer", "u64"], result: "void" },
  zwgpuQueueOnSubmittedWorkDone: { parameters: ["pointer", "buffer"], result: "u64" },
  zwgpuQueueRelease: { parameters: ["pointer"], result: "void" },

  zwgpuBufferMapAsync: { parameters: ["pointer", "u64", "u64", "u64", "buffer"], result: "u64" },
  zwgpuBufferGetMappedRange: { parameters: ["pointer", "u64", "u64"], result: "pointer" },
  zwgpuBufferGetConstMappedRange: { parameters: ["pointer", "u64", "u64"], result: "pointer" },
  zwgpuBufferUnmap: { parameters: ["pointer"], result: "void" },
  zwgpuBufferDestroy: { parameters: ["pointer"], result: "void" },
  zwgpuBufferRelease: { parameters: ["pointer"], result: "void" },

  zwgpuShaderModuleRelease: { parameters: ["pointer"], result: "void" },
  zwgpuShaderModuleGetCompilationInfo: { parameters: ["pointer", "buffer"], result: "u64" },
  zwgpuBindGroupLayoutRelease: { parameters: ["pointer"], result: "void" },
  zwgpuBindGroupRelease: { parameters: ["pointer"], result: "void" },
  zwgpuPipelineLayoutRelease: { parameters: ["pointer"], result: "void" },
  zwgpuComputePipelineRelease: { parameters: ["pointer"], result: "void" },
  zwgpuComputePipelineGetBindGroupLayout: { parameters: ["pointer", "u32"], result: "pointer" },
  zwgpuQuerySetDestroy: { parameters: ["pointer"], result: "void" },
  zwgpuQuerySetRelease: { parameters: ["pointer"], result: "void" },

  zwgpuCommandEncoderBeginComputePass: { parameters: ["pointer", "buffer"], result: "pointer" },
  zwgpuCommandEncoderCopyBufferToBuffer: {
    parameters: ["pointer", "pointer", "u64", "pointer", "u64", "u64"],
    result: "void",
  },
  zwgpuCommandEncoderClearBuffer: { parameters: ["pointer", "pointer", "u64", "u64"], result: "void" },
  zwgpuCommandEncoderResolveQuerySet: {
    parameters: ["pointer", "pointer", "u32", "u32", "pointer", "u64"],
    result: "void",
  },
  zwgpuCommandEncoderFinish: { parameters: ["pointer", "pointer"], result: "pointer" },
  zwgpuCommandEncoderRelease: { parameters: ["pointer"], result: "void" },
  zwgpuCommandBufferRelease: { parameters: ["pointer"], result: "void" },

  zwgpuComputePassEncoderSetPipeline: { parameters: ["pointer", "pointer"], result: "void" },
  zwgpuComputePassEncoderSetBindGroup: {
    parameters: ["pointer", "u32", "pointer", "u64", "buffer"],
    result: "void",
  },
  zwgpuComputePassEncoderDispatchWorkgroups: {
    parameters: ["pointer", "u32", "u32", "u32"],
    result: "void",
  },
  zwgpuComputePassEncoderEnd: { parameters: ["pointer"], result: "void" },
  zwgpuComputePassEncoderRelease: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened library. */
export type DawnLib = Deno.DynamicLibrary<typeof DAWN_SYMBOLS>["symbols"];

/** `WGPUCallbackMode`. */
export const CallbackMode = { WaitAnyOnly: 1, AllowProcessEvents: 2, AllowSpontaneous: 3 } as const;
/** `WGPUWaitStatus`. */
export const WaitStatus = { Success: 1, TimedOut: 2 } as const;
/** `WGPUSType_ShaderSourceWGSL`. */
export const STYPE_SHADER_SOURCE_WGSL = 2;
/** `WGPUSType_DawnTogglesDescriptor`. */
export const STYPE_DAWN_TOGGLES_DESCRIPTOR = 0x5000a;
/**
 * `WGPUSType_AdapterPropertiesMemoryHeaps` in this Dawn build (0x50014 in later ones, where it is
 * AdapterPropertiesD3D here: Dawn says so when asked on an adapter that has neither).
 */
export const STYPE_MEMORY_HEAPS = 0x50013;
/** `WGPUHeapProperty_DeviceLocal`. */
export const HEAP_DEVICE_LOCAL = 0x1n;
/** `WGPU_STRLEN` / `WGPU_WHOLE_SIZE` / `WGPU_LIMIT_U64_UNDEFINED`. */
export const U64_MAX = 0xffffffffffffffffn;
/** `WGPU_LIMIT_U32_UNDEFINED`. */
export const U32_UNDEFINED = 0xffffffff;

/** Dawn's `WGPUFeatureName` values of that build, by their WebGPU JS names. */
export const FEATURES: Record<string, number> = {
  "depth-clip-control": 0x1,
  "depth32float-stencil8": 0x2,
  "timestamp-query": 0x3,
  "texture-compression-bc": 0x4,
  "texture-compression-bc-sliced-3d": 0x5,
  "texture-compression-etc2": 0x6,
  "texture-compression-astc": 0x7,
  "texture-compression-astc-sliced-3d": 0x8,
  "indirect-first-instance": 0x9,
  "shader-f16": 0xa,
  "rg11b10ufloat-renderable": 0xb,
  "bgra8unorm-storage": 0xc,
  "float32-filterable": 0xd,
  "float32-blendable": 0xe,
  "clip-distances": 0xf,
  "dual-source-blending": 0x10,
  "subgroups": 0x11,
  "core-features-and-limits": 0x12,
  "chromium-experimental-timestamp-query-inside-passes": 0x50003,
  "chromium-experimental-immediate-data": 0x50005,
  "subgroups-f16": 0x50008,
  "chromium-experimental-subgroup-matrix": 0x50038,
};

/** `WGPULimits` field offsets (Dawn's layout of that build; 168 bytes). `[offset, bytes]`. */
export const LIMITS: Record<string, readonly [number, 4 | 8]> = {
  maxTextureDimension1D: [8, 4],
  maxTextureDimension2D: [12, 4],
  maxTextureDimension3D: [16, 4],
  maxTextureArrayLayers: [20, 4],
  maxBindGroups: [24, 4],
  maxBindGroupsPlusVertexBuffers: [28, 4],
  maxBindingsPerBindGroup: [32, 4],
  maxDynamicUniformBuffersPerPipelineLayout: [36, 4],
  maxDynamicStorageBuffersPerPipelineLayout: [40, 4],
  maxSampledTexturesPerShaderStage: [44, 4],
  maxSamplersPerShaderStage: [48, 4],
  maxStorageBuffersPerShaderStage: [52, 4],
  maxStorageTexturesPerShaderStage: [56, 4],
  maxUniformBuffersPerShaderStage: [60, 4],
  maxUniformBufferBindingSize: [64, 8],
  maxStorageBufferBindingSize: [72, 8],
  minUniformBufferOffsetAlignment: [80, 4],
  minStorageBufferOffsetAlignment: [84, 4],
  maxVertexBuffers: [88, 4],
  maxBufferSize: [96, 8],
  maxVertexAttributes: [104, 4],
  maxVertexBufferArrayStride: [108, 4],
  maxInterStageShaderVariables: [112, 4],
  maxColorAttachments: [116, 4],
  maxColorAttachmentBytesPerSample: [120, 4],
  maxComputeWorkgroupStorageSize: [124, 4],
  maxComputeInvocationsPerWorkgroup: [128, 4],
  maxComputeWorkgroupSizeX: [132, 4],
  maxComputeWorkgroupSizeY: [136, 4],
  maxComputeWorkgroupSizeZ: [140, 4],
  maxComputeWorkgroupsPerDimension: [144, 4],
  maxImmediateSize: [148, 4],
  maxStorageBuffersInVertexStage: [152, 4],
  maxStorageTexturesInVertexStage: [156, 4],
  maxStorageBuffersInFragmentStage: [160, 4],
  maxStorageTexturesInFragmentStage: [164, 4],
};
/** Size of `WGPULimits`. */
export const LIMITS_SIZE = 168;

/** Sizes of the structs packed here (bytes). */
export const SIZE = {
  instanceDescriptor: 32, // next, WGPUInstanceCapabilities{next, timedWaitAnyEnable, timedWaitAnyMaxCount}
  callbackInfo: 40, // next, mode(+pad), callback, userdata1, userdata2
  futureWaitInfo: 16, // future id u64, completed u32 (+pad)
  requestAdapterOptions: 32, // next, featureLevel, powerPreference, forceFallbackAdapter, backendType, surface
  adapterInfo: 96, // next, 4 string views, backendType, adapterType, vendorID, deviceID, subgroupMin/Max
  supportedFeatures: 16, // count, pointer
  deviceDescriptor: 144, // see packDeviceDescriptor
  bufferDescriptor: 48, // next, label, usage u64, size u64, mappedAtCreation
  shaderModuleDescriptor: 24, // next, label
  shaderSourceWGSL: 32, // chain{next, sType}, code view
  bindGroupLayoutEntry: 120, // next, binding, visibility u64, bindingArraySize, buffer(24), sampler(16), texture(24), storageTexture(24)
  bindGroupLayoutDescriptor: 40, // next, label, count, entries
  bindGroupEntry: 56, // next, binding, buffer, offset, size, sampler, textureView
  bindGroupDescriptor: 48, // next, label, layout, count, entries
  pipelineLayoutDescriptor: 48, // next, label, count, layouts, immediateSize
  computePipelineDescriptor: 80, // next, label, layout, compute{next, module, entryPoint, constantCount, constants}
  constantEntry: 32, // next, key view, value f64
  computePassDescriptor: 32, // next, label, timestampWrites*
  passTimestampWrites: 24, // next, querySet, beginning, end
  querySetDescriptor: 32, // next, label, type, count
  togglesDescriptor: 48, // chain{next, sType}, enabledCount, enabled**, disabledCount, disabled**
} as const;

/** The version of the npm packages (`bun-webgpu-<os>-<arch>`) whose layouts this module follows. */
export const DAWN_NPM_VERSION = "0.1.7";

/**
 * This host's package of that build and the library file inside it, or why there is none. The
 * callbacks here take a `WGPUStringView` by value as two arguments, which holds for the System V
 * (Linux, macOS x86-64) and AArch64 calling conventions but not for Windows x64.
 */
export function dawnPackage(): { name: string; file: string } | { reason: string } {
  const { os, arch } = Deno.build;
  const a = arch === "x86_64" ? "x64" : arch === "aarch64" ? "arm64" : arch;
  if (os === "linux" && a === "x64") return { name: "bun-webgpu-linux-x64", file: "libwebgpu_wrapper.so" };
  if (os === "darwin") return { name: `bun-webgpu-darwin-${a}`, file: "libwebgpu_wrapper.dylib" };
  return { reason: `no Dawn build of npm bun-webgpu ${DAWN_NPM_VERSION} is bound for ${os}-${arch}` };
}

/** Opens the library at `path`. */
export function openDawn(path: string): Deno.DynamicLibrary<typeof DAWN_SYMBOLS> {
  return Deno.dlopen(path, DAWN_SYMBOLS);
}
