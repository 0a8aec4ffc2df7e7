/**
 * Spawns that fail, on the real LXD with the fake GitHub: a virtual machine on a host without VM support, and
 * GitHub failing generate-jitconfig. A failed spawn leaves nothing behind (or the next pass removes it), and never
 * stops the other spawns of the same pass. Each test asserts what GitHub (the fake) and LXD hold afterwards.
 */
import assert from "node:assert/strict";
import type { PassReport } from "../../lib/reconcile.ts";
import { idleRunners, openBed, ownRunners, summary } from "./harness.ts";

const WAIT = { timeoutMs: 60_000 };
const JIT = "/actions/runners/generate-jitconfig";

/** The runner a failed create was making: spawn errors name it (lib/spawn.ts, SpawnError). */
function failedSpawns(report: PassReport): { name: string; error: string }[] {
  return report.results.filter((r) => r.action.kind === "create" && r.outcome === "failed").map((r) => ({
    name: /Cannot spawn runner "([^"]+)"/.exec(r.error ?? "")?.[1] ?? "(unnamed)",
    error: r.error ?? "",
  }));
}

function created(report: PassReport): string[] {
  return report.results.filter((r) => r.action.kind === "create" && r.outcome === "done").map((r) => r.name!);
}

Deno.test("faults: a virtual machine on a host without VM support fails clearly; the container still comes up", async () => {
  const bed = await openBed({ containers: 1, "virtual-machines": 1 });
  try {
    const types = (await bed.lxd.server()).instanceTypes;
    assert.ok(!types.includes("virtual-machine"), `this test needs a host without VM support (types: ${types})`);

    const report = await bed.pass();
    assert.deepEqual(summary(report), ["create container: done", "create virtual-machine: failed"]);
    assert.equal(report.ok, false);
    const [vm] = failedSpawns(report);
    assert.match(vm.error, /virtual machines are not supported/);

    const [container] = created(report);
    await bed.fake.waitFor(() => idleRunners(bed).includes(container), { ...WAIT, what: "the container online" });
    assert.deepEqual(await ownRunners(bed), { registered: [container], instances: [container] });
    assert.ok(!(await bed.lxd.listInstances()).some((i) => i.name === vm.name), "nothing of the VM is in LXD");

    // The next pass fails the same way and does not make up for the VM with more containers.
    const again = await bed.pass();
    assert.deepEqual(summary(again), ["create virtual-machine: failed"]);
    assert.match(again.results[0].error ?? "", /virtual machines are not supported/);
    assert.deepEqual(await ownRunners(bed), { registered: [container], instances: [container] });
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});

Deno.test("faults: generate-jitconfig fails past the retries: that spawn is cleaned up, the next one succeeds", async () => {
  const bed = await openBed({ containers: 2 }, { retryBaseMs: 10 });
  try {
    // Four 500s: the first try and the retry plugin's three retries of ONE spawn. Spawns run one at a time here,
    // or the two would share the failures and both succeed on a retry.
    bed.fake.injectFailure({ method: "POST", pathIncludes: JIT, status: 500, times: 4 });
    const report = await bed.pass({ concurrency: 1 });
    assert.deepEqual(summary(report), ["create container: done", "create container: failed"]);
    assert.equal(report.ok, false);
    const [failed] = failedSpawns(report);
    assert.match(failed.error, /\(register with GitHub\).*failed with 500/);

    const [ok] = created(report);
    await bed.fake.waitFor(() => idleRunners(bed).includes(ok), { ...WAIT, what: "the other runner online" });
    assert.deepEqual(await ownRunners(bed), { registered: [ok], instances: [ok] }, "the failed spawn left nothing");

    const next = await bed.pass();
    assert.deepEqual(summary(next), ["create container: done"]);
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});

Deno.test("faults: GitHub registers a runner but answers 502, the retry meets 409: the same pass cleans it up", async () => {
  const bed = await openBed({ containers: 2 }, { retryBaseMs: 10 });
  try {
    bed.fake.injectFailure({
      method: "POST",
      pathIncludes: JIT,
      status: 502,
      body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
      commit: true,
    });
    const report = await bed.pass();
    assert.deepEqual(summary(report), ["create container: done", "create container: failed"]);
    const [failed] = failedSpawns(report);
    assert.match(failed.error, /failed with 409/, "the retry met the registration the 502 had made");
    const [ok] = created(report);
    assert.ok(!(await bed.instances()).has(failed.name), "the failed spawn's instance was deleted");
    assert.ok(
      !bed.fake.runners().some((r) => r.name === failed.name),
      "the registration the 502 made was found by name and removed in the same pass",
    );

    // The next pass respawns the missing runner; GitHub and LXD agree.
    const next = await bed.pass();
    assert.equal(next.ok, true);
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
    const own = await ownRunners(bed);
    assert.deepEqual(own.registered, own.instances, "every registration has its instance and vice versa");
    assert.equal(own.instances.length, 2);
    assert.ok(own.instances.includes(ok), "the runner that spawned fine is kept");
    assert.ok(!own.registered.includes(failed.name), `the registration of "${failed.name}" is gone`);
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});
