import { assert } from "../../tests/asserts.ts";
import { GraphReuse } from "./graph_reuse.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

Deno.test("graph reuse: same uid recomputes, a new uid or another device does not", () => {
  const r = new GraphReuse();
  assert.equal(r.canRecompute(0, 5n), false, "nothing sent yet");
  r.sent(0, 5n, bytes(1, 2));
  assert.equal(r.canRecompute(0, 5n), true);
  assert.equal(r.canRecompute(1, 5n), false, "reuse is per device");
  assert.equal(r.canRecompute(0, 6n), false);
  assert.deepEqual([r.hits, r.misses], [1, 3]);
});

Deno.test("graph reuse: uid-less graphs compare bytes; forget and --no-reuse", () => {
  const r = new GraphReuse();
  r.sent(2, 0n, bytes(1, 2, 3));
  assert.equal(r.canRecompute(2, 0n, bytes(1, 2, 3)), true);
  assert.equal(r.canRecompute(2, 0n, bytes(1, 2, 4)), false);
  r.sent(2, 9n, bytes(1, 2, 3));
  assert.equal(r.canRecompute(2, 0n, bytes(1, 2, 3)), false, "a uid graph is not compared by bytes");
  r.forget(2);
  assert.equal(r.canRecompute(2, 9n), false, "forgotten after a buffer was freed");
  r.sent(2, 9n, bytes());
  r.enabled = false;
  assert.equal(r.canRecompute(2, 9n), false, "--no-reuse");
});
