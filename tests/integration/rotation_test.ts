/**
 * Rotation on the real LXD: when `image` is moved to a rebuilt image, idle runners of the old one are replaced
 * (one per type and pass) and a busy one finishes its job untouched.
 */
import assert from "node:assert/strict";
import { idleRunners, openBed, summary, TEST_IMAGE } from "./harness.ts";
import { LxdImages } from "../../lib/lxd_images.ts";
import { makeDeps } from "../../lib/deps.ts";

Deno.test("rotation: a rebuilt image replaces idle runners; the busy one finishes first", async () => {
  const bed = await openBed({ containers: 1 });
  const images = new LxdImages({ socketPath: bed.config.lxdSocket! });
  const alias = `${bed.prefix}-rot`;
  const variant = `${bed.prefix}-variant`;
  let rebuilt: string | undefined;
  try {
    const original = (await images.aliasTarget(TEST_IMAGE))!;
    await images.setAlias(alias, original);
    bed.reconfigure({ image: alias, containers: 2 });
    bed.deps = makeDeps(bed.config); // `image` is read when the clients are made, as on a restart or SIGHUP

    assert.deepEqual(summary(await bed.pass()), ["create container: done", "create container: done"]);
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { timeoutMs: 60_000, what: "2 idle" });
    const [busy, idle] = idleRunners(bed);
    bed.fake.assignJob(busy, { seconds: 60 });
    await bed.fake.waitFor((f) => f.runners().some((r) => r.name === busy && r.busy), {
      timeoutMs: 30_000,
      what: "busy",
    });

    // "Rebuild" the image: a copy with one more file has another fingerprint; the alias moves to it.
    await bed.lxd.createInstance({ name: variant, type: "container", image: TEST_IMAGE, ephemeral: false });
    await bed.lxd.pushFile(variant, "/etc/variant", crypto.randomUUID());
    rebuilt = await images.publish(variant, { compression: "none" });
    await bed.lxd.deleteInstance(variant);
    await images.setAlias(alias, rebuilt);

    const report = await bed.pass();
    assert.deepEqual(summary(report), ["create container: done", "create container: done", "remove outdated: done"]);
    const instances = await bed.lxd.listInstances();
    const ours = instances.filter((i) => i.name.startsWith(`${bed.prefix}-`) && i.name !== variant);
    assert.ok(!ours.some((i) => i.name === idle), "the idle runner of the old image was replaced");
    assert.equal(ours.find((i) => i.name === busy)?.baseImage, original, "the busy runner is untouched");
    assert.deepEqual(
      ours.filter((i) => i.name !== busy).map((i) => i.baseImage),
      [rebuilt, rebuilt],
      "the replacements come from the rebuilt image",
    );
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.lxd.deleteInstance(variant).catch(() => {});
    await bed.close();
    await images.deleteAlias(alias).catch(() => {});
    if (rebuilt) await images.deleteImage(rebuilt).catch(() => {});
  }
});
