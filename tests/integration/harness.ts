/**
 * A test bed for whole-lifecycle tests: the real LXD daemon of this host, the fake GitHub on the LXD bridge (so
 * runner containers reach it), a config, and the same PassDeps the binary builds. Every test uses its own
 * prefix and removes every instance of that prefix at the end, whatever happened.
 */
import { networkInterfaces, tmpdir } from "node:os";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { FakeGithub } from "../fakes/github.ts";
import { type Config, parseConfig, type RawConfig } from "../../lib/config.ts";
import { makeDeps } from "../../lib/deps.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { setupLogging } from "../../lib/log.ts";
import { type PassOptions, type PassReport, runPass } from "../../lib/reconcile.ts";
import type { PassDeps } from "../../lib/reconcile.ts";

export const TEST_IMAGE = Deno.env.get("GITHUB_RUNNER_TEST_IMAGE") ?? "github-runner-test";

/** Log lines of every pass in this process, to check that no secret reaches a log. */
export const logLines: string[] = [];
setupLogging({ level: "debug", json: true, write: (l) => void logLines.push(l) });

/** The host's address on the LXD bridge: where containers find the fake GitHub. */
export function bridgeAddress(): string {
  const addr = networkInterfaces()["lxdbr0"]?.find((a) => a.family === "IPv4")?.address;
  if (!addr) throw new Error("No IPv4 address on lxdbr0: run scripts/lxd-test-host.sh first");
  return addr;
}

export interface Bed {
  fake: FakeGithub;
  lxd: LxdClient;
  prefix: string;
  config: Config;
  deps: PassDeps;
  cacheDir: string;
  /** A pass with the current config (`reconfigure` swaps it). */
  pass(opts?: PassOptions): Promise<PassReport>;
  reconfigure(over: RawConfig): void;
  /** Our prefix's instances, by name. */
  instances(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export async function openBed(file: RawConfig, opts: { clock?: () => number } = {}): Promise<Bed> {
  const fake = await FakeGithub.start({ hostname: bridgeAddress() });
  const socketPath = detectLxdSocket();
  if (!socketPath) throw new Error("No LXD socket: run scripts/lxd-test-host.sh first");
  const lxd = new LxdClient({ socketPath });
  const prefix = `t${crypto.randomUUID().slice(0, 6)}`;
  const cacheDir = await mkdtemp(join(tmpdir(), "github-runner-test-"));
  const make = (over: RawConfig) =>
    parseConfig({
      hostname: "test-host",
      envToken: fake.token,
      file: {
        path: "acme",
        image: TEST_IMAGE,
        "github-api-url": fake.url,
        "name-prefix": prefix,
        "cache-dir": cacheDir,
        "lxd-socket": socketPath,
        ...file,
        ...over,
      },
    });
  const bed: Bed = {
    fake,
    lxd,
    prefix,
    cacheDir,
    config: make({}),
    deps: undefined as unknown as PassDeps,
    pass: (passOpts) => runPass(bed.deps, bed.config, passOpts),
    reconfigure(over) {
      bed.config = make(over);
    },
    async instances() {
      const all = await lxd.listInstances();
      return new Map(all.filter((i) => i.name.startsWith(`${prefix}-`)).map((i) => [i.name, i.status]));
    },
    async close() {
      const leftovers = [...(await bed.instances()).keys()];
      await Promise.all(leftovers.map((name) => lxd.deleteInstance(name).catch(() => {})));
      await fake.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
  bed.deps = makeDeps(bed.config);
  if (opts.clock) bed.deps = { ...bed.deps, clock: opts.clock };
  return bed;
}

/** Names of runners that are online and idle in the fake, for this prefix. */
export function idleRunners(bed: Bed): string[] {
  return bed.fake.runners().filter((r) => r.name.startsWith(`${bed.prefix}-`) && r.status === "online" && !r.busy)
    .map((r) => r.name);
}

export function summary(report: PassReport): string[] {
  return report.results.map((r) =>
    `${r.action.kind === "create" ? `create ${r.action.type}` : `remove ${r.action.cause}`}: ${r.outcome}`
  ).sort();
}
