/**
 * Benchmark, not a test: the pool under churn (tests/integration/churn.ts) at a few arrival rates against the pool
 * size, with the `run` service kept by its watch (and, with --driver, by webhooks or by passes after every change).
 *   deno run -A scripts/bench_churn.ts [--target 3] [--seconds 90] [--rates 1,3,6] [--driver watch] [--seed N]
 * A rate is jobs per minute per pool runner: 1 with a target of 3 is 3 jobs a minute, in singles and bursts. Jobs
 * last 2-20 s, so a runner can take at most about 5 a minute: 6 is more work than the pool, and jobs queue.
 * Figures per rate: the share of jobs that found an idle runner waiting, time below target per hour (and per job
 * start, beside LXD's own create+start of one instance measured in the same run: the least a replacement can take),
 * runner-minutes of idle surplus per hour, counted GitHub requests per hour. The run is also judged as the churn test
 * judges it; a finding fails the benchmark. Prints markdown (also to .cache/bench-churn.md).
 */
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { type Bed, openBed } from "../tests/integration/harness.ts";
import { churn, type Driver, judge } from "../tests/integration/churn.ts";
import { LONG, SECRET, type Service, startService } from "../tests/integration/service_bed.ts";
import { TEST_IMAGE } from "../tests/integration/harness.ts";
import { median, ms, progress, ROOT, whole } from "./bench_common.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "3" },
    seconds: { type: "string", default: "90" },
    rates: { type: "string", default: "1,3,6" },
    driver: { type: "string", default: "watch" },
    seed: { type: "string", default: "1" },
  },
});
const TARGET = whole(values.target, "--target");
const SECONDS = whole(values.seconds, "--seconds");
const SEED = whole(values.seed, "--seed");
const RATES = values.rates.split(",").map((r) => {
  const x = Number(r);
  if (!(x > 0)) throw new Error(`--rates takes positive numbers, got "${r}"`);
  return x;
});
const DRIVER = values.driver as Driver;
if (!["watch", "webhooks", "passes"].includes(DRIVER)) throw new Error(`--driver is watch, webhooks or passes`);
const COMMAND = ["deno run -A scripts/bench_churn.ts", ...Deno.args].join(" ");

const rows: string[] = [];
const load0 = loadavg()[0];
for (const [i, rate] of RATES.entries()) {
  let svc: Service | undefined;
  let bed: Bed;
  if (DRIVER === "passes") bed = await openBed({ containers: TARGET });
  else {
    const timing = DRIVER === "watch"
      ? { "check-interval": LONG, "watch-interval": "1s" }
      : { "check-interval": LONG, "watch-interval": LONG };
    svc = await startService({ containers: TARGET, ...timing }, SECRET);
    bed = svc.bed;
  }
  try {
    if (DRIVER === "passes") await bed.pass();
    await bed.fake.waitFor(
      () => bed.fake.runners().filter((r) => r.name.startsWith(bed.prefix) && r.status === "online").length >= TARGET,
      { timeoutMs: 120_000, what: `${TARGET} runners online` },
    );
    // The least a replacement can take: LXD creating and starting one instance of the image, sampled during the run.
    const floor: number[] = [];
    const sampleFloor = async () => {
      const name = `${bed.prefix}-floor${floor.length}`; // not an owned name: the manager never touches it
      const t = performance.now();
      await bed.lxd.createInstance({ name, type: "container", image: TEST_IMAGE, ephemeral: true, start: true });
      floor.push(performance.now() - t);
      await bed.lxd.deleteInstance(name);
    };
    await sampleFloor();
    let lastFloor = Date.now();
    const shape = {
      seed: SEED + i,
      target: TARGET,
      arrivalsMs: SECONDS * 1000,
      meanGapMs: 60_000 / (rate * TARGET) * 1.6, // bursts average 1.6x a single arrival's jobs at burstShare 0.4
      burstShare: 0.4,
      jobSeconds: [2, 20] as [number, number],
    };
    const run = await churn(bed, shape, {
      driver: DRIVER,
      serviceUrl: svc?.url,
      onTick: () => {
        if (Date.now() - lastFloor > 15_000) {
          lastFloor = Date.now();
          void sampleFloor().catch((e) => progress(`floor sample failed: ${e.message}`));
        }
      },
    });
    const findings = judge(bed, run, bed.fake.history, TARGET);
    if (findings.length) throw new Error(`the churn run broke a rule (seed ${shape.seed}): ${findings.join("; ")}`);
    const hours = (run.endedAt - run.startedAt) / 3_600_000;
    const starts = run.jobs.filter((j) => j.startedAt !== undefined).length;
    const perHour = (x: number) => (x / hours).toFixed(0);
    const belowPerStart = run.belowTargetMs / Math.max(1, starts);
    const lxdFloor = median(floor);
    rows.push(
      `| ${rate} (${(rate * TARGET).toFixed(1)}/min) | ${run.jobs.length} | ` +
        `${(100 * run.foundIdle / Math.max(1, run.jobs.length)).toFixed(0)}% | ` +
        `${(run.belowTargetMs / 60_000 / hours).toFixed(1)} min | ${ms(belowPerStart)} | ${ms(lxdFloor)} | ` +
        `${(belowPerStart / lxdFloor).toFixed(2)}× | ${(run.wastedMs / 60_000 / hours).toFixed(1)} | ` +
        `${perHour(run.counted)} |`,
    );
    progress(`rate ${rate}: ${run.jobs.length} jobs, ${run.foundIdle} found an idle runner`);
  } finally {
    if (svc) await svc.stop();
    else await bed.close();
  }
}

const md = `## Churn benchmark: target ${TARGET}, ${SECONDS} s of arrivals per rate, driver "${DRIVER}"

- command: \`${COMMAND}\`; image \`${TEST_IMAGE}\`; jobs of 2-20 s, 40% of arrivals bursts of 2..${TARGET}
- ${new Date().toISOString()}; ${cpus().length} CPUs; load average ${load0.toFixed(2)} at start, \
${loadavg()[0].toFixed(2)} at end

| jobs per pool runner per minute | jobs | found an idle runner | below target per hour | below target per job start | LXD create+start of 1 | ratio | idle-surplus runner-min per hour | counted GitHub requests per hour |
|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
console.log(md);
mkdirSync(join(ROOT, ".cache"), { recursive: true });
writeFileSync(join(ROOT, ".cache/bench-churn.md"), md);
