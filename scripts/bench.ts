/**
 * Benchmark, not a test: the compiled binary against a FakeGithub on the LXD bridge and the host's real LXD.
 *   deno run -A scripts/bench.ts [--runners N] [--rounds R] [--passes K]
 * Machines here are shared and noisy, so every figure is a median printed beside a baseline measured in the same
 * run, interleaved with it (LXD doing the bare work, or a trivial process), and their ratio. Prints markdown, also
 * to .cache/bench.md. Nothing asserts on time; it fails only when the binary does not do its job.
 */
import { removeRunnerNetwork } from "../lib/runner_network.ts";
import { defaultNetwork } from "../lib/config.ts";
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createHash } from "node:crypto";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { FakeGithub } from "../tests/fakes/github.ts";
import { benchHost, ensureBinary, IMAGE, median, ms, progress, ROOT, whole, writeBenchConfig } from "./bench_common.ts";
import { mapBounded } from "../lib/act.ts";
import type { PassReport } from "../lib/reconcile.ts";

const TIME = "/usr/bin/time"; // GNU time: the exact peak RSS of a child (apt-get install -y time)
const CONCURRENCY = 4; // the binary's default spawns in flight (lib/reconcile.ts): the parallel floor does the same
const STARTS = 20; // samples of process start time

const { values } = parseArgs({
  options: {
    runners: { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
    passes: { type: "string", default: "5" },
    /** "false": runners on the default profile's network, to measure what the fence costs a pass. */
    "network-policy": { type: "string", default: "true" },
  },
});
const N = whole(values.runners, "--runners"),
  R = whole(values.rounds, "--rounds"),
  K = whole(values.passes, "--passes");
const COMMAND = ["deno run -A scripts/bench.ts", ...Deno.args].join(" ");

// Ctrl-C aborts the child and any wait, so the finally below still removes every instance.
const stop = new AbortController();
Deno.addSignalListener("SIGINT", () => stop.abort());

const mib = (bytes: number) => isNaN(bytes) ? "—" : `${(bytes / 1048576).toFixed(1)} MiB`;
const kib = (x: number) => mib(x * 1024);
const num = (x: number) => isNaN(x) ? "—" : String(x);
const timed = async (xs: number[], f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  xs.push(performance.now() - t);
};

interface Run {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
  rssKiB?: number;
}

/**
 * Runs a command to completion; wall time from spawn to exit. With `rss`, GNU time wraps it, with timeout(1)
 * inside so a hung binary itself is killed; unwrapped runs are killed by Deno's abort signal.
 */
async function run(cmd: string[], opts: { timeoutMs: number; rss?: boolean; env?: Record<string, string> }) {
  const rssFile = join(tmp, `rss-${crypto.randomUUID()}`);
  const wrap = opts.rss && existsSync(TIME);
  const seconds = String(Math.ceil(opts.timeoutMs / 1000));
  const argv = wrap ? [TIME, "-f", "%M", "-o", rssFile, "timeout", "-k", "5", seconds, ...cmd] : cmd;
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(opts.timeoutMs + 10_000)]);
  const t0 = performance.now();
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), env: opts.env, signal, stdin: "null" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const r: Run = { ms: performance.now() - t0, code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  if (wrap) r.rssKiB = Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
  return r;
}

/** One `reconcile --json` of the binary; throws with its stderr when the pass did not succeed. */
async function reconcile(extra: string[] = [], rss = false): Promise<Run & { report: PassReport }> {
  const env = { GITHUB_TOKEN: fake.token, NO_COLOR: "1" }; // the token never goes on a command line
  const r = await run([bin, "reconcile", "--json", "-c", configFile, ...extra], { timeoutMs: 300_000, rss, env });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  const report = line.startsWith("{") ? JSON.parse(line) as PassReport : undefined;
  if (r.code !== 0 || !report?.ok) {
    throw new Error(`reconcile ${extra.join(" ")} exited ${r.code}: ${report?.error ?? ""}\n${r.stderr.slice(-3000)}`);
  }
  return { ...r, report };
}

const ours = (name: string) => name.startsWith(`${prefix}-`);
const onlineCount = () => fake.runners().filter((r) => ours(r.name) && r.status === "online").length;
const ourInstances = async () => (await lxd.listInstances({ signal: stop.signal })).filter((i) => ours(i.name));
const launch = (name: string) =>
  lxd.createInstance({ name, type: "container", image: IMAGE, ephemeral: true, start: true });

