/**
 * Benchmark, not a test: spawn time with the runner application baked into the image against the same image
 * without it (spawnRunner then pushes and unpacks the tarball), with a runner tarball as big as GitHub's (~180 MB;
 * the fake one is 2 KB). The real LXD of this host and a FakeGithub on the LXD bridge.
 *   deno run -A scripts/bench_image.ts [--rounds N] [--ballast-mb M]
 * Set-up: a padded copy of the fake runner tarball (its entries plus bin/ballast, M MB of random bytes; default 168,
 * a ~177 MB .tar.gz), a runner image built from the Debian base with it (lib/image_build.ts, as
 * tests/integration/image_test.ts does), and from that image a second one with /home/runner/actions-runner removed.
 * Each round, in alternating order: one spawn into each image, timed to "online" in the fake, and LXD's bare
 * create+start of each image as the baseline. Medians, ratios; markdown on stdout and in .cache/bench_image.md.
 * Fails if the baked spawn pushed or the other did not.
 * Env: GITHUB_RUNNER_TEST_DEBIAN_IMAGE (base), GITHUB_RUNNER_TEST_IMAGE_DOCKER=0 (no docker.io in the image).
 */
import { parseArgs } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { cpus, loadavg, networkInterfaces, release, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip, gunzipSync } from "node:zlib";
import { FakeGithub } from "../tests/fakes/github.ts";
import { fakeRunnerTarballBytes, runnerFilename, ustarHeader } from "../tests/fakes/runner_app.ts";
import { median, ms, progress, ROOT, whole } from "./bench_common.ts";
import { GithubClient } from "../lib/github.ts";
import { buildImage } from "../lib/image_build.ts";
import { candidateAlias, previousAlias } from "../lib/image_plan.ts";
import { RUNNER_DIR } from "../lib/instance_scripts.ts";
import { logger, setupLogging } from "../lib/log.ts";
import { detectLxdSocket, LxdClient } from "../lib/lxd.ts";
import { LxdImages } from "../lib/lxd_images.ts";
import { runnerName, scopeOf } from "../lib/names.ts";
import type { RunnerApp } from "../lib/runner_app.ts";
import { spawnRunner, type SpawnSpec } from "../lib/spawn.ts";

const DEBIAN_BASE = Deno.env.get("GITHUB_RUNNER_TEST_DEBIAN_IMAGE") ?? "github-runner-test-debian";
/** As in tests/integration/image_test.ts: docker.io is in the image unless GITHUB_RUNNER_TEST_IMAGE_DOCKER=0. */
const WITH_DOCKER = Deno.env.get("GITHUB_RUNNER_TEST_IMAGE_DOCKER") !== "0";
/**
 * The image-script of both images. wget: the fake runner application talks to the fake GitHub with it, and the
 * Debian base has none (as in image_test.ts).
 */
const IMAGE_SCRIPT = `#!/bin/sh
set -e
apt-get -q -y -o Acquire::Retries=5 install --no-install-recommends wget
`;
const ORG = "acme";
const ONLINE_TIMEOUT_MS = 180_000;
/** Creating from a ~600 MB image on the dir driver, publishing one: minutes on a busy host. */
const SLOW_MS = 180_000;
const PUBLISH_MS = 20 * 60_000;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "ballast-mb": { type: "string", default: "168" },
  },
});
const R = whole(values.rounds, "--rounds");
const BALLAST = whole(values["ballast-mb"], "--ballast-mb") * 1_000_000;
const COMMAND = ["deno run -A scripts/bench_image.ts", ...Deno.args].join(" ");

// Ctrl-C (or a kill) aborts every call and wait, so the finally below still removes everything.
const stop = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    progress(`${sig}: stopping, then cleaning up`);
    stop.abort(new Error(`interrupted by ${sig}`));
  });
}
const signal = stop.signal;
setupLogging({ level: "info", json: false }); // buildImage's progress, on stderr

const mb = (bytes: number) => isNaN(bytes) ? "—" : `${(bytes / 1e6).toFixed(1)} MB`;
const ratio = (a: number, b: number) => isNaN(a / b) ? "—" : `${(a / b).toFixed(2)}×`;
const sec = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

// ---- the padded runner tarball --------------------------------------------------------------------------------

/**
 * The fake runner application's archive with one more entry, bin/ballast: `ballast` random bytes, which gzip cannot
 * shrink, so the .tar.gz is about as big as GitHub's (~180 MB). Gzip level 1 (zlib-ng's quick mode here) codes them
 * with static Huffman codes, 5.5 % bigger, so the default 168 MB of ballast makes a ~177 MB archive whose unpacking
 * really inflates. Streamed to disk; the sha256 is taken on the way.
 */
