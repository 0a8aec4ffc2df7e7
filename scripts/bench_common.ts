/**
 * What both benchmarks (scripts/bench.ts, scripts/bench_service.ts) share: argument checks, medians and their
 * rendering, progress lines, an up-to-date binary, and the test host (LXD, bridge, a private copy of the binary).
 */
import { copyFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { detectLxdSocket, LxdClient } from "../lib/lxd.ts";

export { DIST_BIN, ROOT } from "./dist_binary.ts";
import { DIST_BIN, ensureBinary as ensureDistBinary } from "./dist_binary.ts";

export const whole = (s: string, flag: string): number => {
  if (!/^[1-9]\d*$/.test(s)) throw new Error(`${flag} must be a positive whole number, got "${s}"`);
  return Number(s);
};

export const progress = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const ms = (x: number): string =>
  isNaN(x) ? "—" : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`;

export interface BenchHost {
  /** The host's address on lxdbr0: where runner containers reach the fake GitHub. */
  bridge: string;
  socketPath: string;
  lxd: LxdClient;
  /** `<stem><6 hex>`: every instance of the run carries it, so cleanup finds them all. */
  prefix: string;
  tmp: string;
  /** A private copy of the binary: others may rebuild dist/ meanwhile, and every figure must come from one binary. */
  bin: string;
}

export async function benchHost(stem: string): Promise<BenchHost> {
  const bridge = networkInterfaces()["lxdbr0"]?.find((a) => a.family === "IPv4")?.address;
  if (!bridge) throw new Error("No IPv4 address on lxdbr0: run scripts/lxd-test-host.sh first");
  const socketPath = detectLxdSocket();
  if (!socketPath) throw new Error("No LXD socket: run scripts/lxd-test-host.sh first");
  const prefix = `${stem}${crypto.randomUUID().replaceAll("-", "").slice(0, 6)}`;
  const tmp = await mkdtemp(join(tmpdir(), `github-runner-${stem}-`));
  const bin = join(tmp, "github-runner");
  copyFileSync(DIST_BIN, bin);
  return { bridge, socketPath, lxd: new LxdClient({ socketPath }), prefix, tmp, bin };
}

/** The image the benchmarks spawn from: the busybox test image unless GITHUB_RUNNER_TEST_IMAGE names another. */
export const IMAGE = Deno.env.get("GITHUB_RUNNER_TEST_IMAGE") ?? "github-runner-test";

/**
 * Writes a config file for the binary under test: the keys every benchmark sets (the fake GitHub, this run's prefix,
 * cache and LXD socket), then `extra`. The token is never in it: the benchmarks pass GITHUB_TOKEN.
 */
export function writeBenchConfig(
  file: string,
  host: Pick<BenchHost, "prefix" | "tmp" | "socketPath">,
  githubApiUrl: string,
  extra: Record<string, string | number | boolean>,
): void {
  const config = {
    path: "acme",
    image: IMAGE,
    "github-api-url": githubApiUrl,
    "name-prefix": host.prefix,
    "cache-dir": join(host.tmp, "cache"),
    "lxd-socket": host.socketPath,
    ...extra,
  };
  // JSON strings, numbers and booleans are valid TOML values.
  writeFileSync(file, Object.entries(config).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
}

/** dist_binary.ts ensureBinary, saying on the progress line when it rebuilds. */
export function ensureBinary(): string {
  return ensureDistBinary(progress);
}
