/**
 * The rest of the hooks and actions under the stand-in hook tools: start, secret-changed (a rotated token),
 * update-runner-bin, flush-runners with flush-busy, and upgrade-charm as the first hook that finds the binary.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { JujuUnit, sourceBinary } from "./juju_unit.ts";
import { APP, bed, noSecretIn } from "./unit_bed.ts";

const SERVICE = `github-runner-${APP}-0.service`;
const systemctl = (run: { calls: { tool: string; args: string[] }[] }) =>
  run.calls.filter((c) => c.tool === "systemctl").map((c) => c.args.join(" "));

Deno.test("hooks: start starts the configured service; secret-changed picks up a rotated token", async () => {
  const token = "ghp_fakeGithubToken0000000000000000000";
  const b = await bed({ token: "", "token-secret-id": "secret:cv1" }, { secrets: { "secret:cv1": { token } } });
  try {
    assert.equal((await b.unit.hook("install")).code, 0);
    const start = await b.unit.hook("start");
    assert.equal(start.code, 0, start.stderr);
    assert.deepEqual(systemctl(start), [`start ${SERVICE}`, `is-active ${SERVICE}`]);
    assert.deepEqual(b.unit.status(), { status: "active", message: "Waiting for the first pass" });

    // The operator rotates the secret: a new revision. The fake accepts only its own token, so the old
    // token's runners (none here) are looked for with it, and the service gets the new one.
    const rotated = "ghp_rotatedToken000000000000000000000";
    b.unit.writeFixture("secrets.json", { "secret:cv1": { token: rotated } });
    const changed = await b.unit.hook("secret-changed");
    assert.equal(changed.code, 0, changed.stderr);
    assert.ok(changed.calls.some((c) => c.tool === "juju-log" && /^Old token: removed 0 runners/.test(c.args[2])));
    assert.match(readFileSync(b.paths.config, "utf8"), new RegExp(`^token = "${rotated}"$`, "m"));
    assert.deepEqual(systemctl(changed).slice(0, 1), [`stop ${SERVICE}`], "the old service stops first");
    noSecretIn(changed.calls, token, rotated);
  } finally {
    await b.close();
  }
});

Deno.test("actions: update-runner-bin refreshes the cache; flush-runners passes flush-busy on", async () => {
  // The stand-in LXD of these hook tests has no network API; the fence is tested on the real one.
  const b = await bed({ "network-policy": false });
  try {
    assert.equal((await b.unit.hook("install")).code, 0);
    const same = await b.unit.action("update-runner-bin");
    assert.equal(JujuUnit.failure(same), undefined, same.stderr);
    const results = JujuUnit.results(same);
    assert.equal(results.updated, "false");
    assert.match(results.filename, /^actions-runner-linux-x64-[0-9.]+\.tar\.gz$/);
    assert.match(results.sha256, /^[0-9a-f]{64}$/);

    rmSync(join(b.unit.root, `var/cache/github-runner/${APP}-0`), { recursive: true });
    const fresh = JujuUnit.results(await b.unit.action("update-runner-bin"));
    assert.deepEqual([fresh.updated, fresh.flushed], ["true", "0"]);

    const flush = await b.unit.action("flush-runners", { "flush-busy": true });
    assert.equal(JujuUnit.failure(flush), undefined, flush.stderr);
    assert.ok(flush.calls.some((c) => c.tool === "action-log" && /idle and busy/.test(c.args[0])));
    assert.deepEqual(
      Object.keys(JujuUnit.results(flush)).sort(),
      ["busy", "delta.containers", "delta.virtual-machines", "flushed", "offline", "online", "runners", "unknown"],
    );
    const plain = await b.unit.action("flush-runners");
    assert.ok(plain.calls.some((c) => c.tool === "action-log" && /the idle runners/.test(c.args[0])), "default false");
  } finally {
    await b.close();
  }
});

Deno.test("hooks: upgrade-charm that first finds the binary attached installs the unit", async () => {
  const b = await bed({}, { resource: undefined });
  try {
    assert.equal((await b.unit.hook("install")).code, 0);
    assert.equal(b.unit.status()?.status, "blocked", "no binary yet");
    b.unit.writeFixture("resources.json", { "github-runner-binary": sourceBinary(b.unit.dir) });
    const run = await b.unit.hook("upgrade-charm");
    assert.equal(run.code, 0, run.stderr);
    assert.ok(existsSync(b.paths.unitFile) && existsSync(b.paths.config));
    assert.deepEqual(b.unit.status(), { status: "active", message: "Service started: the first pass is under way" });
  } finally {
    await b.close();
  }
});
