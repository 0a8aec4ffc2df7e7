/**
 * `image build` on the real LXD: a runner image baked from the local Debian base (scripts/lxd-test-host.sh with
 * LXD_WITH_DEBIAN=1) with the fake runner application; the alias moves only to a proven image, a failed build
 * changes nothing and leaves no builder, a rebuild keeps the old image as -previous, and a runner spawned from
 * the image comes online without a tarball push. Spawn times with the baked image and with a push are printed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFakeRunnerTarball } from "../fakes/runner_app.ts";
import { type Bed, openBed, TEST_IMAGE } from "./harness.ts";
import { buildImage, type ImageDeps, importImage } from "../../lib/image_build.ts";
import { builderName, candidateAlias, previousAlias, testInstanceName } from "../../lib/image_plan.ts";
import { logger } from "../../lib/log.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { LxdImages } from "../../lib/lxd_images.ts";
import { importRunnerApp, type RunnerApp } from "../../lib/runner_app.ts";
import { scopeOf } from "../../lib/names.ts";
import { spawnRunner } from "../../lib/spawn.ts";

const DEBIAN_BASE = Deno.env.get("GITHUB_RUNNER_TEST_DEBIAN_IMAGE") ?? "github-runner-test-debian";
/** docker.io from Debian's mirror costs seconds here; GITHUB_RUNNER_TEST_IMAGE_DOCKER=0 leaves it out. */
const WITH_DOCKER = Deno.env.get("GITHUB_RUNNER_TEST_IMAGE_DOCKER") !== "0";
/** The fake runner application talks to the fake GitHub with wget: the image-script is where such extras go. */
const ADD_WGET = "#!/bin/sh\nset -e\napt-get -q -y -o Acquire::Retries=5 install --no-install-recommends wget\n";

