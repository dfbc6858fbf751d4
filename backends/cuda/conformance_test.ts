/** The test-backend-ops output parser of conformance.ts (no GPU and no ggml binary needed). */

import { assertEquals } from "../../tests/asserts.ts";
import { parseResults } from "./conformance.ts";

Deno.test("test-backend-ops result lines: OK, FAIL with its error in front, not supported", () => {
  const out = [
    "Backend 2/2: RPC0",
    "  SUM(type=f32,ne=[10,5,4,3]): OK",
    "[SUM] ERR = 0.179862197 > 0.000000100   SUM(type=f32,ne=[33,256,1,1],permute=[1,0,2,3]): FAIL",
    "  SUM(type=f32,ne=[2,1,1,1]): not supported [RPC0] ",
    "  SUM_ROWS(type=f32,ne=[4,1,1,1]): OK",
    "  4/5 tests passed",
  ].join("\n");
  const r = parseResults("SUM", out);
  assertEquals(r.get("type=f32,ne=[10,5,4,3]"), "OK");
  assertEquals(
    r.get("type=f32,ne=[33,256,1,1],permute=[1,0,2,3]"),
    "FAIL: [SUM] ERR = 0.179862197 > 0.000000100",
  );
  assertEquals(r.get("type=f32,ne=[2,1,1,1]"), "not supported");
  assertEquals(r.size, 3);
});
