/**
 * Runs ggml's test-backend-ops (test mode) against a graphwire server, op by op, and counts passes.
 * ggml's RPC client claims every op, and a server that refuses one ends the connection (the client
 * then aborts), so the cases are listed first (`support` mode on ggml's CPU backend), those with a
 * type outside f32/f16/bf16/i32/i64 are dropped, and the rest run in chunks selected with `-p`; a
 * chunk whose process dies is re-run case by case so that one refusal costs only its own case.
 *
 *   deno run -A backends/cuda/conformance.ts --tbo PATH/test-backend-ops --server 127.0.0.1:PORT \
 *     [--ops ADD,MUL_MAT,...] [--filter PARAMS_REGEX] [--json out.json] [--jobs N] [--chunk-jobs M]
 *
 * The binary must carry the GW_RPC patch (see bench/RESULTS.md): GW_RPC=HOST:PORT registers the
 * server as backend RPC0.
 * @module
 */

const OPS = (
  "ADD SUB MUL DIV ADD1 ACC SCALE SQR SQRT LOG SIN COS CLAMP LEAKY_RELU ADD_ID " +
  "ABS SGN NEG STEP TANH ELU RELU SIGMOID GELU GELU_QUICK GELU_ERF SILU HARDSWISH HARDSIGMOID EXP EXPM1 " +
  "SOFTPLUS FLOOR CEIL ROUND TRUNC REGLU GEGLU SWIGLU SWIGLU_OAI GEGLU_ERF GEGLU_QUICK " +
  "NORM RMS_NORM L2_NORM MUL_MAT MUL_MAT_ID GET_ROWS SET_ROWS CPY DUP CONT SET CONCAT REPEAT PAD ROLL " +
  "SOFT_MAX DIAG_MASK_INF ROPE FLASH_ATTN_EXT SUM SUM_ROWS MEAN ARGMAX COUNT_EQUAL ARGSORT TOP_K CUMSUM " +
  "ARANGE FILL TRI DIAG"
).split(" ");

const TYPES = new Set(["f32", "f16", "bf16", "i32", "i64"]);

/** Per-op outcome. */
export interface OpOutcome {
  op: string;
  total: number;
  passed: number;
  failed: string[];
  crashed: string[];
  skipped: number;
  /** Cases ggml's CPU backend (the reference) does not run. */
  unrunnable: number;
  /** The end of test-backend-ops' output for cases that gave no result. */
  crashOutput: string[];
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

async function run(
  tbo: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number; out: string }> {
  const cmd = new Deno.Command(tbo, { args, env, stdout: "piped", stderr: "piped" });
  const child = cmd.spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code, out: (dec.decode(stdout) + dec.decode(stderr)).replace(ANSI, "") };
}

/** Cases of `op` (their parameter strings) as ggml's CPU backend lists them. */
async function listCases(tbo: string, op: string): Promise<string[]> {
  const { out } = await run(tbo, ["support", "-o", op, "-b", "CPU"], {}, 120_000);
  const cases: string[] = [];
  const re = new RegExp(`^\\s+${op}\\((.*)\\): (SUPPORTED|NOT SUPPORTED|not supported)`, "i");
  for (const line of out.split("\n")) {
    const m = line.match(re);
    if (m) cases.push(m[1]);
  }
  return cases;
}

