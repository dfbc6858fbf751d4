/**
 * Locating an npm package's files on disk (the Dawn providers load native libraries from npm
 * packages): Deno's npm cache (`$DENO_DIR/npm/registry.npmjs.org/NAME/VERSION`), a local
 * `node_modules`, or after asking Deno to fetch the package (`import("npm:NAME@VERSION/package.json")`),
 * which needs the npm registry to be reachable.
 * @module
 */

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Deno's cache folders that may hold npm packages, most likely first. */
export function denoDirs(): string[] {
  const dirs: string[] = [];
  const d = env("DENO_DIR");
  if (d) dirs.push(d);
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) dirs.push(`${xdg}/deno`);
  const home = env("HOME");
  if (home) dirs.push(`${home}/.cache/deno`, `${home}/Library/Caches/deno`);
  dirs.push(".gpu/deno_dir");
  return [...new Set(dirs)];
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** The path of `file` inside `name@version` if a copy is already on disk, else undefined. */
export function findPackageFile(name: string, version: string, file: string): string | undefined {
  const candidates = [
    ...denoDirs().map((d) => `${d}/npm/registry.npmjs.org/${name}/${version}/${file}`),
    `node_modules/${name}/${file}`,
    `node_modules/.deno/${name}@${version}/node_modules/${name}/${file}`,
  ];
  for (const c of candidates) if (isFile(c)) return c;
  return undefined;
}

/**
 * The path of `file` inside `name@version`, fetching the package through Deno's npm support when
 * it is not on disk yet. Returns undefined with the reason when it cannot be had.
 */
export async function packageFile(
  name: string,
  version: string,
  file: string,
): Promise<{ path?: string; reason?: string }> {
  const found = findPackageFile(name, version, file);
  if (found) return { path: found };
  try {
    const spec = `npm:${name}@${version}/package.json`;
    await import(spec, { with: { type: "json" } });
  } catch (e) {
    return {
      reason: `npm package ${name}@${version} is not in Deno's cache and could not be fetched (${e})`,
    };
  }
  const after = findPackageFile(name, version, file);
  return after
    ? { path: after }
    : { reason: `npm package ${name}@${version} fetched but ${file} not found in ${denoDirs().join(", ")}` };
}