async function paddedTarball(dir: string, ballast: number): Promise<RunnerApp> {
  const plain = gunzipSync(fakeRunnerTarballBytes());
  const entries = plain.subarray(0, plain.length - 1024); // all but the two zero blocks that end an archive
  if (plain.subarray(plain.length - 1024).some((b) => b !== 0)) {
    throw new Error("The fake runner archive does not end with two zero blocks: cannot append to it");
  }
  const filename = runnerFilename();
  const path = join(dir, filename);
  const hash = createHash("sha256");
  const CHUNK = 1 << 20;
  await pipeline(
    async function* () {
      yield entries;
      yield ustarHeader("bin/ballast", 0o644, ballast);
      for (let left = ballast; left > 0; left -= CHUNK) yield randomBytes(Math.min(CHUNK, left));
      yield new Uint8Array((512 - (ballast % 512)) % 512);
      yield new Uint8Array(1024);
    },
    createGzip({ level: 1 }), // random bytes: any level only stores them
    async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(path, { mode: 0o644 }),
    { signal },
  );
  return { path, filename, sha256: hash.digest("hex") };
}

// ---- set-up ----------------------------------------------------------------------------------------------------
const bridge = networkInterfaces()["lxdbr0"]?.find((a) => a.family === "IPv4")?.address;
if (!bridge) throw new Error("No IPv4 address on lxdbr0: run scripts/lxd-test-host.sh first");
const socketPath = detectLxdSocket();
if (!socketPath) throw new Error("No LXD socket: run scripts/lxd-test-host.sh first");
const lxd = new LxdClient({ socketPath });
const images = new LxdImages({ socketPath });
const rand = crypto.randomUUID().replaceAll("-", "").slice(0, 6);
const prefix = `benchimg${rand}`; // every instance of the run: `<prefix>-...`
const bakedAlias = `bench-img-baked-${rand}`;
const noappAlias = `bench-img-noapp-${rand}`;
const tmp = await mkdtemp(join(tmpdir(), "github-runner-bench-image-"));
const fake = await FakeGithub.start({ hostname: bridge });
const github = new GithubClient({ token: fake.token, apiUrl: fake.url, scope: { kind: "org", org: ORG } });
const scope = scopeOf({ githubApiUrl: fake.url, path: ORG });
const fingerprints = new Set<string>();

const s: Record<string, number[]> = {};
const add = (key: string, x: number) => (s[key] ??= []).push(x);
const m = (key: string) => median(s[key] ?? []);
let lxdVersion = "?", tarballBytes = NaN, buildMs = NaN, noappMs = NaN, bakedSize = NaN, noappSize = NaN;
const load0 = loadavg()[0];
const t0 = performance.now();

/** The image's size as LXD stores it (`lxc query`, bounded). */
async function imageSize(fingerprint: string): Promise<number> {
  const out = await new Deno.Command("lxc", {
    args: ["query", `/1.0/images/${fingerprint}`],
    signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
    stdin: "null",
  }).output();
  return out.success ? Number(JSON.parse(new TextDecoder().decode(out.stdout)).size) : NaN;
}

/** A spawn into `image`, timed from its start to the runner online in the fake; the instance is deleted after. */
async function timeSpawn(image: string, expectPush: boolean, app: RunnerApp): Promise<void> {
  const name = runnerName(prefix, (n) => crypto.getRandomValues(new Uint8Array(n)));
  const spec: SpawnSpec = {
    name,
    type: "container",
    prefix,
    scope,
    image,
    labels: [],
    vm: { cpu: 1, memory: "1GiB", disk: "5GiB" },
    container: { cpu: 0, memory: "" },
    environment: {},
  };
  const deps = {
    github,
    lxd,
    runnerApp: () =>
      expectPush ? Promise.resolve(app) : Promise.reject(new Error(`"${image}" has the runner baked in: no push`)),
    runnerGroupId: () => Promise.resolve(1),
    image: () => Promise.resolve({}),
  };
  const key = expectPush ? "pushed" : "baked";
  let runnerId: number | undefined;
  try {
    const started = performance.now();
    const result = await spawnRunner(deps, spec, { signal });
    const spawned = performance.now() - started;
    runnerId = result.runnerId;
    if (result.pushedTarball !== expectPush) {
      throw new Error(
        `spawn into "${image}": pushedTarball is ${result.pushedTarball}, expected ${expectPush}: ` +
          `the images are not what this benchmark needs`,
      );
    }
    await fake.waitFor((f) => {
      if (signal.aborted) throw signal.reason;
      return f.runners().some((r) => r.name === name && r.status === "online");
    }, { timeoutMs: ONLINE_TIMEOUT_MS, intervalMs: 20, what: `${name} online` });
    const online = performance.now() - started;
    add(`${key}Spawn`, spawned);
    add(`${key}Online`, online);
    add(`${key}After`, online - spawned);
    progress(`  ${key}: spawnRunner ${ms(spawned)}, online ${ms(online)}`);
  } finally {
    const cleanup = AbortSignal.timeout(120_000);
    await lxd.deleteInstance(name, { signal: cleanup, timeoutMs: 120_000 });
    if (runnerId !== undefined) await github.deleteRunner(runnerId, cleanup).catch(() => {});
  }
}

