/**
 * Argument parsing over `node:util`'s parseArgs (JSR's @std/cli is out of reach; switching later is
 * this one file), with the two things llama.cpp-style flags need: options whose value is optional
 * (`-c [DIR]`) and numbers checked as they are parsed.
 * @module
 */

import { parseArgs as nodeParseArgs } from "node:util";

/** One option. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** For "string" options: the value used when the flag is given without one (`-c`). */
  optionalValue?: string;
}

/** Parsed options and positionals. */
export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A usage error: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses `argv` by `spec`; unknown flags and missing values are {@linkcode UsageError}s. */
export function parseArgs(argv: string[], spec: Record<string, OptionSpec>): Parsed {
  const args = [...argv];
  // Give flags with an optional value their default when none follows.
  for (const [name, o] of Object.entries(spec)) {
    if (o.optionalValue === undefined) continue;
    const flags = [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
    for (let i = 0; i < args.length; i++) {
      if (!flags.includes(args[i])) continue;
      const next = args[i + 1];
      if (next === undefined || next.startsWith("-")) args.splice(i + 1, 0, o.optionalValue);
    }
  }
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean }
  > = {};
  for (const [name, o] of Object.entries(spec)) {
    const opt: {
      type: "string" | "boolean";
      short?: string;
      multiple?: boolean;
      default?: string | boolean;
    } = {
      type: o.type,
    };
    if (o.short) opt.short = o.short;
    if (o.multiple) opt.multiple = true;
    if (o.default !== undefined) opt.default = o.default;
    options[name] = opt;
  }
  try {
    const r = nodeParseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Parsed["values"], positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A non-negative integer option, or `fallback` when absent. */
export function intOption(
  v: unknown,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return fallback;
  const s = String(v);
  if (!/^\d+$/.test(s)) throw new UsageError(`--${name} takes a whole number, got "${s}"`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A comma-separated list option ("a,b" → ["a","b"]); repeated flags are joined. */
export function listOption(v: unknown): string[] {
  if (v === undefined) return [];
  const parts = Array.isArray(v) ? v : [String(v)];
  return parts.flatMap((p) => String(p).split(",")).map((s) => s.trim()).filter(Boolean);
}
