import { assert, assertEquals } from "../../tests/asserts.ts";
import { ggmlFilter, parseGgmlPerf, parseOptions, versusConfigs } from "./bench.ts";
import { NativeOption } from "./ffi.ts";

Deno.test("bench --vs-ggml: an anchor's case string becomes test-backend-ops' -o and an anchored -p", () => {
  const fa =
    "FLASH_ATTN_EXT(hsk=128,hsv=128,nh=8,nr23=[1,1],kv=16384,nb=1,mask=1,sinks=0,max_bias=0.000000,logit_softcap=0.000000,prec=f32,type_K=f16,type_V=f16";
  const f = ggmlFilter(fa);
  assertEquals(f.op, "FLASH_ATTN_EXT");
  assertEquals(
    f.params,
    "^hsk=128,hsv=128,nh=8,nr23=\\[1,1\\],kv=16384,nb=1,mask=1,sinks=0,max_bias=0\\.000000,logit_softcap=0\\.000000,prec=f32,type_K=f16,type_V=f16",
  );
  // the regex selects the case's own parameter string (test-backend-ops matches it against vars())
  const vars = fa.slice(fa.indexOf("(") + 1) + ",permute=[0,1,2,3],kv_view=1,v_is_view_of_k=0";
  assertEquals(new RegExp(f.params).test(vars), true);
  assertEquals(new RegExp(f.params).test(vars.replace("kv=16384", "kv=4096")), false);
  const sw = ggmlFilter("SWIGLU(type=f32,ne_a=[34816,512,1,1],v=0,swapped=0)");
  assertEquals(sw, { op: "SWIGLU", params: "^type=f32,ne_a=\\[34816,512,1,1\\],v=0,swapped=0" });
});

Deno.test("bench --vs-ggml: the time is read from the perf line of the anchor's case only", () => {
  const out = [
    "Testing 1 devices",
    "  MUL_MAT(type_a=f16,type_b=f32,m=4096,n=1,k=14336,bs=[1,1],nr=[1,1],per=[0,1,2,3],k_v=0,o=1):   " +
    "  4260 runs -    30.95 us/run - 117.44 MFLOP/run - \x1b[1;34m  3.79 TFLOPS\x1b[0m",
    "  MUL_MAT(type_a=f32,type_b=f32,m=4096,n=1,k=14336,bs=[1,1],nr=[1,1],per=[0,1,2,3],k_v=0,o=1):   " +
    "  1846 runs -    54.00 us/run - 117.44 MFLOP/run - \x1b[1;34m  2.17 TFLOPS\x1b[0m",
    "  Backend CUDA0: \x1b[1;32mOK\x1b[0m",
  ].join("\n");
  assertEquals(parseGgmlPerf(out, "MUL_MAT(type_a=f32,type_b=f32,m=4096,n=1,k=14336,"), 54);
  assertEquals(parseGgmlPerf(out, "MUL_MAT(type_a=f16,type_b=f32,m=4096,n=1,k=14336,"), 30.95);
  assertEquals(parseGgmlPerf(out, "MUL_MAT(type_a=bf16,type_b=f32,m=4096,n=1,k=14336,"), undefined);
  assertEquals(
    parseGgmlPerf("  SWIGLU(type=f32,ne_a=[34816,512,1,1],v=0,swapped=0): not supported", "SWIGLU("),
    undefined,
  );
});

Deno.test("bench --set / --variant: native options by name; unknown names and non-integers are refused", () => {
  assertEquals(parseOptions("FA_MERGE=2"), [[NativeOption.FA_MERGE, 2]]);
  assertEquals(parseOptions("FA_MERGE=2, PDL=0"), [[NativeOption.FA_MERGE, 2], [NativeOption.PDL, 0]]);
  assert.throws(() => parseOptions("FA_MERGED=2"), /not an option setting: FA_MERGED=2/);
  assert.throws(() => parseOptions("PDL=1.5"), /not an option setting/);
  assert.throws(() => parseOptions("PDL"), /not an option setting/);
});

Deno.test("bench --variant: REGEX: limits a variant to the anchors it names", () => {
  const c = versusConfigs(["FLASH:FA_MERGE=2", "PDL=0"]);
  assertEquals(c.map((x) => x.label), ["default", "FLASH:FA_MERGE=2", "PDL=0"]);
  assertEquals(c[1].options, [[NativeOption.FA_MERGE, 2]]);
  const fa = "FLASH_ATTN_EXT hs=128 nh=8 kv=16384 n=1 f16", mm = "MUL_MAT f32 4096x14336 n=1";
  assertEquals(c.filter((x) => x.anchors.test(fa)).length, 3);
  assertEquals(c.filter((x) => x.anchors.test(mm)).map((x) => x.label), ["default", "PDL=0"]);
  assert.throws(() => versusConfigs(["FLASH:NOPE=1"]), /not an option setting/);
});