/** The baseline: LXD's create+start of `image` (runner config, no runner), then delete (untimed). */
async function timeLaunch(image: string, key: string): Promise<void> {
  const name = `${prefix}-launch`;
  try {
    const started = performance.now();
    await lxd.createInstance({
      name,
      type: "container",
      image,
      ephemeral: true,
      start: true,
      config: { "security.nesting": "true" },
    }, { signal, timeoutMs: SLOW_MS });
    add(key, performance.now() - started);
    progress(`  ${key}: ${ms(s[key].at(-1)!)}`);
  } finally {
    await lxd.deleteInstance(name, { signal: AbortSignal.timeout(120_000), timeoutMs: 120_000 });
  }
}

try {
  lxdVersion = (await lxd.server({ signal })).serverVersion;
  if (!(await lxd.imageExists(DEBIAN_BASE, { signal }))) {
    throw new Error(`No image "${DEBIAN_BASE}": run LXD_WITH_DEBIAN=1 bash scripts/lxd-test-host.sh first`);
  }

  // ---- 1. the padded runner tarball ---------------------------------------------------------------------------
  let t = performance.now();
  const app = await paddedTarball(tmp, BALLAST);
  tarballBytes = (await stat(app.path)).size;
  progress(`runner tarball ${app.filename}: ${mb(tarballBytes)} in ${sec(t)}`);

  // ---- 2. the baked image, as `image build` makes it -------------------------------------------------------------
  const imageScript = join(tmp, "image-script.sh");
  await writeFile(imageScript, IMAGE_SCRIPT);
  t = performance.now();
  progress(`building ${bakedAlias} from ${DEBIAN_BASE} (docker: ${WITH_DOCKER}): a minute or two`);
  const built = await buildImage({ lxd, images, log: logger("image") }, {
    image: bakedAlias,
    namePrefix: prefix,
    runnerApp: app,
    withDocker: WITH_DOCKER,
    compression: "none",
    baseImage: DEBIAN_BASE,
    imageScript,
    signal,
  });
  fingerprints.add(built.fingerprint);
  buildMs = performance.now() - t;
  progress(`built ${bakedAlias} (${built.fingerprint.slice(0, 12)}) in ${sec(t)}`);

  // ---- 3. the same image without the runner application ----------------------------------------------------------
  t = performance.now();
  const maker = `${prefix}-noapp`;
  await lxd.createInstance({
    name: maker,
    type: "container",
    image: bakedAlias,
    start: true,
    config: { "security.nesting": "true" },
  }, { signal, timeoutMs: SLOW_MS });
  // Removes the application and, as images/runner-image.sh does last, the identity this boot gave the instance.
  // /etc/machine-id may be a transient bind mount while systemd runs: the file beneath is what gets published.
  const strip = await lxd.exec(maker, [
    "sh",
    "-c",
    `set -eu
rm -rf ${RUNNER_DIR}
id runner >/dev/null
if [ -e /home/runner/actions-runner ]; then echo "${RUNNER_DIR} is still there" >&2; exit 1; fi
rm -rf /tmp/* /var/tmp/*
find /var/log -type f -exec truncate -s 0 {} + 2>/dev/null || true
rm -f /var/lib/dbus/machine-id
: >/etc/machine-id
if mountpoint -q /etc/machine-id 2>/dev/null; then umount /etc/machine-id && : >/etc/machine-id; fi
`,
  ], { signal, timeoutMs: 120_000 });
  if (strip.exitCode !== 0) throw new Error(`Cannot strip "${maker}": exit ${strip.exitCode}: ${strip.stderr.trim()}`);
  await lxd.stopInstance(maker, { signal, timeoutS: 60 });
  const noapp = await images.publish(maker, {
    signal,
    timeoutMs: PUBLISH_MS,
    compression: "none",
    properties: { description: `bench: ${bakedAlias} without ${RUNNER_DIR}` },
  });
  fingerprints.add(noapp);
  await images.setAlias(noappAlias, noapp, { signal, description: "bench_image.ts: no runner application" });
  await lxd.deleteInstance(maker, { signal, timeoutMs: 120_000 });
  noappMs = performance.now() - t;
  progress(`made ${noappAlias} (${noapp.slice(0, 12)}) in ${sec(t)}`);
  [bakedSize, noappSize] = [await imageSize(built.fingerprint), await imageSize(noapp)];

  // ---- 4+5. rounds: every figure beside its baseline, in alternating order ---------------------------------------
  for (let r = 0; r < R; r++) {
    progress(`round ${r + 1}/${R}`);
    const steps = [
      () => timeLaunch(bakedAlias, "launchBaked"),
      () => timeSpawn(bakedAlias, false, app),
      () => timeLaunch(noappAlias, "launchNoapp"),
      () => timeSpawn(noappAlias, true, app),
    ];
    for (const step of r % 2 === 0 ? steps : steps.reverse()) await step();
  }
} finally {
  // ---- clean-up: instances, aliases, images, files; each with a fresh deadline -----------------------------------
  const failures: string[] = [];
  const cleanup = () => ({ signal: AbortSignal.timeout(120_000), timeoutMs: 120_000 });
  const ours = async () => (await lxd.listInstances(cleanup())).filter((i) => i.name.startsWith(`${prefix}-`));
  try {
    for (const i of await ours()) {
      await lxd.deleteInstance(i.name, cleanup()).catch((e) => failures.push(`instance ${i.name}: ${e.message}`));
    }
  } catch (e) {
    failures.push(`list instances: ${(e as Error).message}`);
  }
  for (const alias of [bakedAlias, candidateAlias(bakedAlias), previousAlias(bakedAlias), noappAlias]) {
    try {
      const target = await images.aliasTarget(alias, cleanup());
      if (target) fingerprints.add(target);
      await images.deleteAlias(alias, cleanup());
    } catch (e) {
      failures.push(`alias ${alias}: ${(e as Error).message}`);
    }
  }
  for (const fp of fingerprints) {
    await images.deleteImage(fp, cleanup()).catch((e) => failures.push(`image ${fp.slice(0, 12)}: ${e.message}`));
  }
  await fake.close().catch((e) => failures.push(`fake GitHub: ${e.message}`));
  await rm(tmp, { recursive: true, force: true }).catch((e) => failures.push(`${tmp}: ${e.message}`));
  const left = await ours().catch(() => []);
  for (const i of left) failures.push(`instance ${i.name} is still there`);
  if (failures.length > 0) progress(`CLEAN-UP INCOMPLETE (remove by hand):\n  ${failures.join("\n  ")}`);
  else progress(`cleaned up: no ${prefix}-* instances, no ${bakedAlias}/${noappAlias} images, no temp files`);
}