/** Whether every type named in a case's parameters is one graphwire devices take. */
function typesOk(params: string): boolean {
  for (const m of params.matchAll(/(?:^|,)(type[A-Za-z_0-9]*)=([A-Za-z0-9_]+)/g)) {
    if (!TYPES.has(m[2])) return false;
  }
  return true;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Result lines: "  OP(params): OK", "  OP(params): [OP] NMSE = … > … FAIL", "  OP(params): not
 * supported [backend]". Values: "OK", "FAIL: detail" or "not supported".
 */
export function parseResults(op: string, out: string): Map<string, string> {
  const res = new Map<string, string>();
  // a failing case's line may start with the error ("[SUM] ERR = … > …   SUM(params): FAIL")
  const head = `${op}(`;
  for (const line of out.split("\n")) {
    const start = line.indexOf(head);
    if (start < 0 || !(start === 2 || line.includes("FAIL"))) continue;
    const end = line.lastIndexOf("): ");
    if (end < start) continue;
    const params = line.slice(start + head.length, end), rest = line.slice(end + 3).trim();
    if (rest === "OK") res.set(params, "OK");
    else if (rest.includes("not supported")) res.set(params, "not supported");
    else if (rest.includes("FAIL")) res.set(params, `FAIL: ${line.slice(0, start).trim() || rest}`);
  }
  return res;
}

/** Runs the listed cases of `op` against the server, chunk by chunk. */
export async function runOp(
  tbo: string,
  server: string,
  op: string,
  chunk = 24,
  filter?: RegExp,
  jobs = 1,
): Promise<OpOutcome> {
  const all = (await listCases(tbo, op)).filter((c) => !filter || filter.test(c));
  const cases = all.filter(typesOk);
  const o: OpOutcome = {
    op,
    total: cases.length,
    passed: 0,
    failed: [],
    crashed: [],
    skipped: all.length - cases.length,
    unrunnable: 0,
    crashOutput: [],
  };
  const env = { GW_RPC: server };
  const runCases = async (
    list: string[],
  ): Promise<{ results: Map<string, string>; died: boolean; out: string }> => {
    const re = `^(?:${list.map(escapeRe).join("|")})$`;
    const { code, out } = await run(tbo, ["test", "-o", op, "-b", "RPC0", "-p", re], env, 300_000);
    const results = parseResults(op, out);
    return { results, died: code !== 0 && results.size < list.length, out };
  };
  const parts: string[][] = [];
  for (let i = 0; i < cases.length; i += chunk) parts.push(cases.slice(i, i + chunk));
  // big ops (MUL_MAT, FLASH_ATTN_EXT: thousands of cases) run their chunks `jobs` at a time
  await Promise.all(Array.from({ length: Math.min(jobs, parts.length) }, async () => {
    for (let part = parts.shift(); part; part = parts.shift()) await runPart(part);
  }));
  return o;

  async function runPart(part: string[]): Promise<void> {
    const { results, died } = await runCases(part);
    if (died) {
      // re-run what did not report, one case at a time
      for (const c of part) {
        if (results.has(c)) continue;
        const r = await runCases([c]);
        const v = r.results.get(c);
        if (v) results.set(c, v);
        else {
          o.crashed.push(c);
          o.crashOutput.push(`${c}: ${r.out.slice(-400)}`);
        }
      }
    }
    for (const c of part) {
      const v = results.get(c);
      if (v === "OK") o.passed++;
      else if (v === "not supported") o.unrunnable++;
      else if (v?.startsWith("FAIL")) o.failed.push(`${c}: ${v}`);
      else if (!o.crashed.includes(c)) o.crashed.push(c);
    }
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const take = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const tbo = take("--tbo") ?? "test-backend-ops";
  const server = take("--server");
  const ops = (take("--ops") ?? OPS.join(",")).split(",");
  const json = take("--json");
  const jobs = Number(take("--jobs") ?? "4");
  // processes per op for ops with many chunks; ops themselves run `jobs` at a time
  const chunkJobs = Number(take("--chunk-jobs") ?? "1");
  const f = take("--filter");
  const filter = f ? new RegExp(f) : undefined;
  if (!server) {
    console.error("usage: conformance.ts --tbo PATH --server HOST:PORT [--ops A,B] [--json F] [--jobs N]");
    Deno.exit(2);
  }
  const outcomes: OpOutcome[] = [];
  const queue = [...ops];
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (queue.length) {
      const op = queue.shift()!;
      const o = await runOp(tbo, server, op, 24, filter, chunkJobs);
      outcomes.push(o);
      if (json) await Deno.writeTextFile(json, JSON.stringify(outcomes, null, 2));
      const runnable = o.total - o.unrunnable;
      const notes = [
        o.failed.length ? `${o.failed.length} failed` : "",
        o.crashed.length ? `${o.crashed.length} without a result (connection ended or client died)` : "",
        o.unrunnable ? `${o.unrunnable} the CPU reference does not run` : "",
        `${o.skipped} with other types not run`,
      ].filter((x) => x);
      console.log(`${op.padEnd(14)} ${o.passed}/${runnable} passed (${notes.join("; ")})`);
    }
  }));
  outcomes.sort((a, b) => ops.indexOf(a.op) - ops.indexOf(b.op));
  if (json) await Deno.writeTextFile(json, JSON.stringify(outcomes, null, 2));
  const tot = outcomes.reduce((s, o) => s + o.total - o.unrunnable, 0);
  const pass = outcomes.reduce((s, o) => s + o.passed, 0);
  console.log(`total: ${pass}/${tot} passed`);
}
