/**
 * Regenerates tests/fakes/openapi-runners.json: the self-hosted-runner subset of GitHub's official OpenAPI 3.0
 * description, which the fake GitHub (tests/fakes/github.ts) validates every request and response against.
 *
 * Usage (from the repository root; needs npm and tar on PATH, and the npm registry):
 *   deno run -A scripts/extract-openapi.ts                 # npm pack @octokit/openapi@VERSION into a temp dir
 *   deno run -A scripts/extract-openapi.ts --from FILE     # an already unpacked api.github.com.json, or the .tgz
 *
 * Why `npm pack` and not a `npm:` import in deno.json: the package is a 29 MB tarball that unpacks to about 400 MB
 * (every GitHub edition, each also dereferenced). Declaring it would make every `deno install` (so every CI run)
 * fetch it, although only this script reads it, and only when the fixture is refreshed. The fixture is committed.
 *
 * The subset: every path under /orgs/{org}/actions/runners*, /orgs/{org}/actions/runner-groups* and
 * /repos/{owner}/{repo}/actions/runners*, with every component they reference (transitively) carried along
 * unchanged, so `$ref`s keep working inside the fixture.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";

/** The @octokit/openapi release the fixture comes from; bump it to refresh the fixture. */
export const OPENAPI_PACKAGE = "@octokit/openapi@23.0.2";
const SPEC_IN_PACKAGE = "package/generated/api.github.com.json";
const OUT = new URL("../tests/fakes/openapi-runners.json", import.meta.url);

/** The runner paths: org and repo runners (with labels, downloads, tokens, JIT) and org runner groups. */
const PATH_PATTERN =
  /^\/(orgs\/\{org\}\/actions\/(runners|runner-groups)|repos\/\{owner\}\/\{repo\}\/actions\/runners)(\/|$)/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Spec = {
  openapi: string;
  info: Record<string, Json>;
  paths: Record<string, Json>;
  components: Record<string, Record<string, Json>>;
};

/** Picks the runner paths and the transitive closure of the components they reference (pure). */
export function extractRunnerSubset(spec: Spec, source: string): Spec {
  const paths: Record<string, Json> = {};
  for (const [path, item] of Object.entries(spec.paths)) if (PATH_PATTERN.test(path)) paths[path] = item;
  const components: Record<string, Record<string, Json>> = {};
  const seen = new Set<string>();
  const walk = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== "object") return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") {
        if (seen.has(value)) continue;
        seen.add(value);
        const match = /^#\/components\/([^/]+)\/([^/]+)$/.exec(value);
        if (!match) {
          throw new Error(`Cannot carry "${value}": only #/components/<kind>/<name> references are supported`);
        }
        const [, kind, name] = match;
        const target = spec.components[kind]?.[name];
        if (target === undefined) throw new Error(`Cannot carry "${value}": it is not in the source description`);
        (components[kind] ??= {})[name] = target;
        walk(target);
      } else walk(value);
    }
  };
  walk(paths);
  // Sorted keys keep regenerations diff-friendly when GitHub reorders its components.
  const sorted: Record<string, Record<string, Json>> = {};
  for (const kind of Object.keys(components).sort()) {
    sorted[kind] = Object.fromEntries(Object.keys(components[kind]).sort().map((n) => [n, components[kind][n]]));
  }
  return {
    openapi: spec.openapi,
    info: { ...spec.info, "x-extracted-from": source, "x-extracted-by": "scripts/extract-openapi.ts" },
    paths: Object.fromEntries(Object.keys(paths).sort().map((p) => [p, paths[p]])),
    components: sorted,
  };
}

function readSpec(from: string | undefined): { spec: Spec; source: string } {
  if (from?.endsWith(".json")) return { spec: JSON.parse(readFileSync(from, "utf8")), source: basename(from) };
  const work = mkdtempSync(join(tmpdir(), "extract-openapi-"));
  try {
    let tgz = from;
    if (tgz === undefined) {
      execFileSync("npm", ["pack", OPENAPI_PACKAGE, "--silent", "--pack-destination", work], { stdio: "ignore" });
      tgz = join(work, readdirSync(work).find((f) => f.endsWith(".tgz"))!);
    }
    // Only the one description and the package's own name and version are unpacked (the tarball holds ~400 MB).
    execFileSync("tar", ["-xzf", tgz, "-C", work, SPEC_IN_PACKAGE, "package/package.json"], { stdio: "inherit" });
    const pkg = JSON.parse(readFileSync(join(work, "package/package.json"), "utf8"));
    const spec = JSON.parse(readFileSync(join(work, SPEC_IN_PACKAGE), "utf8"));
    return { spec, source: `${pkg.name}@${pkg.version} generated/api.github.com.json` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { from: { type: "string" } }, strict: true });
  const { spec, source } = readSpec(values.from);
  const subset = extractRunnerSubset(spec, source);
  // Plain JSON.stringify layout: deno.json excludes the fixture from `deno fmt`, so regenerations diff cleanly.
  writeFileSync(OUT, JSON.stringify(subset, null, 2) + "\n");
  const size = readFileSync(OUT).length;
  console.log(`Wrote ${OUT.pathname}: ${Object.keys(subset.paths).length} paths, ${size} bytes, from ${source}`);
}