// ---- report ----------------------------------------------------------------------------------------------------
const row = (figure: string, a: number, b: number) => `| ${figure} | ${ms(a)} | ${ms(b)} | ${ratio(b, a)} |`;
const [bakedX, pushedX] = [m("bakedOnline") / m("launchBaked"), m("pushedOnline") / m("launchNoapp")];
const rows = [
  row("spawn start → runner online in the fake", m("bakedOnline"), m("pushedOnline")),
  row("spawnRunner call alone", m("bakedSpawn"), m("pushedSpawn")),
  row("spawnRunner returned → online", m("bakedAfter"), m("pushedAfter")),
  row("baseline: LXD create+start of the same image", m("launchBaked"), m("launchNoapp")),
  `| spawn → online ÷ its baseline | ${ratio(bakedX, 1)} | ${ratio(pushedX, 1)} | ${ratio(pushedX, bakedX)} |`,
];
const md = `## Benchmark: runner application baked into the image vs pushed at spawn, ${R} rounds

- command: \`${COMMAND}\`; whole run ${sec(t0)}
- ${new Date().toISOString()}; ${cpus().length} CPUs, kernel ${release()}, LXD ${lxdVersion}; \
load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end
- runner tarball: ${mb(tarballBytes)} (the fake application + bin/ballast, ${mb(BALLAST)} of random bytes)
- images from \`${DEBIAN_BASE}\` (docker.io: ${WITH_DOCKER ? "yes" : "no"}, compression none): \
baked ${mb(bakedSize)}, built in ${ms(buildMs)}; without the application ${mb(noappSize)}, made in ${ms(noappMs)}
- one instance at a time; each round alternates the order; n=${R} per figure

| figure | baked (no push) | pushed + unpacked | pushed ÷ baked |
|---|---|---|---|
${rows.join("\n")}
`;
console.log(md);
mkdirSync(join(ROOT, ".cache"), { recursive: true });
writeFileSync(join(ROOT, ".cache/bench_image.md"), md);
Deno.exit(0); // the signal listeners would keep the process alive
