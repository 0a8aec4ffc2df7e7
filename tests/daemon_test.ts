/** The single-flight pass runner: passes never overlap, and a burst of triggers costs a handful of passes. */
import assert from "node:assert/strict";
import { Daemon, SingleFlight } from "../lib/daemon.ts";
import type { PassReport } from "../lib/reconcile.ts";
import { countBuckets } from "../lib/classify.ts";

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

Deno.test("single flight: 200 triggers during a pass coalesce into ONE follow-up pass", async () => {
  let running = 0, maxRunning = 0;
  const reasons: string[] = [];
  let g = gate();
  const flight = new SingleFlight(async (reason) => {
    reasons.push(reason);
    running++;
    maxRunning = Math.max(maxRunning, running);
    await g.opened;
    running--;
  });
  const first = flight.trigger("first");
  const burst = Array.from({ length: 200 }, (_, i) => flight.trigger(`webhook ${i}`));
  const firstGate = g;
  g = gate();
  firstGate.open();
  g.open();
  await Promise.all([first, ...burst]);
  await flight.idle();
  assert.deepEqual(reasons, ["first", "webhook 0"]);
  assert.equal(maxRunning, 1);
  assert.equal(flight.passes, 2);
});

Deno.test("single flight: a trigger after the pass ends starts a new one; a failing pass does not wedge it", async () => {
  let n = 0;
  const flight = new SingleFlight(() => {
    n++;
    return n === 1 ? Promise.reject(new Error("boom")) : Promise.resolve();
  });
  await assert.rejects(flight.trigger("a"), /boom/);
  assert.equal(flight.busy, false);
  await flight.trigger("b");
  assert.equal(n, 2);
});

const report = (error?: string): PassReport => ({
  startedAt: "",
  durationMs: 1,
  prefix: "p",
  target: { containers: 1, virtualMachines: 0, maxRunners: 0 },
  before: countBuckets([]),
  runners: [],
  results: [],
  problems: [],
  ok: !error,
  error,
});

Deno.test("daemon: a watch that finds work triggers a pass; stop lets the pass in flight finish", async () => {
  const reasons: string[] = [];
  let watches = 0;
  let now = 0;
  const inFlight = gate();
  const daemon = new Daemon({
    pass: async (reason) => {
      reasons.push(reason);
      if (reason === "watch") await inFlight.opened;
      return report();
    },
    watch: () => Promise.resolve(++watches === 2),
    clock: () => now,
    // Time is a parameter: sleeps resolve on the next tick, so intervals cost no wall-clock time.
    sleep: (_ms, signal) => new Promise((r) => signal.aborted ? r() : setTimeout(r, 1)),
  }, { checkIntervalMs: 60_000, watchIntervalMs: 1 });
  const running = daemon.run();
  while (!reasons.includes("watch")) await new Promise((r) => setTimeout(r, 1));
  daemon.stop();
  let finished = false;
  void running.then(() => (finished = true));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(finished, false, "run() waits for the pass in flight");
  inFlight.open();
  await running;
  assert.equal(reasons[0], "interval", "the first pass runs at start");
  now = 1;
  assert.equal(daemon.health(now).alive, false, "a stopped daemon is not alive");
});

Deno.test("daemon: health is alive within a few intervals of the last pass, ready after a clean pass", async () => {
  let now = 1_000_000;
  const daemon = new Daemon({
    pass: () => Promise.resolve(report()),
    watch: () => Promise.resolve(false),
    clock: () => now,
    sleep: (_ms, signal) => new Promise((r) => (signal.aborted ? r() : signal.addEventListener("abort", () => r()))),
  }, { checkIntervalMs: 60_000, watchIntervalMs: 5_000 });
  assert.equal(daemon.health(now).ready, false);
  const running = daemon.run();
  while (daemon.health(now).detail.passes === 0 || daemon.health(now).detail.lastPassEnd === null) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.deepEqual([daemon.health(now).alive, daemon.health(now).ready], [true, true]);
  now += 3 * 60_000 + 15 * 60_000 + 1;
  assert.equal(daemon.health(now).alive, false, "no pass for too long: not alive");
  daemon.stop();
  await running;
});

Deno.test("daemon: after failed passes the watch backs off exponentially, up to check-interval", async () => {
  const now = 0;
  let ok = false;
  const daemon = new Daemon({
    pass: () => Promise.resolve(report(ok ? undefined : "LXD refused")),
    watch: () => Promise.resolve(true),
    clock: () => now,
    sleep: (_ms, signal) => new Promise((r) => (signal.aborted ? r() : signal.addEventListener("abort", () => r()))),
  }, { checkIntervalMs: 60_000, watchIntervalMs: 5_000 });
  const running = daemon.run(); // the first pass fails
  while (daemon.health(now).detail.lastPassEnd === null) await new Promise((r) => setTimeout(r, 1));
  assert.equal(daemon.backoffUntil(), 10_000, "one failure: twice the watch interval");
  daemon.trigger("webhook"); // webhooks are not held back; this one fails too
  while (daemon.health(now).detail.passes !== 2) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 1));
  assert.equal(daemon.backoffUntil(), 20_000, "two failures: four times");
  for (let i = 0; i < 5; i++) daemon.trigger("webhook");
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(daemon.backoffUntil(), 60_000, "capped at check-interval");
  ok = true;
  daemon.trigger("webhook");
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(daemon.backoffUntil(), 0, "a clean pass ends the back-off");
  daemon.stop();
  await running;
});
