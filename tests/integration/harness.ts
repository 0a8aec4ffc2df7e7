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
import { GithubClient } from "../../lib/github.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { logger, setupLogging } from "../../lib/log.ts";
import { KEY_PREFIX, KEY_RUNNER_ID, runnerName } from "../../lib/names.ts";
import { type PassOptions, type PassReport, runPass } from "../../lib/reconcile.ts";
import type { PassDeps } from "../../lib/reconcile.ts";
import { removeRunnerNetwork } from "../../lib/runner_network.ts";
import { gone, LxdConnection, startCall } from "../../lib/lxd_operations.ts";

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
  /** A fresh name of this bed's pattern, `<prefix>-<8 hex>` (default prefix: the bed's). */
  newName(prefix?: string): string;
  /**
   * Creates a container behind the manager's back (another owner's, or a stopped or stuck one of ours), from the
   * test image. `owner` is written as the ownership mark; none when absent. close() deletes it.
   */
  createInstance(
    spec: { name: string; owner?: string; runnerId?: number; start: boolean; ephemeral?: boolean },
  ): Promise<void>;
  close(): Promise<void>;
}

export interface BedOptions {
  /** The passes' clock (default Date.now): tests move time forward instead of sleeping. */
  clock?: () => number;
  /** The token the manager sends (default: the one the fake accepts). */
  token?: string;
  /** Scales the retry plugin's back-off of 1, 4, 9 x this (default: the binary's 1000 ms). */
  retryBaseMs?: number;
  /** The service's environment, as far as the config reads it (proxy variables). */
  env?: Record<string, string>;
}

export async function openBed(file: RawConfig, opts: BedOptions = {}): Promise<Bed> {
  const fake = await FakeGithub.start({ hostname: bridgeAddress() });
  const socketPath = detectLxdSocket();
  if (!socketPath) throw new Error("No LXD socket: run scripts/lxd-test-host.sh first");
  const lxd = new LxdClient({ socketPath });
  const prefix = `t${crypto.randomUUID().slice(0, 6)}`;
  const cacheDir = await mkdtemp(join(tmpdir(), "github-runner-test-"));
  const created = new Set<string>();
  const make = (over: RawConfig) =>
    parseConfig({
      hostname: "test-host",
      envToken: opts.token ?? fake.token,
      proxyEnv: opts.env,
      file: {
        path: "acme",
        image: TEST_IMAGE,
        "github-api-url": fake.url,
        "name-prefix": prefix,
        "cache-dir": cacheDir,
        "lxd-socket": socketPath,
        // Off unless a test is about the fence: each fenced bed gets a bridge of its own (tests/integration/network_test.ts).
        "network-policy": false,
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
      bed.deps = { ...bed.deps, network: makeDeps(bed.config).network };
    },
    async instances() {
      const all = await lxd.listInstances();
      return new Map(all.filter((i) => i.name.startsWith(`${prefix}-`)).map((i) => [i.name, i.status]));
    },
    newName: (of = prefix) => runnerName(of, (n) => crypto.getRandomValues(new Uint8Array(n))),
    async createInstance(spec) {
      created.add(spec.name);
      await lxd.createInstance({
        name: spec.name,
        type: "container",
        image: TEST_IMAGE,
        ephemeral: spec.ephemeral ?? false,
        start: spec.start,
        config: {
          ...(spec.owner === undefined ? {} : { [KEY_PREFIX]: spec.owner }),
          ...(spec.runnerId === undefined ? {} : { [KEY_RUNNER_ID]: String(spec.runnerId) }),
        },
      });
    },
    async close() {
      const leftovers = [...new Set([...(await bed.instances()).keys(), ...created])];
      await Promise.all(leftovers.map((name) => lxd.deleteInstance(name).catch(() => {})));
      // Also when the bed's own config has no fence: a binary run from the bed's prefix makes the default one.
      await removeRunnerNetwork(socketPath, bed.config.network).catch(() => {});
      await fake.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
  bed.deps = makeDeps(bed.config);
  if (opts.clock) bed.deps = { ...bed.deps, clock: opts.clock };
  if (opts.retryBaseMs !== undefined) {
    const log = logger("github");
    const github = new GithubClient({
      token: bed.config.token,
      apiUrl: bed.config.githubApiUrl,
      scope: bed.config.scope,
      retryBaseMs: opts.retryBaseMs,
      onRateLimit: (r) => log.warning("GitHub rate limit on {route}: asked to wait {retryAfterS} s", { ...r }),
    });
    bed.deps = { ...bed.deps, github };
  }
  return bed;
}

/**
 * Our runners as each side sees them, sorted: registered names, and names of instances with our mark. Ownership is
 * spelled out here (`<prefix>-<8 hex>`) rather than taken from lib/names.ts, so that tests do not trust the code
 * under test.
 */
export async function ownRunners(bed: Bed): Promise<{ registered: string[]; instances: string[] }> {
  const ours = new RegExp(`^${bed.prefix}-[0-9a-f]{8}$`);
  const registered = bed.fake.runners().filter((r) => ours.test(r.name)).map((r) => r.name);
  const instances = (await bed.lxd.listInstances()).filter((i) =>
    ours.test(i.name) && i.userKeys[KEY_PREFIX] === bed.prefix
  )
    .map((i) => i.name);
  return { registered: registered.sort(), instances: instances.sort() };
}

/**
 * An LXD object read straight from the REST API (`/1.0/networks/NAME`, `/1.0/network-acls/NAME`, ...), beside the
 * clients under test; GONE when LXD answers 404.
 */
// deno-lint-ignore no-explicit-any
export async function readLxd(path: string): Promise<any> {
  const lxd = new LxdConnection(detectLxdSocket()!);
  return await lxd.sync(startCall(`read ${path}`, 10_000), { method: "GET", path }).catch(gone);
}

/** Names of runners that are online and idle in the fake, for this prefix. */
export function idleRunners(bed: Bed): string[] {
  return bed.fake.runners().filter((r) => r.name.startsWith(`${bed.prefix}-`) && r.status === "online" && !r.busy)
    .map((r) => r.name);
}

export function summary(report: PassReport): string[] {
  return report.results.map((r) =>
    `${
      r.action.kind === "create"
        ? `create ${r.action.type}`
        : r.action.kind === "remove"
        ? `remove ${r.action.cause}`
        : "mark finished"
    }: ${r.outcome}`
  ).sort();
}
