/**
 * Benchmark, not a test: scale-up and scale-down against LXD's own speed, with the trace of where a spawn's time
 * goes.
 *   deno run -A scripts/bench_scale.ts [--sizes 1,10,20] [--rounds 3] [--network-policy true|false] [--baked true]
 *                                       [--concurrency 0,20]
 * `--concurrency` lists values of the binary's `concurrency` key to compare in the same run (0: its default).
 * The image is the busybox test image with the fake runner application baked in (made here, published, deleted at
 * the end), as `image build` bakes the real one; `--baked false` spawns from the bare test image, so every spawn
 * pushes the application.
 * For each N and round, interleaved so that noise hits all alike, on the host's real LXD with the fake GitHub:
 * - LXD baselines, through the binary's own LXD client: N instances of the same image created and started one
 *   after another, and all at once; then deleted all at once;
 * - the compiled binary: one `reconcile` from zero to N idle runners, timed from its start until all N read online
 *   in the fake; its per-step durations (the pass report's `steps`); then `reconcile --containers 0` back to zero.
 * Prints markdown (also to .cache/bench-scale.md). Nothing asserts on time; it fails only when the binary does not
 * do its job.
 */
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { FakeGithub } from "../tests/fakes/github.ts";
import { benchHost, ensureBinary, IMAGE, median, ms, progress, ROOT, whole, writeBenchConfig } from "./bench_common.ts";
import { mapBounded } from "../lib/act.ts";
import { removeRunnerNetwork } from "../lib/runner_network.ts";
import { defaultNetwork } from "../lib/config.ts";
import { SPAWN_STEPS } from "../lib/spawn.ts";
import type { PassReport } from "../lib/reconcile.ts";
import { LxdImages } from "../lib/lxd_images.ts";
import { PUSHED_TARBALL, RUNNER_DIR } from "../lib/instance_scripts.ts";
import { fakeRunnerTarballBytes } from "../tests/fakes/runner_app.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,10,20" },
    rounds: { type: "string", default: "3" },
    "network-policy": { type: "string", default: "true" },
    baked: { type: "string", default: "true" },
    concurrency: { type: "string", default: "0" },
  },
});
const SIZES = values.sizes.split(",").map((s) => whole(s, "--sizes"));
const R = whole(values.rounds, "--rounds");
const CONCURRENCY = values.concurrency.split(",").map((c) => c === "0" ? 0 : whole(c, "--concurrency"));
const label = (n: number, c: number) => CONCURRENCY.length > 1 ? `${n}, concurrency ${c || "default"}` : `${n}`;
const COMMAND = ["deno run -A scripts/bench_scale.ts", ...Deno.args].join(" ");

const stop = new AbortController();
Deno.addSignalListener("SIGINT", () => stop.abort());

const binaryState = ensureBinary();
const { bridge, socketPath, lxd, prefix, tmp, bin } = await benchHost("scale");
const fake = await FakeGithub.start({ hostname: bridge });
const ours = (name: string) => name.startsWith(`${prefix}-`);
const images = new LxdImages({ socketPath });
const image = values.baked === "false" ? IMAGE : `${prefix}-baked`;
const launch = (name: string) => lxd.createInstance({ name, type: "container", image, ephemeral: true, start: true });

/** The test image with the fake runner application unpacked where spawns look for it, as an image of its own. */
async function bakeImage(alias: string): Promise<void> {
  const builder = `${prefix}-bake`;
  await lxd.createInstance({ name: builder, type: "container", image: IMAGE, start: true });
  try {
    await lxd.pushFile(builder, PUSHED_TARBALL, fakeRunnerTarballBytes(), { mode: 0o600 });
    const unpack = `mkdir -p ${RUNNER_DIR} && tar -xzf ${PUSHED_TARBALL} -C ${RUNNER_DIR} && rm ${PUSHED_TARBALL} && ` +
      `chown -R runner:runner ${RUNNER_DIR}`;
    const r = await lxd.exec(builder, ["sh", "-c", unpack]);
    if (r.exitCode !== 0) throw new Error(`cannot bake the runner application: ${r.stderr}`);
    await lxd.stopInstance(builder, { force: true });
    const fingerprint = await images.publish(builder, { timeoutMs: 120_000 });
    await images.setAlias(alias, fingerprint);
  } finally {
    await lxd.deleteInstance(builder).catch(() => {});
  }
}

