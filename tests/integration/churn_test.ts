/**
 * The pool under churn (tests/integration/churn.ts), judged continuously from GitHub's own record: every job runs to
 * its end, no idle runner is removed while the pool is at or below its target, every pass refills the pool, and at
 * the end nothing is left behind. Short runs (about 15 s of arrivals each) of the three drivers. The seed comes from
 * GITHUB_RUNNER_CHURN_SEED when set, so a failure is replayed exactly: the seed is in every failure message.
 */
import assert from "node:assert/strict";
import { type Bed, openBed, ownRunners } from "./harness.ts";
import { churn, type ChurnShape, type Driver, judge } from "./churn.ts";
import { LONG, SECRET, startService } from "./service_bed.ts";

const SEED = Number(Deno.env.get("GITHUB_RUNNER_CHURN_SEED") ?? 20261130);
const shape = (seed: number): ChurnShape => ({
  seed,
  target: 3,
  arrivalsMs: 15_000,
  meanGapMs: 2_000,
  burstShare: 0.5,
  jobSeconds: [1, 4],
});

async function drain(bed: Bed): Promise<void> {
  bed.reconfigure({ containers: 0 });
  await bed.fake.waitFor(async () => {
    await bed.pass();
    const own = await ownRunners(bed);
    return own.instances.length === 0 && own.registered.length === 0;
  }, { timeoutMs: 60_000, intervalMs: 500, what: "every instance and registration of the prefix gone" });
}

function check(bed: Bed, driver: Driver, seed: number, run: Awaited<ReturnType<typeof churn>>) {
  const found = judge(bed, run, bed.fake.history, 3);
  const jobs = `${run.jobs.length} jobs, ${run.foundIdle} found an idle runner`;
  assert.deepEqual(found, [], `churn (${driver}, seed ${seed}, ${jobs}): ${found.join("; ")}`);
  assert.ok(run.jobs.length >= 5, `seed ${seed} made only ${run.jobs.length} jobs: the run tested little`);
  assert.deepEqual(bed.fake.violations, []);
}

Deno.test(`churn: reconcile passes right after every change hold the pool (seed ${SEED})`, async () => {
  const bed = await openBed({ containers: 3 });
  try {
    await bed.pass();
    const run = await churn(bed, shape(SEED), { driver: "passes" });
    assert.ok(run.passes.length >= 5, `only ${run.passes.length} passes ran`);
    check(bed, "passes", SEED, run);
    await drain(bed);
  } finally {
    await bed.close();
  }
});

for (const driver of ["webhooks", "watch"] as const) {
  Deno.test(`churn: the run service woken by ${driver} holds the pool (seed ${SEED + 1})`, async () => {
    const timing = driver === "watch"
      ? { "check-interval": LONG, "watch-interval": "1s" }
      : { "check-interval": LONG, "watch-interval": LONG };
    const svc = await startService({ containers: 3, ...timing }, SECRET);
    let stopped = false;
    try {
      const run = await churn(svc.bed, shape(SEED + 1), { driver, serviceUrl: svc.url });
      check(svc.bed, driver, SEED + 1, run);
      assert.equal(await svc.stop({ keepBed: true }), 0);
      stopped = true;
      await drain(svc.bed);
    } finally {
      if (!stopped) await svc.stop();
      else await svc.bed.close();
    }
  });
}
