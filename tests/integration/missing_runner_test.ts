/**
 * A busy runner that GitHub's list failed to show (pages shift while read) must not lose its instance: before
 * deleting an instance the list showed no registration for, the pass asks GitHub by name.
 */
import assert from "node:assert/strict";
import { idleRunners, openBed, summary } from "./harness.ts";
import { FINISHED_GRACE_MS } from "../../lib/reconcile.ts";

Deno.test("a busy runner missing from the list keeps its instance", async () => {
  let offset = 0;
  const bed = await openBed({ containers: 1 }, { clock: () => Date.now() + offset });
  try {
    await bed.pass();
    await bed.fake.waitFor(() => idleRunners(bed).length === 1, { timeoutMs: 60_000, what: "1 idle runner" });
    const [name] = idleRunners(bed);
    bed.fake.assignJob(name, { seconds: 60 });
    await bed.fake.waitFor((f) => f.runners().some((r) => r.name === name && r.busy), {
      timeoutMs: 30_000,
      what: "busy",
    });

    // The list misses it: the planner sees a registration gone, i.e. a finished runner. The first pass marks it.
    const missing = () =>
      bed.fake.injectFailure({
        method: "GET",
        pathIncludes: "/actions/runners",
        status: 200,
        body: { total_count: 0, runners: [] },
      });
    offset = 11 * 60_000;
    missing();
    const first = await bed.pass();
    assert.ok(summary(first).includes("mark finished: done"), summary(first).join(", "));
    assert.ok(!summary(first).some((s) => s.startsWith("remove")), summary(first).join(", "));

    // Past the grace the planner removes it, and the removal asks GitHub by name first: busy, so it is kept.
    offset += FINISHED_GRACE_MS + 1_000;
    missing();
    const report = await bed.pass();
    assert.ok(summary(report).includes("remove finished: kept-busy"), summary(report).join(", "));
    assert.equal((await bed.instances()).get(name), "Running");
    assert.ok(bed.fake.runners().some((r) => r.name === name && r.busy), "the job's runner is still registered");
  } finally {
    await bed.close();
  }
});