// ---- set-up ----------------------------------------------------------------------------------------------------
const binaryState = ensureBinary();
const { bridge, socketPath, lxd, prefix, tmp, bin } = await benchHost("bench");
const size = statSync(bin).size;
const sha = createHash("sha256").update(readFileSync(bin)).digest("hex");
const fake = await FakeGithub.start({ hostname: bridge });
const configFile = join(tmp, "config.toml");
writeBenchConfig(configFile, { prefix, tmp, socketPath }, fake.url, {
  containers: N,
  "network-policy": values["network-policy"] !== "false",
});

const s: Record<string, number[]> = {};
const add = (key: string, ...xs: number[]) => (s[key] ??= []).push(...xs);
const list = (key: string) => s[key] ??= [];
let steadyActive = 0, conditional = 0, coldSpawnMs = NaN, lxdVersion = "?";
const load0 = loadavg()[0];

try {
  lxdVersion = (await lxd.server({ signal: stop.signal })).serverVersion;
  if (!(await lxd.imageExists(IMAGE))) throw new Error(`No LXD image "${IMAGE}": run scripts/lxd-test-host.sh first`);
  for (let r = 0; r < R; r++) {
    // ---- 1. the floor: LXD itself through the binary's own client, in the same round as the spawn it explains --
    const one = `${prefix}-floor${r}`; // not an owned name: the binary would never touch it
    await timed(list("launch"), () => launch(one));
    await timed(list("exec"), () => lxd.exec(one, ["true"]));
    await timed(list("push"), () => lxd.pushFile(one, "/tmp/bench", "x".repeat(1024)));
    await timed(list("delete"), () => lxd.deleteInstance(one));
    const many = Array.from({ length: N }, (_, i) => `${prefix}-floor${r}n${i}`);
    await timed(list("launchN"), () => mapBounded(many, CONCURRENCY, launch));
    await timed(list("deleteN"), () => mapBounded(many, CONCURRENCY, (n) => lxd.deleteInstance(n)));

    // ---- 2. spawn 0 -> N. Runners can come online before the pass ends: the fake is watched meanwhile ----------
    const t0 = performance.now();
    let failed = false;
    const online = fake.waitFor(() => {
      if (failed || stop.signal.aborted) throw new Error("stopped");
      return onlineCount() === N;
    }, { timeoutMs: 180_000, intervalMs: 20, what: `${N} runners online` }).then(() => performance.now() - t0);
    online.catch(() => {}); // awaited below; never an unhandled rejection when the pass throws first
    const spawn = await reconcile([], true).catch((e) => {
      failed = true;
      throw e;
    });
    const creates = spawn.report.results.filter((x) => x.action.kind === "create");
    if (creates.length !== N) throw new Error(`the spawn pass made ${creates.length} runners, not ${N}`);
    add("spawnWall", spawn.ms);
    add("spawnCreate", ...creates.map((x) => x.durationMs));
    if (spawn.rssKiB) add("spawnRss", spawn.rssKiB);
    if (r === 0) coldSpawnMs = spawn.ms; // the first pass also downloads the runner application into cache-dir
    add("online", await online);

    // ---- 3. steady state, each pass next to a `version` run: the cost of merely starting the binary --------------
    await reconcile(); // settles: the spawns changed the runner list
    for (let k = 0; k < K; k++) {
      add("steadyBase", (await run([bin, "version"], { timeoutMs: 10_000 })).ms);
      const [counted, total] = [fake.counted, fake.requests.length];
      const steady = await reconcile();
      add("steadyWall", steady.ms);
      add("steadyCounted", fake.counted - counted);
      add("steadyTotal", fake.requests.length - total);
      conditional += fake.requests.slice(total).filter((q) => q.hadIfNoneMatch).length;
      if (steady.report.results.length > 0) steadyActive++;
    }
    const measured = await reconcile([], true); // RSS in a pass of its own: the wrapper would skew the timed ones
    if (measured.rssKiB) add("steadyRss", measured.rssKiB);

    // ---- 5. tear down N -> 0 --------------------------------------------------------------------------------------
    const down = await reconcile(["--containers", "0"]);
    const removes = down.report.results.filter((x) => x.action.kind === "remove");
    if (removes.length !== N) throw new Error(`the tear-down pass removed ${removes.length} runners, not ${N}`);
    add("downWall", down.ms);
    add("downRemove", ...removes.map((x) => x.durationMs));
    const left = await ourInstances();
    if (left.length > 0) throw new Error(`instances left after tear-down: ${left.map((i) => i.name).join(", ")}`);
    progress(`round ${r + 1}/${R}: spawn ${ms(spawn.ms)}, ${N} online ${ms(s.online.at(-1)!)}, down ${ms(down.ms)}`);
  }

  // ---- 4. the binary itself, interleaved with its baseline so noise hits both alike ---------------------------
  for (let i = 0; i < STARTS; i++) {
    add("version", (await run([bin, "version"], { timeoutMs: 10_000 })).ms);
    add("true", (await run(["/bin/true"], { timeoutMs: 10_000 })).ms);
  }
  for (let i = 0; i < 3; i++) {
    add("versionRss", (await run([bin, "version"], { timeoutMs: 10_000, rss: true })).rssKiB!);
  }
} finally {
  const left = await ourInstances().catch((e) => (progress(`cannot list instances to clean up: ${e.message}`), []));
  await Promise.all(left.map((i) => lxd.deleteInstance(i.name).catch((e) => progress(`cannot delete: ${e.message}`))));
  // The binary fenced its runners on a bridge of its own (network-policy is on by default).
  await removeRunnerNetwork(socketPath, defaultNetwork(prefix)).catch((e) => progress(`cannot remove: ${e.message}`));
  await fake.close();
  await rm(tmp, { recursive: true, force: true });
}

