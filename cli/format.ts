/**
 * Printing helpers: aligned tables and human sizes.
 * @module
 */

/** "1.5 GiB" style size. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let x = n;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Whole MiB, as ggml's banner prints memory. */
export function mib(n: number): string {
  return `${Math.floor(n / 1048576)} MiB`;
}

/** Column alignment. */
export type Align = "left" | "right";

/** An aligned text table; numbers right-aligned by default. */
export function table(header: string[], rows: (string | number)[][], align?: Align[]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const al = align ?? header.map((_, c) => (rows.every((r) => typeof r[c] === "number") ? "right" : "left"));
  const line = (r: string[]) =>
    r.map((v, c) => (al[c] === "right" ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join(
    "\n",
  );
}

/** A markdown table with aligned columns. */
export function markdownTable(header: string[], rows: (string | number)[][], align?: Align[]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(3, ...cells.map((r) => (r[c] ?? "").length)));
  const al = align ?? header.map((_, c) => (rows.every((r) => typeof r[c] === "number") ? "right" : "left"));
  const line = (r: string[]) =>
    "| " + r.map((v, c) => (al[c] === "right" ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join(" | ") +
    " |";
  const sep = "| " +
    widths.map((w, c) => (al[c] === "right" ? "-".repeat(w - 1) + ":" : "-".repeat(w))).join(" | ") + " |";
  return [line(cells[0]), sep, ...cells.slice(1).map(line)].join("\n");
}