async function reconcile(configFile: string, extra: string[] = []): Promise<{ ms: number; report: PassReport }> {
  const t0 = performance.now();
  const out = await new Deno.Command(bin, {
    args: ["reconcile", "--json", "-c", configFile, ...extra],
    env: { GITHUB_TOKEN: fake.token, NO_COLOR: "1" }, // the token never goes on a command line
    stdin: "null",
    signal: AbortSignal.any([stop.signal, AbortSignal.timeout(600_000)]),
  }).output();
  const elapsed = performance.now() - t0;
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  const report = line.startsWith("{") ? JSON.parse(line) as PassReport : undefined;
  if (out.code !== 0 || !report?.ok) {
    const stderr = new TextDecoder().decode(out.stderr).slice(-3000);
    throw new Error(`reconcile ${extra.join(" ")} exited ${out.code}: ${report?.error ?? ""}\n${stderr}`);
  }
  return { ms: elapsed, report };
}

const s: Record<string, number[]> = {};
const add = (key: string, ...xs: number[]) => (s[key] ??= []).push(...xs);
const m = (key: string) => median(s[key] ?? []);
const load0 = loadavg()[0];

try {
  if (!(await lxd.imageExists(IMAGE))) throw new Error(`No LXD image "${IMAGE}": run scripts/lxd-test-host.sh first`);
  if (image !== IMAGE) await bakeImage(image);
  for (let r = 0; r < R; r++) {
    for (const n of SIZES) {
      const names = (tag: string) => Array.from({ length: n }, (_, i) => `${prefix}-${tag}${r}n${i}`);
      // ---- LXD baselines: one after another, then all at once ----------------------------------------------
      const serial = names("s");
      let t = performance.now();
      for (const name of serial) await launch(name);
      add(`serial${n}`, performance.now() - t);
      await mapBounded(serial, n, (name) => lxd.deleteInstance(name));
      const atOnce = names("p");
      t = performance.now();
      await mapBounded(atOnce, n, launch);
      add(`atOnce${n}`, performance.now() - t);
      t = performance.now();
      await mapBounded(atOnce, n, (name) => lxd.deleteInstance(name));
      add(`deleteAtOnce${n}`, performance.now() - t);

      for (const c of CONCURRENCY) {
        // ---- the binary: 0 -> n online, then n -> 0 ----------------------------------------------------------------
        const configFile = join(tmp, `config-${n}-${c}.toml`);
        writeBenchConfig(configFile, { prefix, tmp, socketPath }, fake.url, {
          image,
          containers: n,
          ...(c ? { concurrency: c } : {}),
          "network-policy": values["network-policy"] !== "false",
        });
        const t0 = performance.now();
        let failed = false;
        const online = fake.waitFor(() => {
          if (failed || stop.signal.aborted) throw new Error("stopped");
          return fake.runners().filter((x) => ours(x.name) && x.status === "online").length === n;
        }, { timeoutMs: 300_000, intervalMs: 10, what: `${n} runners online` }).then(() => performance.now() - t0);
        online.catch(() => {});
        const up = await reconcile(configFile).catch((e) => {
          failed = true;
          throw e;
        });
        const creates = up.report.results.filter((x) => x.action.kind === "create");
        if (creates.length !== n) throw new Error(`the spawn pass made ${creates.length} runners, not ${n}`);
        add(`online${n}c${c}`, await online);
        add(`pass${n}c${c}`, up.ms);
        for (const x of creates) {
          for (const step of SPAWN_STEPS) if (x.steps?.[step]) add(`${step}${n}c${c}`, x.steps[step]!);
        }
        add(`spawn${n}c${c}`, ...creates.map((x) => x.durationMs));

        const down = await reconcile(configFile, ["--containers", "0"]);
        const removes = down.report.results.filter((x) => x.action.kind === "remove");
        if (removes.length !== n) throw new Error(`the tear-down pass removed ${removes.length} runners, not ${n}`);
        add(`down${n}c${c}`, down.ms);
        const left = (await lxd.listInstances()).filter((i) => ours(i.name));
        if (left.length) throw new Error(`instances left after tear-down: ${left.map((i) => i.name).join(", ")}`);
      }
      progress(
        `round ${r + 1}/${R}, N=${n}: LXD at once ${ms(s[`atOnce${n}`].at(-1)!)}, online ${
          CONCURRENCY.map((c) => ms(s[`online${n}c${c}`].at(-1)!)).join(" / ")
        }`,
      );
    }
  }
} finally {
  const left = (await lxd.listInstances().catch(() => [])).filter((i) => ours(i.name));
  await Promise.all(left.map((i) => lxd.deleteInstance(i.name).catch(() => {})));
  await removeRunnerNetwork(socketPath, defaultNetwork(prefix)).catch(() => {});
  if (image !== IMAGE) {
    const fingerprint = await images.aliasTarget(image).catch(() => undefined);
    if (fingerprint) await images.deleteImage(fingerprint).catch(() => {});
  }
  await fake.close();
  await rm(tmp, { recursive: true, force: true });
}

