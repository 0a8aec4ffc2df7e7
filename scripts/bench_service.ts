/**
 * Benchmark of the `run` service: the compiled binary as a child, a FakeGithub on the LXD bridge, the host's LXD.
 *   deno run -A scripts/bench_service.ts [--runners N] [--rounds R] [--steady-seconds S]
 * Three services, each on a fresh fake and no instance left by the one before, each ended with SIGTERM; check-interval
 * is 30m, so after the first pass only the watch or a webhook can cause one:
 *   webhook  watch-interval 30m: replenish latency after an `in_progress` delivery; then 1 vs 200 deliveries
 *   watch    watch-interval 2s, no webhook: replenish latency from the conditional watch alone
 *   steady   watch-interval 5s, N idle runners, S seconds of nothing: what the service costs at GitHub
 * Machines are shared and noisy: medians beside a baseline from the same rounds (LXD launching the same image via
 * lib/lxd.ts), and their ratio; nothing asserts on time. Markdown on stdout and in .cache/bench-service.md. Exits 1
 * when the service fails at its job: a bounded wait runs out, or SIGTERM does not end it with 0.
 */
import { removeRunnerNetwork } from "../lib/runner_network.ts";
import { defaultNetwork } from "../lib/config.ts";
import { parseArgs } from "node:util";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createHmac } from "node:crypto";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { FakeGithub } from "../tests/fakes/github.ts";
import { benchHost, ensureBinary, IMAGE, median, ms, progress, ROOT, whole, writeBenchConfig } from "./bench_common.ts";

const SECRET = "bench-service-webhook-secret";
const BURST = 200;
const spawnOnline = "github_runner_spawn_online_seconds";
const LOG = join(ROOT, ".cache/bench-service.log"); // the services' own log lines: the evidence behind any surprise

const { values } = parseArgs({
  options: {
    runners: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    "steady-seconds": { type: "string", default: "60" },
  },
});
const N = whole(values.runners, "--runners"),
  R = whole(values.rounds, "--rounds"),
  S = whole(values["steady-seconds"], "--steady-seconds");
const COMMAND = ["deno run -A scripts/bench_service.ts", ...Deno.args].join(" ");

// Ctrl-C aborts every wait, so the finally below still stops the child and removes every instance.
const stop = new AbortController();
Deno.addSignalListener("SIGINT", () => stop.abort());
const num = (x: number) => isNaN(x) ? "—" : String(Math.round(x * 10) / 10);

/** A port free right now on 127.0.0.1, for the service's `listen`. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  l.close();
  return l.addr.port;
}

interface Service {
  url: string;
  exited: boolean;
  /** SIGTERM, then the exit code; SIGKILL (reported as such) when it has not exited within 60 s. */
  stop(): Promise<number | string>;
}

/** Starts `run` with its own config file, and waits for /readyz: the first pass (spawning N runners) is over. */
async function startService(phase: string, watchInterval: string): Promise<Service> {
  const url = `http://127.0.0.1:${freePort()}`;
  const file = join(tmp, `${phase}.toml`);
  writeBenchConfig(file, { prefix, tmp, socketPath }, fake.url, {
    "state-dir": join(tmp, "state"),
    containers: N,
    "check-interval": "30m",
    "watch-interval": watchInterval,
    listen: url.slice("http://".length),
    "webhook-secret": SECRET, // in the file, never on a command line
  });
  const child = new Deno.Command(bin, {
    args: ["run", "-c", file],
    env: { GITHUB_TOKEN: fake.token, NO_COLOR: "1" }, // the token never goes on a command line
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Drained continuously: a full pipe would block the service's logging, and so the service.
  const drain = (s: ReadableStream<Uint8Array>) =>
    s.pipeThrough(new TextDecoderStream()).pipeTo(new WritableStream({ write: (t) => appendFileSync(LOG, t) }));
  appendFileSync(LOG, `---- ${phase}: watch-interval ${watchInterval}\n`);
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]).catch(() => {});
  const svc: Service = {
    url,
    exited: false,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* it has exited meanwhile */ }
      // No race: `exited` is set as soon as the status resolves, before any timer can run.
      const timer = setTimeout(() => svc.exited || child.kill("SIGKILL"), 60_000);
      const status = await child.status;
      clearTimeout(timer);
      await drained;
      return status.signal ? `killed by ${status.signal}` : status.code;
    },
  };
  void child.status.then(() => svc.exited = true);
  service = svc;
  await until("/readyz 200 (first pass done)", 180_000, async () => {
    const r = await fetch(`${url}/readyz`).catch(() => undefined);
    await r?.body?.cancel();
    return r?.status === 200;
  }, 100);
  return svc;
}

