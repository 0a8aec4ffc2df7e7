/**
 * `image build` without LXD: the alias swap (pure), the build's failure paths against in-memory LXD doubles, the
 * command line and the new config keys. tests/integration/image_test.ts builds real images.
 */
import assert from "node:assert/strict";
import { builderName, candidateAlias, planSwap, testInstanceName } from "../lib/image_plan.ts";
import { buildImage, type ImageDeps } from "../lib/image_build.ts";
import { parseCommandLine } from "../lib/cli.ts";
import { parseConfig } from "../lib/config.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { logger } from "../lib/log.ts";
import { imageSource } from "../lib/lxd_wire.ts";

const A = "a".repeat(64), B = "b".repeat(64), C = "c".repeat(64);

Deno.test("image swap: first build, rebuild, identical rebuild, chain of three", () => {
  assert.deepEqual(planSwap("img", {}, A), [{ kind: "set-alias", alias: "img", fingerprint: A }]);
  assert.deepEqual(planSwap("img", { current: A }, B), [
    { kind: "set-alias", alias: "img", fingerprint: B },
    { kind: "set-alias", alias: "img-previous", fingerprint: A },
  ]);
  assert.deepEqual(planSwap("img", { current: A, previous: C }, A), [{
    kind: "set-alias",
    alias: "img",
    fingerprint: A,
  }]);
  assert.deepEqual(planSwap("img", { current: B, previous: A }, C), [
    { kind: "set-alias", alias: "img", fingerprint: C },
    { kind: "set-alias", alias: "img-previous", fingerprint: B },
    { kind: "delete-image", fingerprint: A },
  ]);
  // A rollback build that reproduces the previous image must not delete it.
  assert.deepEqual(planSwap("img", { current: B, previous: A }, A), [
    { kind: "set-alias", alias: "img", fingerprint: A },
    { kind: "set-alias", alias: "img-previous", fingerprint: B },
  ]);
});

/** LXD doubles: instances by name, aliases and images in maps; `proofExit` decides the proof's exit code. */
function fakeLxd(opts: { recipeExit?: number; proofExit?: number }) {
  const instances = new Set<string>();
  const aliases = new Map<string, string>([["img", A]]);
  const imageSet = new Set<string>([A]);
  const deps: ImageDeps = {
    log: logger("image-test"),
    lxd: {
      createInstance: (spec) => Promise.resolve(void instances.add(spec.name)),
      deleteInstance: (name) => Promise.resolve(void instances.delete(name)),
      exec: (_name, command) => {
        const recipe = command.includes("sh") && command.some((c) => c.endsWith("runner-image.sh"));
        const exitCode = recipe ? opts.recipeExit ?? 0 : command[0] === "sh" ? opts.proofExit ?? 0 : 0;
        return Promise.resolve({ exitCode, stdout: "", stderr: exitCode ? "it broke" : "" });
      },
      pushFile: () => Promise.resolve(),
      mkdir: () => Promise.resolve(),
      stopInstance: () => Promise.resolve(),
    },
    images: {
      publish: () => Promise.resolve(void imageSet.add(B)).then(() => B),
      importFile: () => Promise.resolve(void imageSet.add(B)).then(() => B),
      aliasTarget: (alias) => Promise.resolve(aliases.get(alias)),
      setAlias: (alias, fp) => Promise.resolve(void aliases.set(alias, fp)),
      deleteAlias: (alias) => Promise.resolve(void aliases.delete(alias)),
      deleteImage: (fp) => {
        imageSet.delete(fp);
        for (const [alias, target] of aliases) if (target === fp) aliases.delete(alias);
        return Promise.resolve();
      },
    },
  };
  return { deps, instances, aliases, imageSet };
}

const SPEC = {
  image: "img",
  namePrefix: "host",
  baseImage: "base",
  runnerApp: { path: "/cache/actions-runner-linux-x64-2.329.0.tar.gz", filename: "x.tar.gz", sha256: "0" },
};

Deno.test("image build: a proven image replaces the alias; builder and tester are gone", async () => {
  const lxd = fakeLxd({});
  const result = await buildImage(lxd.deps, SPEC);
  assert.deepEqual(result, { fingerprint: B, previous: A });
  assert.deepEqual(Object.fromEntries(lxd.aliases), { img: B, "img-previous": A });
  assert.equal(lxd.instances.size, 0);
});

for (const [what, opts] of [["the recipe", { recipeExit: 1 }], ["the proof", { proofExit: 1 }]] as const) {
  Deno.test(`image build: when ${what} fails, the alias stays, the candidate is deleted, nothing is left`, async () => {
    const lxd = fakeLxd(opts);
    await assert.rejects(buildImage(lxd.deps, SPEC), /it broke/);
    assert.deepEqual(Object.fromEntries(lxd.aliases), { img: A });
    assert.deepEqual([...lxd.imageSet], [A]);
    assert.equal(lxd.instances.size, 0);
  });
}

Deno.test("image build: instance names stay within LXD's 63 characters", () => {
  const long = "p".repeat(54);
  assert.ok(builderName(long).length <= 63 && builderName(long).endsWith("-image-builder"));
  assert.ok(testInstanceName(long).length <= 63);
  assert.equal(builderName("acme-0"), "acme-0-image-builder");
  assert.equal(candidateAlias("github-runner"), "github-runner-candidate");
});

Deno.test("cli: image build and its flags", () => {
  const inv = parseCommandLine(["image", "build", "--base-image", "ubuntu:22.04", "--from-file", "/x.tar.gz"]);
  assert.equal(inv.command, "image");
  assert.equal(inv.topic, "build");
  assert.equal(inv.fromFile, "/x.tar.gz");
  assert.equal(inv.flags["base-image"], "ubuntu:22.04");
  assert.throws(() => parseCommandLine(["image"]), UsageError);
  assert.throws(() => parseCommandLine(["image", "push"]), /Unknown subcommand "push"/);
  assert.throws(() => parseCommandLine(["reconcile", "--from-file", "x"]), /does not apply/);
  assert.equal(parseCommandLine(["image", "--help"]).help, true);
});

Deno.test("config: base-image, image-script, dockerhub-mirror", () => {
  const config = (file: Record<string, unknown>) =>
    parseConfig({ hostname: "h", envToken: "t", file: { path: "acme", ...file } });
  assert.equal(config({}).baseImage, "ubuntu:24.04");
  assert.equal(config({}).dockerhubMirror, undefined);
  assert.equal(
    config({ "dockerhub-mirror": "https://mirror.example:5000/" }).dockerhubMirror,
    "https://mirror.example:5000/",
  );
  assert.equal(config({ "image-script": "/etc/github-runner/image.sh" }).imageScript, "/etc/github-runner/image.sh");
  for (
    const bad of ["http://mirror.example", "https://user:pw@mirror.example", 'https://m.example/"', "mirror.example"]
  ) {
    assert.throws(
      () => config({ "dockerhub-mirror": bad }),
      (e) => e instanceof ConfigError && /dockerhub-mirror/.test(e.message),
    );
  }
});

Deno.test("lxd: a base image on a known remote is pulled, anything else is local", () => {
  assert.deepEqual(imageSource("ubuntu:24.04"), {
    type: "image",
    mode: "pull",
    server: "https://cloud-images.ubuntu.com/releases",
    protocol: "simplestreams",
    alias: "24.04",
  });
  assert.deepEqual(imageSource("github-runner"), { type: "image", alias: "github-runner" });
  assert.deepEqual(imageSource("nowhere:x"), { type: "image", alias: "nowhere:x" });
});
