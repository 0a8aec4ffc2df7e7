/**
 * The charm's hooks and actions making real runners: the packed charm and the compiled binary, two units of one
 * application on this host's real LXD, against the fake GitHub on the LXD bridge. reconcile-runners creates, flush-runners replaces, a path change
 * and stop remove, upgrade-charm flushes idle runners; and neither unit ever touches the other's runners.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { FakeGithub } from "../fakes/github.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { KEY_PREFIX } from "../../lib/names.ts";
import { bridgeAddress, readLxd, TEST_IMAGE } from "../integration/harness.ts";
import { compiledBinary, JujuUnit } from "./juju_unit.ts";
import { defaultNetwork } from "../../lib/config.ts";
import { removeRunnerNetwork } from "../../lib/runner_network.ts";
import { GONE } from "../../lib/lxd_operations.ts";

const WAIT = { timeoutMs: 90_000 };

Deno.test("charm on real LXD: two units reconcile, flush, change path and stop without touching each other", async (t) => {
  const app = `charmtest${crypto.randomUUID().slice(0, 6)}`;
  const fake = await FakeGithub.start({ hostname: bridgeAddress() });
  const socket = detectLxdSocket()!;
  const lxd = new LxdClient({ socketPath: socket });
  const base = { path: "acme", token: fake.token, "github-api-url": fake.url, image: TEST_IMAGE, "lxd-socket": socket };
  const units = [0, 1].map((n) => new JujuUnit({ app, unit: n, config: { ...base, containers: n + 1, listen: "" } }));
  // The compiled binary, as an operator attaches it: what dist/github-runner.charm is deployed with.
  const binary = compiledBinary(units[0].dir);
  for (const u of units) u.writeFixture("resources.json", { "github-runner-binary": binary });
  const [u0, u1] = units;
  /** Instances of one unit (by its prefix and ownership mark), sorted. */
  const instancesOf = async (n: number) =>
    (await lxd.listInstances()).filter((i) => i.userKeys[KEY_PREFIX] === `${app}-${n}`).map((i) => i.name).sort();
  const idleOf = (n: number) =>
    fake.runners().filter((r) => r.name.startsWith(`${app}-${n}-`) && r.status === "online" && !r.busy).length;
  try {
    await t.step("install on the real LXD: checks it, finds the image, starts the service", async () => {
      for (const u of units) {
        const run = await u.hook("install");
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(u.status(), { status: "active", message: "Service started: the first pass is under way" });
      }
    });

    await t.step("reconcile-runners creates each unit's own runners", async () => {
      const r0 = await u0.action("reconcile-runners");
      assert.equal(JujuUnit.failure(r0), undefined, r0.stderr);
      assert.equal(JujuUnit.results(r0)["delta.containers"], "1");
      const r1 = await u1.action("reconcile-runners");
      assert.equal(JujuUnit.results(r1)["delta.containers"], "2", r1.stderr);
      assert.equal((await instancesOf(0)).length, 1);
      assert.equal((await instancesOf(1)).length, 2);
      await fake.waitFor(() => idleOf(0) === 1 && idleOf(1) === 2, { ...WAIT, what: "1 + 2 idle runners" });
    });

    await t.step("check-runners reports only the unit's own runners", async () => {
      const results = JujuUnit.results(await u1.action("check-runners"));
      assert.deepEqual(
        { online: results.online, offline: results.offline, unknown: results.unknown, busy: results.busy },
        { online: "2", offline: "0", unknown: "0", busy: "0" },
      );
      assert.deepEqual(results.runners.split(", ").sort(), await instancesOf(1));
    });

    await t.step("flush-runners on unit 1 replaces its idle runners; unit 0's stays", async () => {
      const before0 = await instancesOf(0), before1 = await instancesOf(1);
      const run = await u1.action("flush-runners");
      const results = JujuUnit.results(run);
      assert.equal(JujuUnit.failure(run), undefined, run.stderr);
      assert.equal(results.flushed, "2");
      assert.equal(results["delta.containers"], "0", "two removed, two created");
      const after1 = await instancesOf(1);
      assert.equal(after1.length, 2);
      assert.ok(after1.every((n) => !before1.includes(n)), "new runners replaced the flushed ones");
      assert.deepEqual(await instancesOf(0), before0);
    });

    await t.step("upgrade-charm flushes unit 0's idle runner and restarts its service", async () => {
      const before1 = await instancesOf(1);
      const run = await u0.hook("upgrade-charm");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await instancesOf(0), []);
      assert.ok(run.calls.some((c) => c.tool === "systemctl" && c.args[0] === "restart"));
      assert.deepEqual(await instancesOf(1), before1);
    });

    await t.step("a new path on unit 1 removes its runners of the old path first", async () => {
      await fake.waitFor(() => idleOf(1) === 2, { ...WAIT, what: "unit 1's runners online" });
      const names = await instancesOf(1);
      u1.setConfig({ ...base, path: "acme-2", containers: 2, listen: "" });
      const run = await u1.hook("config-changed");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await instancesOf(1), []);
      const deregistered = fake.requests.filter((r) => r.method === "DELETE" && r.path.startsWith("/orgs/acme/"));
      assert.equal(deregistered.length >= names.length, true, "deregistered under the old path");
      assert.ok(fake.runners().every((r) => !names.includes(r.name)));
      assert.deepEqual(u1.status(), { status: "active", message: "Service started: the first pass is under way" });
    });

    await t.step(
      "a missing image is built the way `image build` builds; a base it cannot use blocks the unit",
      async () => {
        // The busybox test image has no apt: the recipe fails within seconds, and the unit must say so and clean up.
        const image = `${app}-missing`;
        u1.setConfig({ ...base, path: "acme-2", containers: 2, listen: "", image, "base-image": TEST_IMAGE });
        const run = await u1.hook("config-changed");
        assert.equal(run.code, 0, run.stderr);
        const status = u1.status() ?? { status: "none", message: "" };
        assert.equal(status.status, "blocked");
        assert.match(status.message, new RegExp(`^Cannot build the runner image "${image}": `));
        assert.ok(run.calls.some((c) => c.tool === "status-set" && c.args[1]?.startsWith(`Building the runner image`)));
        const names = (await lxd.listInstances()).map((i) => i.name);
        assert.ok(!names.some((n) => n.startsWith(`${app}-1-image-`)), `no builder or test instance left: ${names}`);
        assert.equal(await lxd.imageExists(image), false, "no unproven image under the alias");
        u1.setConfig({ ...base, path: "acme-2", containers: 2, listen: "" });
        assert.equal((await u1.hook("config-changed")).code, 0);
        assert.deepEqual(u1.status(), { status: "active", message: "Service started: the first pass is under way" });
      },
    );

    await t.step("stop on unit 1 leaves unit 0's runners alone; stop on unit 0 removes them", async () => {
      await u0.action("reconcile-runners");
      const zero = await instancesOf(0);
      assert.equal(zero.length, 1);
      await u1.action("reconcile-runners");
      assert.equal((await instancesOf(1)).length, 2);
      assert.ok(await networkExists(defaultNetwork(`${app}-1`)), "unit 1's runners have their fenced bridge");
      assert.equal((await u1.hook("stop")).code, 0);
      assert.deepEqual(await instancesOf(1), []);
      assert.equal(await networkExists(defaultNetwork(`${app}-1`)), false, "stop removed unit 1's bridge");
      assert.ok(await networkExists(defaultNetwork(`${app}-0`)), "and left unit 0's");
      assert.deepEqual(await instancesOf(0), zero);
      assert.equal((await u0.hook("stop")).code, 0);
      assert.deepEqual(await instancesOf(0), []);
      assert.ok(!existsSync(`${u0.root}/etc/github-runner/${app}-0/config.toml`), "the token file is gone");
    });
    assert.deepEqual(fake.violations, []);
  } finally {
    const left = (await lxd.listInstances()).filter((i) => i.name.startsWith(`${app}-`));
    await Promise.all(left.map((i) => lxd.deleteInstance(i.name).catch(() => {})));
    for (const n of [0, 1]) await removeRunnerNetwork(socket, defaultNetwork(`${app}-${n}`)).catch(() => {});
    for (const u of units) u.close();
    await fake.close();
  }

  async function networkExists(name: string): Promise<boolean> {
    return (await readLxd(`/1.0/networks/${name}`)) !== GONE;
  }
});