Deno.test({
  name: "image build: baked, proven, swapped; failures change nothing; spawns need no push",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const socketPath = detectLxdSocket();
  if (!socketPath) throw new Error("No LXD socket: run scripts/lxd-test-host.sh first");
  const lxd = new LxdClient({ socketPath });
  const images = new LxdImages({ socketPath });
  if (!(await lxd.imageExists(DEBIAN_BASE))) {
    throw new Error(`No image "${DEBIAN_BASE}": run LXD_WITH_DEBIAN=1 bash scripts/lxd-test-host.sh first`);
  }
  const deps: ImageDeps = { lxd, images, log: logger("image") };
  const prefix = `t${crypto.randomUUID().slice(0, 6)}`;
  const image = `${prefix}-image`;
  const dir = await mkdtemp(join(tmpdir(), "github-runner-image-test-"));
  const app: RunnerApp = await importRunnerApp((await buildFakeRunnerTarball(join(dir, "fake"))).path, dir);
  const addWget = join(dir, "add-wget.sh");
  const failing = join(dir, "fail.sh");
  await writeFile(addWget, ADD_WGET);
  await writeFile(failing, "#!/bin/sh\necho 'injected failure' >&2\nexit 1\n");
  const spec = { image, namePrefix: prefix, runnerApp: app, withDocker: WITH_DOCKER, compression: "none" };
  const made = new Set<string>();
  let bed: Bed | undefined;
  const noLeftovers = async () => {
    const names = (await lxd.listInstances()).map((i) => i.name);
    assert.ok(!names.includes(builderName(prefix)), "the builder is gone");
    assert.ok(!names.includes(testInstanceName(prefix)), "the test instance is gone");
    assert.equal(await images.aliasTarget(candidateAlias(image)), undefined, "no candidate alias is left");
  };

  try {
    let first = "";
    await t.step("a build from the Debian base installs a proven image under the alias", async () => {
      const started = performance.now();
      const result = await buildImage(deps, { ...spec, baseImage: DEBIAN_BASE, imageScript: addWget });
      console.log(`image build from ${DEBIAN_BASE}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      made.add(result.fingerprint);
      first = result.fingerprint;
      assert.equal(await images.aliasTarget(image), first);
      assert.equal(await images.aliasTarget(previousAlias(image)), undefined, "nothing to keep on a first build");
      // Spawns label runners with the image's release, read before the instance exists: the build carries it over.
      const built = await lxd.image(image);
      assert.equal(built?.properties.os, "debian");
      assert.equal(built?.properties.release, "bookworm");
      await noLeftovers();
    });

    await t.step("a failing image-script leaves the alias where it was, and no builder", async () => {
      await assert.rejects(
        buildImage(deps, { ...spec, baseImage: image, imageScript: failing }),
        /image-script failed with exit code 1[\s\S]*|injected failure/,
      );
      assert.equal(await images.aliasTarget(image), first);
      assert.equal(await images.aliasTarget(previousAlias(image)), undefined);
      await noLeftovers();
    });

    await t.step("a rebuild moves the alias and keeps the old image as -previous", async () => {
      const started = performance.now();
      const result = await buildImage(deps, { ...spec, baseImage: image, imageScript: addWget });
      console.log(`image rebuild from the image itself: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      made.add(result.fingerprint);
      assert.notEqual(result.fingerprint, first);
      assert.equal(await images.aliasTarget(image), result.fingerprint);
      assert.equal(await images.aliasTarget(previousAlias(image)), first);
      assert.equal(result.previous, first);
      await noLeftovers();
    });

    await t.step("--from-file: an image that fails its proof is deleted, and the alias stays", async () => {
      // A unified image tarball whose rootfs has no init: it imports, but no instance of it starts.
      const tree = join(dir, "broken-image");
      await mkdir(join(tree, "rootfs", "etc"), { recursive: true });
      await writeFile(
        join(tree, "metadata.yaml"),
        `architecture: x86_64\ncreation_date: ${Math.floor(Date.now() / 1000)}\n`,
      );
      const tarball = join(dir, "broken-image.tar");
      execFileSync("tar", ["-cf", tarball, "-C", tree, "metadata.yaml", "rootfs"]);
      const fingerprint = createHash("sha256").update(await readFile(tarball)).digest("hex");
      const before = await images.aliasTarget(image);
      await assert.rejects(importImage(deps, { image, namePrefix: prefix, file: tarball }));
      assert.equal(await images.aliasTarget(image), before);
      assert.equal(await images.imageExists(fingerprint), false, "the unproven import is deleted");
      await noLeftovers();
    });

    await t.step("a runner spawned from the image comes online without a push; timed against busybox", async () => {
      bed = await openBed({ containers: 0 });
      const b = bed;
      const spawnDeps = (img: string, runnerApp: () => Promise<RunnerApp>) => ({
        github: b.deps.github,
        lxd: b.deps.lxd,
        runnerApp,
        runnerGroupId: () => Promise.resolve(1),
        image: () => b.lxd.image(img).then((i) => ({ release: i?.properties.release })),
      });
      const timeSpawn = async (img: string, runnerApp: () => Promise<RunnerApp>) => {
        const name = b.newName();
        const started = performance.now();
        const result = await spawnRunner(spawnDeps(img, runnerApp), {
          name,
          type: "container",
          prefix: b.prefix,
          scope: scopeOf(b.config),
          image: img,
          labels: [],
          vm: { cpu: 1, memory: "1GiB", disk: "5GiB" },
          container: { cpu: 0, memory: "" },
          environment: {},
        });
        const spawned = performance.now() - started;
        await b.fake.waitFor((f) => f.runners().some((r) => r.name === name && r.status === "online"), {
          timeoutMs: 90_000,
          what: `${name} online`,
        });
        return { ...result, spawned, online: performance.now() - started };
      };
      const baked = await timeSpawn(image, () => Promise.reject(new Error("the baked image needs no runner tarball")));
      assert.equal(baked.pushedTarball, false);
      const labels = b.fake.runners().find((r) => r.name.startsWith(b.prefix))?.labels;
      assert.ok(labels?.includes("bookworm"), `the runner carries the image's release as a label: ${labels}`);
      const pushed = await timeSpawn(TEST_IMAGE, () => Promise.resolve(app));
      assert.equal(pushed.pushedTarball, true);
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      console.log(
        `spawn, baked Debian image: ${s(baked.spawned)} to started, ${s(baked.online)} to online; ` +
          `busybox with push: ${s(pushed.spawned)} to started, ${s(pushed.online)} to online`,
      );
    });
  } finally {
    await bed?.close();
    await Promise.allSettled([builderName(prefix), testInstanceName(prefix)].map((n) => lxd.deleteInstance(n)));
    for (const alias of [image, previousAlias(image), candidateAlias(image)]) {
      const target = await images.aliasTarget(alias).catch(() => undefined);
      if (target) made.add(target);
      await images.deleteAlias(alias).catch(() => {});
    }
    await Promise.allSettled([...made].map((fp) => images.deleteImage(fp, { timeoutMs: 120_000 })));
    await rm(dir, { recursive: true, force: true });
  }
});