/** Waits `t` ms, as `until` does: Ctrl-C or the service's death end it early. */
const pause = (what: string, t: number) => {
  const start = performance.now();
  return until(what, t + 5_000, () => performance.now() - start >= t, 100);
};

/** Polls `p` until it holds; throws after `timeoutMs`, on Ctrl-C, or when the service has died. */
const until = (what: string, timeoutMs: number, p: () => boolean | Promise<boolean>, intervalMs = 10) =>
  fake.waitFor(() => {
    if (stop.signal.aborted) throw new Error("interrupted");
    if (service?.exited) throw new Error(`the service exited while waiting for ${what}: see ${LOG}`);
    return p();
  }, { timeoutMs, intervalMs, what });

let jobId = 0;
/** A signed workflow_job delivery, as GitHub sends it; resolves to the HTTP status. */
async function deliver(url: string, action: string, runnerName: string | null): Promise<number> {
  const job = { id: ++jobId, run_id: 1, labels: ["self-hosted"], runner_name: runnerName };
  const body = JSON.stringify({ action, workflow_job: { ...job, created_at: new Date().toISOString() } });
  const sig = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const headers = { "x-github-event": "workflow_job", "x-hub-signature-256": sig, "content-type": "application/json" };
  const r = await fetch(`${url}/webhook`, { method: "POST", headers, body, signal: AbortSignal.timeout(30_000) });
  await r.body?.cancel();
  return r.status;
}