const ratio = (a: number, b: number) => isNaN(a / b) ? "—" : `${(a / b).toFixed(2)}×`;
const scaleRows = SIZES.flatMap((n) =>
  CONCURRENCY.map((c) =>
    `| ${label(n, c)} | ${ms(m(`online${n}c${c}`))} | ${ms(m(`pass${n}c${c}`))} | ${ms(m(`serial${n}`))} | ` +
    `${ms(m(`atOnce${n}`))} | ` +
    `${ratio(m(`online${n}c${c}`), m(`atOnce${n}`))} | ${ms(m(`down${n}c${c}`))} | ${ms(m(`deleteAtOnce${n}`))} | ` +
    `${ratio(m(`down${n}c${c}`), m(`deleteAtOnce${n}`))} |`
  )
);
const stepRows = SIZES.flatMap((n) =>
  CONCURRENCY.map((c) =>
    `| ${label(n, c)} | ${SPAWN_STEPS.map((step) => ms(m(`${step}${n}c${c}`))).join(" | ")} | ` +
    `${ms(m(`spawn${n}c${c}`))} |`
  )
);
const md = `## Scale benchmark: ${SIZES.join(", ")} runners, ${R} rounds (medians)

- command: \`${COMMAND}\`; binary ${binaryState}; image \`${IMAGE}\`${
  image === IMAGE ? " (the runner application pushed at every spawn)" : " with the fake runner application baked in"
}; fence ${values["network-policy"]}
- ${new Date().toISOString()}; ${cpus().length} CPUs; load average ${load0.toFixed(2)} at start, \
${loadavg()[0].toFixed(2)} at end

| N | 0 → N online (binary) | its pass (start to exit) | LXD: N one after another | LXD: N at once | online / at once | N → 0 (binary) | LXD: delete N at once | ratio |
|---|---|---|---|---|---|---|---|---|
${scaleRows.join("\n")}

Where a spawn's time goes (median per runner, from the pass report; \`register\` = runner group, image release and
the JIT config; \`create\` = LXD create and start; \`start\` = one push and one exec):

| N | ${SPAWN_STEPS.join(" | ")} | whole spawn |
|---|${SPAWN_STEPS.map(() => "---|").join("")}---|
${stepRows.join("\n")}
`;
console.log(md);
mkdirSync(join(ROOT, ".cache"), { recursive: true });
writeFileSync(join(ROOT, ".cache/bench-scale.md"), md);
