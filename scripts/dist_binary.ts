/**
 * The compiled binary in dist/, kept up to date for whatever runs it: the benchmarks and tests/integration/binary_test.ts.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname;
export const DIST_BIN = join(ROOT, "dist/github-runner-linux-x64");

/** Builds the binary when it is missing or older than its sources: timing a stale binary would mislead. */
export function ensureBinary(log: (line: string) => void = (l) => console.error(l)): string {
  const mtime = (f: string) => statSync(join(ROOT, f)).mtimeMs;
  const lib = readdirSync(join(ROOT, "lib"), { recursive: true }).map((f) => `lib/${f}`);
  const newest = Math.max(...["main.ts", "build.ts", ...lib].filter((f) => f.endsWith(".ts")).map((f) => mtime(f)));
  const why = !existsSync(DIST_BIN) ? "missing" : statSync(DIST_BIN).mtimeMs < newest ? "older than its sources" : "";
  if (!why) return "up to date";
  log(`${DIST_BIN} is ${why}: deno task build`);
  const built = new Deno.Command("deno", { args: ["task", "build"], cwd: ROOT, stdout: "inherit", stderr: "inherit" })
    .outputSync();
  if (!built.success) throw new Error(`deno task build failed (exit ${built.code})`);
  return `rebuilt: it was ${why}`;
}
