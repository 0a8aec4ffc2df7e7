/**
 * Builds the single-file executables with `bun build --compile`, offline:
 *   deno task build            -> dist/github-runner-linux-x64 (+ .sha256) and dist/github-runner.charm
 *   deno task build --arm64    -> also dist/github-runner-linux-arm64, compiled against the bun runtime from the
 *                                 npm package @oven/bun-linux-aarch64 (bun would otherwise try to download it)
 * bun comes from tools/node_modules (npm ci --prefix tools) or PATH.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { packCharm } from "./scripts/pack-charm.ts";

const ROOT = new URL(".", import.meta.url).pathname;
const DIST = join(ROOT, "dist");
const CACHE = join(ROOT, ".cache");
const BUN_VERSION = "1.4.5";

function bunBinary(): string {
  const local = join(ROOT, "tools/node_modules/.bin/bun");
  return existsSync(local) ? local : "bun";
}

function compile(target: string, outfile: string, executablePath?: string): void {
  const args = [
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    `--target=${target}`,
    ...(executablePath ? [`--compile-executable-path=${executablePath}`] : []),
    join(ROOT, "main.ts"),
    "--outfile",
    outfile,
  ];
  execFileSync(bunBinary(), args, {
    stdio: "inherit",
    cwd: ROOT,
    env: { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
  });
  const sha = createHash("sha256").update(readFileSync(outfile)).digest("hex");
  writeFileSync(`${outfile}.sha256`, `${sha}  ${basename(outfile)}\n`);
  console.log(`${basename(outfile)}: ${(statSync(outfile).size / 1048576).toFixed(1)} MiB, sha256 ${sha}`);
}

/** The aarch64 bun runtime, from the npm registry (reachable where GitHub downloads are not). */
function arm64Runtime(): string {
  const dir = join(CACHE, `bun-linux-aarch64-${BUN_VERSION}`);
  const bin = join(dir, "package/bin/bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz = execFileSync("npm", ["pack", `@oven/bun-linux-aarch64@${BUN_VERSION}`, "--silent"], {
    cwd: dir,
    encoding: "utf8",
  }).trim();
  execFileSync("tar", ["-xzf", tgz], { cwd: dir });
  return bin;
}

if (import.meta.main) {
  mkdirSync(DIST, { recursive: true });
  compile("bun-linux-x64", join(DIST, "github-runner-linux-x64"));
  // The Juju charm: its logic is the binary above, attached as a resource at deploy time.
  const charm = packCharm({ outFile: join(DIST, "github-runner.charm") });
  console.log(`${basename(charm.path)}: ${charm.files.join(", ")}`);
  if (process.argv.includes("--arm64")) {
    compile("bun-linux-arm64", join(DIST, "github-runner-linux-arm64"), arm64Runtime());
  }
}