/** A sample of a metric family from /metrics, summed over its labels (one family, so no parser is needed). */
async function scrape(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** passes_total once as many passes ended (the metric) as began (/healthz), for 1 s: triggers start passes at once. */
async function settledPasses(url: string): Promise<number> {
  let [done, last, since] = [NaN, NaN, Date.now()];
  await until("the passes to settle", 120_000, async () => {
    done = await scrape(url, "github_runner_passes_total");
    const started = (await (await fetch(`${url}/healthz`)).json()).passes as number;
    if (done !== last || started !== done) [last, since] = [done, Date.now()];
    return Date.now() - since >= 1000;
  }, 100);
  return done;
}

const ours = (name: string) => name.startsWith(`${prefix}-`);
const idle = () => fake.runners().filter((r) => ours(r.name) && r.status === "online" && !r.busy).map((r) => r.name);

/** One runner takes a job; t0 = the fake shows it busy; t1 = a runner not seen before is online. Returns t1 - t0. */
async function replenish(svc: Service, webhook: boolean): Promise<number> {
  await until(`${N} idle runners`, 180_000, () => idle().length >= N, 50);
  const known = new Set(fake.runners().map((r) => r.name));
  const [taken] = idle();
  fake.assignJob(taken, { seconds: 3600 }); // busy until the phase ends: the replacement is the only change
  await until(`${taken} busy`, 30_000, () => fake.runners().some((r) => r.name === taken && r.busy), 5);
  const t0 = performance.now();
  if (webhook) {
    const status = await deliver(svc.url, "in_progress", taken);
    if (status !== 202) throw new Error(`the in_progress delivery got ${status}, not 202`);
  }
  const fresh = () => fake.runners().some((r) => ours(r.name) && !known.has(r.name) && r.status === "online");
  await until("a replacement online", 180_000, fresh, 5);
  return performance.now() - t0;
}

/** The floor: the same image launched (create + start, ephemeral) by lib/lxd.ts; removed untimed. */
async function floor(name: string): Promise<number> {
  const t = performance.now();
  await lxd.createInstance({ name, type: "container", image: IMAGE, ephemeral: true, start: true });
  const d = performance.now() - t;
  await lxd.deleteInstance(name);
  return d;
}

/** 1, 2, 3: R rounds of replenish, each followed by the floor (not an owned name: the service never touches it). */
async function replenishPhase(phase: "webhook" | "watch", watchInterval: string): Promise<Service> {
  const svc = await startService(phase, watchInterval);
  for (let r = 0; r < R; r++) {
    const counted = fake.counted;
    add(phase, await replenish(svc, phase === "webhook"));
    add(`${phase}Counted`, fake.counted - counted);
    add(`${phase}Floor`, await floor(`${prefix}-floor-${phase}${r}`));
    progress(`${phase} round ${r + 1}/${R}: replenish ${ms(s[phase].at(-1)!)}, LXD ${ms(s[`${phase}Floor`].at(-1)!)}`);
  }
  // The service's own creation → online histogram, held against what was measured from outside: it records a
  // runner's age when a pass or watch first sees it online, so it can be no finer than the gap between those.
  const [sum, count] = await Promise.all(["sum", "count"].map((x) => scrape(svc.url, `${spawnOnline}_${x}`)));
  add(`${phase}Metric`, sum / count * 1000);
  add(`${phase}MetricCount`, count);
  return svc;
}

/** Deletes every instance of the prefix: the service's runners and any floor instance a failure left behind. */
async function removeOurs(): Promise<void> {
  const all = await lxd.listInstances().catch((e) => (progress(`cannot list instances to clean up: ${e.message}`), []));
  const left = all.filter((i) => ours(i.name));
  await Promise.all(left.map((i) => lxd.deleteInstance(i.name).catch((e) => progress(`cannot delete: ${e.message}`))));
}

/** Stops the service, removes every instance of the prefix, swaps the fake: the next phase starts from nothing. */
async function teardown(phase: string): Promise<void> {
  if (service) exits[phase] = await service.stop();
  service = undefined;
  await removeOurs();
  violations += fake.violations.length; // exchanges of the binary's that GitHub's OpenAPI description does not allow
  await fake.close();
  fake = await FakeGithub.start({ hostname: bridge! });
}

// ---- set-up ----------------------------------------------------------------------------------------------------
const binaryState = ensureBinary();
const { bridge, socketPath, lxd, prefix, tmp, bin } = await benchHost("bsvc");
mkdirSync(join(ROOT, ".cache"), { recursive: true });
writeFileSync(LOG, "");
let fake = await FakeGithub.start({ hostname: bridge });
let service: Service | undefined;
const exits: Record<string, number | string> = {};
let violations = 0;
const s: Record<string, number[]> = {};
const add = (key: string, x: number) => (s[key] ??= []).push(x);
const steady: Record<string, number> = {}; // the steady window's figures: absent (NaN, shown as —) until measured
let lxdVersion = "?";
const load0 = loadavg()[0];

try {
  lxdVersion = (await lxd.server({ signal: stop.signal })).serverVersion;
  if (!(await lxd.imageExists(IMAGE))) throw new Error(`No LXD image "${IMAGE}": run scripts/lxd-test-host.sh first`);

  // ---- 1 + 5. webhook only: replenish, then 1 delivery vs a burst -------------------------------------------------
  const svc = await replenishPhase("webhook", "30m");
  for (let r = 0; r < R; r++) {
    let before = await settledPasses(svc.url);
    let t = performance.now();
    if ((await deliver(svc.url, "queued", null)) !== 202) throw new Error("a queued delivery was not accepted");
    add("oneAnswer", performance.now() - t);
    add("one", await settledPasses(svc.url) - before);
    before = await settledPasses(svc.url);
    t = performance.now();
    const answers = await Promise.all(Array.from({ length: BURST }, () => deliver(svc.url, "queued", null)));
    add("burstAnswer", (performance.now() - t) / BURST);
    const refused = answers.filter((a) => a !== 202).length;
    if (refused) throw new Error(`${refused} of ${BURST} deliveries were not accepted`);
    add("burst", await settledPasses(svc.url) - before);
    progress(`burst round ${r + 1}/${R}: 1 delivery -> ${s.one.at(-1)} pass(es), ${BURST} -> ${s.burst.at(-1)}`);
  }
  await teardown("webhook");

  // ---- 2. watch only --------------------------------------------------------------------------------------------
  await replenishPhase("watch", "2s");
  await teardown("watch");

  // ---- 4. steady state: N idle runners and nothing happening ----------------------------------------------------
  const quiet = await startService("steady", "5s");
  await until(`${N} idle runners`, 180_000, () => idle().length >= N, 50);
  // Two watch intervals: the one watch that sees the runners come online (a 200) happens before the window.
  await pause("settling", 10_000);
  const passes0 = await scrape(quiet.url, "github_runner_passes_total");
  const notModified0 = await scrape(quiet.url, "github_runner_github_not_modified_total");
  const [counted0, requests0, t0] = [fake.counted, fake.requests.length, performance.now()];
  progress(`steady: ${N} idle, measuring for ${S} s`);
  await pause("the steady window", S * 1000);
  steady.seconds = (performance.now() - t0) / 1000;
  steady.counted = fake.counted - counted0;
  steady.total = fake.requests.length - requests0;
  steady.conditional = fake.requests.slice(requests0).filter((q) => q.hadIfNoneMatch).length;
  steady.passesEnd = await scrape(quiet.url, "github_runner_passes_total"); // at the end, as a scrape would see it
  steady.notModifiedEnd = await scrape(quiet.url, "github_runner_github_not_modified_total");
  [steady.passes, steady.notModified] = [steady.passesEnd - passes0, steady.notModifiedEnd - notModified0];
  await teardown("steady");
} finally {
  if (service && !service.exited) await service.stop().catch(() => {});
  await removeOurs();
  // The service fenced its runners on a bridge of its own (network-policy is on by default).
  await removeRunnerNetwork(socketPath, defaultNetwork(prefix)).catch((e) => progress(`cannot remove: ${e.message}`));
  await fake.close().catch(() => {});
  await rm(tmp, { recursive: true, force: true });
}

// ---- report ----------------------------------------------------------------------------------------------------
const m = (key: string) => median(s[key] ?? []);
const rows: string[] = [];
const row = (figure: string, a: number, baseline: string, b: number, fmt = ms) =>
  rows.push(
    `| ${figure} | ${fmt(a)} | ${baseline} | ${fmt(b)} | ${b > 0 && a >= 0 ? `${(a / b).toFixed(2)}×` : "—"} |`,
  );
const hour = (x: number) => x * 3600 / steady.seconds;
const [launch, st] = [`LXD launch, same rounds (n=${R})`, "steady:"];
row(`replenish, webhook only: busy → replacement online (n=${R})`, m("webhook"), launch, m("webhookFloor"));
row(`replenish, watch only, watch-interval 2 s (n=${R})`, m("watch"), launch, m("watchFloor"));
row("replenish: watch − webhook (medians)", m("watch") - m("webhook"), "half the watch-interval (mean wait)", 1000);
for (const phase of ["webhook", "watch"]) {
  const figure = `\`${spawnOnline}\` mean, ${phase} phase (the service's own, n=${m(`${phase}MetricCount`)})`;
  row(figure, m(`${phase}Metric`), `replenish measured here, ${phase} (median)`, m(phase));
}
row("replenish: counted GitHub requests, webhook", m("webhookCounted"), "the same, watch", m("watchCounted"), num);
const window = `${num(steady.counted)} in ${num(steady.seconds)} s`;
row(`${st} counted GitHub requests / hour (${window})`, hour(steady.counted), "GitHub's limit / hour", 5000, num);
const all = `${num(steady.total)}, ${num(steady.conditional)} conditional`;
row(`${st} all GitHub requests / hour (${all})`, hour(steady.total), "one poll per 5 s watch-interval", 720, num);
const nm = `\`github_runner_github_not_modified_total\` in the window (${num(steady.notModifiedEnd)} at the end)`;
row(`${st} ${nm}`, steady.notModified, "watch polls in the window", steady.seconds / 5, num);
const passes = `\`github_runner_passes_total\` in the window (${num(steady.passesEnd)} at the end)`;
row(`${st} ${passes}`, steady.passes, "ideal", 0, num);
row(`burst: passes after ${BURST} webhooks at once (n=${R})`, m("burst"), "passes after 1 webhook", m("one"), num);
row(`burst: ${BURST} deliveries answered 202: wall / ${BURST}`, m("burstAnswer"), "1 delivery alone", m("oneAnswer"));
const exitText = Object.entries(exits).map(([k, v]) => `${k} ${v}`).join(", ");
const md = `## Service benchmark: ${N} runners, ${R} rounds, ${S} s steady window

- command: \`${COMMAND}\`; binary ${binaryState}
- ${new Date().toISOString()}; ${cpus().length} CPUs, kernel ${release()}, LXD ${lxdVersion}, image \`${IMAGE}\`; \
load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end
- check-interval 30m in every phase; exit codes after SIGTERM: ${exitText}; OpenAPI violations: ${violations}

| figure | median | baseline | baseline median | ratio |
|---|---|---|---|---|
${rows.join("\n")}
`;
console.log(md);
writeFileSync(join(ROOT, ".cache/bench-service.md"), md);
if (Object.values(exits).some((c) => c !== 0)) {
  progress(`the service did not exit 0 on SIGTERM: ${exitText}; its logs: ${LOG}`);
  Deno.exit(1);
}