// ---- report ----------------------------------------------------------------------------------------------------
const m = (key: string) => median(s[key] ?? []);
const rows: string[] = [];
const row = (figure: string, a: number, baseline: string, b: number, fmt = ms) =>
  rows.push(`| ${figure} | ${fmt(a)} | ${baseline} | ${fmt(b)} | ${isNaN(a / b) ? "—" : `${(a / b).toFixed(2)}×`} |`);
const par = `LXD launch ${N}, ${CONCURRENCY} at a time`;
row(`spawn: create per runner (report durationMs, n=${N * R})`, m("spawnCreate"), `LXD launch 1 (n=${R})`, m("launch"));
row(`spawn: pass wall / ${N} (n=${R})`, m("spawnWall") / N, `${par}: wall / ${N}`, m("launchN") / N);
row(`spawn: process start → ${N} online in the fake`, m("online"), `${par}: wall`, m("launchN"));
row("spawn: first pass (cold runner-app cache)", coldSpawnMs, "spawn pass wall", m("spawnWall"));
row(
  `steady: pass wall (n=${R * K}; ${steadyActive} did anything)`,
  m("steadyWall"),
  "`version` just before",
  m("steadyBase"),
);
row(
  `steady: counted GitHub requests / pass (${conditional}/${R * K} conditional)`,
  m("steadyCounted"),
  "lifecycle test's bound: ≤ 1",
  NaN,
  num,
);
row("steady: all GitHub requests / pass", m("steadyTotal"), "—", NaN, num);
row(
  `tear-down: pass wall / ${N}`,
  m("downWall") / N,
  `LXD delete ${N}, ${CONCURRENCY} at a time: wall / ${N}`,
  m("deleteN") / N,
);
row("tear-down: remove per runner (report durationMs)", m("downRemove"), "LXD force stop + delete 1", m("delete"));
row(`\`version\` start → exit (n=${STARTS})`, m("version"), "`/bin/true`", m("true"));
row("peak RSS: steady reconcile", m("steadyRss"), "peak RSS: `version`", m("versionRss"), kib);
row(`peak RSS: spawn pass (${N} runners)`, m("spawnRss"), "peak RSS: `version`", m("versionRss"), kib);
row(
  "binary size",
  size,
  "the bun runtime it embeds",
  statSync(realpathSync(join(ROOT, "tools/node_modules/.bin/bun"))).size,
  mib,
);
const md = `## Benchmark: ${N} runners, ${R} rounds, ${K} steady passes per round

- command: \`${COMMAND}\`; binary ${binaryState}, sha256 ${sha.slice(0, 16)}…
- ${new Date().toISOString()}; ${cpus().length} CPUs, kernel ${release()}, LXD ${lxdVersion}, image \`${IMAGE}\`; \
load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end
- LXD floor (the binary's own client, medians): launch ${ms(m("launch"))}, first exec ${ms(m("exec"))}, \
1 KiB push ${ms(m("push"))}, force stop + delete ${ms(m("delete"))}

| figure | median | baseline | baseline median | ratio |
|---|---|---|---|---|
${rows.join("\n")}
`;
console.log(md);
mkdirSync(join(ROOT, ".cache"), { recursive: true });
writeFileSync(join(ROOT, ".cache/bench.md"), md);
