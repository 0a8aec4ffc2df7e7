/**
 * Cleanup in one pass against the real LXD and the fake GitHub: leftovers of our prefix go (offline registrations
 * without an instance, stopped instances, instances whose runner never came online within boot-timeout), while
 * everything of another prefix, or of a prefix that merely extends ours, is left exactly as it was. Each step
 * asserts what GitHub (the fake) and LXD hold afterwards.
 */
import assert from "node:assert/strict";
import { idleRunners, openBed, ownRunners, summary } from "./harness.ts";

const WAIT = { timeoutMs: 60_000 };

Deno.test("cleanup: our leftovers go, other prefixes' runners and instances stay", async () => {
  const bed = await openBed({ containers: 1 });
  try {
    const { fake, prefix } = bed;
    // "acme-1-0a1b2c3d" belongs to prefix "acme-1", never to "acme" (lib/names.ts).
    const extended = bed.newName(`${prefix}-1`);
    const other = bed.newName(`${prefix}x`);
    const orphan = bed.newName();
    const vanishing = bed.newName();
    fake.addRunner({ name: orphan, status: "offline", busy: false });
    fake.addRunner({ name: vanishing, status: "online", busy: false });
    fake.addRunner({ name: other, status: "offline", busy: false });
    fake.addRunner({ name: extended, status: "offline", busy: false });

    // Stopped instances would be deleted if they were ours: each lacks one part of ownership.
    const foreign = bed.newName(`${prefix}x`);
    const extendedInstance = bed.newName(`${prefix}-1`);
    const unmarked = bed.newName();
    const stopped = bed.newName();
    // Running, ours, but without a registration or a runner id: what an older version's spawn that died left.
    const legacy = bed.newName();
    await Promise.all([
      bed.createInstance({ name: foreign, owner: `${prefix}x`, start: false }),
      bed.createInstance({ name: extendedInstance, owner: `${prefix}-1`, start: false }),
      bed.createInstance({ name: unmarked, start: false }),
      bed.createInstance({ name: stopped, owner: prefix, start: false }),
      bed.createInstance({ name: legacy, owner: prefix, start: true }),
    ]);
    assert.deepEqual(await ownRunners(bed), {
      registered: [orphan, vanishing].sort(),
      instances: [legacy, stopped].sort(),
    });

    const report = await bed.pass();
    assert.deepEqual(summary(report), [
      "create container: done",
      "remove orphan-registration: done",
      "remove stopped: done",
      "remove unregistered: done",
    ]);
    assert.equal(report.ok, true);
    assert.equal(report.before.vanishing, 1, "an online registration without instance waits to read offline");

    const registered = new Set(fake.runners().map((r) => r.name));
    assert.ok(!registered.has(orphan), "our offline registration without an instance was deregistered");
    for (const name of [vanishing, other, extended]) assert.ok(registered.has(name), `${name} was left registered`);
    const lxd = new Map((await bed.lxd.listInstances()).map((i) => [i.name, i.status]));
    assert.equal(lxd.has(stopped), false, "our stopped instance was deleted");
    assert.equal(lxd.has(legacy), false, "our instance without a registration was deleted");
    for (const name of [foreign, extendedInstance, unmarked]) {
      assert.equal(lxd.get(name), "Stopped", `${name} untouched`);
    }

    const [replacement] = report.results.filter((r) => r.action.kind === "create").map((r) => r.name!);
    assert.equal(lxd.get(replacement), "Running");
    await fake.waitFor(() => idleRunners(bed).includes(replacement), { ...WAIT, what: "the replacement online" });
    assert.deepEqual(await ownRunners(bed), { registered: [replacement, vanishing].sort(), instances: [replacement] });
    assert.deepEqual(fake.violations, []);
  } finally {
    await bed.close();
  }
});

Deno.test("cleanup: an instance whose runner never comes online is kept until boot-timeout, then replaced", async (t) => {
  let offset = 0;
  const bed = await openBed({ containers: 1, "boot-timeout": "10m" }, { clock: () => Date.now() + offset });
  try {
    // Ours by name and marks, registered (offline) as a spawn leaves it, running, but nothing inside will ever
    // connect: a failed boot.
    const stuck = bed.newName();
    const { id } = bed.fake.addRunner({ name: stuck, status: "offline", busy: false, ephemeral: true });
    await bed.createInstance({ name: stuck, owner: bed.prefix, runnerId: id, start: true, ephemeral: true });

    await t.step("young: booting, it counts toward the target, so nothing is created or removed", async () => {
      const report = await bed.pass();
      assert.deepEqual(summary(report), []);
      assert.equal(report.before.booting, 1);
      assert.deepEqual([...(await bed.instances()).entries()], [[stuck, "Running"]]);
    });

    await t.step("a minute before boot-timeout: still kept", async () => {
      offset = 9 * 60_000;
      const report = await bed.pass();
      assert.deepEqual(summary(report), []);
      assert.deepEqual([...(await bed.instances()).entries()], [[stuck, "Running"]]);
    });

    await t.step("past boot-timeout: deleted and replaced by a runner that comes online", async () => {
      offset = 10 * 60_000 + 1_000;
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["create container: done", "remove boot-timeout: done"]);
      assert.equal(report.before["boot-timeout"], 1);
      const instances = await bed.instances();
      assert.equal(instances.has(stuck), false, "the stuck instance was deleted");
      const [replacement] = report.results.filter((r) => r.action.kind === "create").map((r) => r.name!);
      assert.deepEqual([...instances.entries()], [[replacement, "Running"]]);
      await bed.fake.waitFor(() => idleRunners(bed).includes(replacement), { ...WAIT, what: "the replacement online" });
      assert.deepEqual(await ownRunners(bed), { registered: [replacement], instances: [replacement] });
    });

    await t.step("back to the real time: the replacement is idle, nothing to do", async () => {
      offset = 0;
      const report = await bed.pass();
      assert.deepEqual(summary(report), []);
      assert.equal(report.before.idle, 1);
    });
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});
