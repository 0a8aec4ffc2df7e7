/**
 * The compiled single-file binary, as a user runs it: `reconcile` keeps the target on the real LXD against a
 * GitHub-compatible server, `check --json` reports it, and the token never shows in output or arguments.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { idleRunners, openBed } from "./harness.ts";
import { DIST_BIN, ensureBinary } from "../../scripts/dist_binary.ts";

const BINARY = DIST_BIN;

Deno.test("binary: reconcile, check and flush against real LXD and a GitHub-compatible server", async () => {
  ensureBinary();
  const bed = await openBed({ containers: 2 });
  try {
    const c = bed.config;
    const dir = await mkdtemp(join(tmpdir(), "github-runner-bin-"));
    const configPath = join(dir, "config.toml");
    await writeFile(
      configPath,
      [
        `path = "acme"`,
        `containers = 1`,
        `image = "${c.image}"`,
        `github-api-url = "${c.githubApiUrl}"`,
        `name-prefix = "${c.namePrefix}"`,
        `cache-dir = "${c.cacheDir}"`,
        `lxd-socket = "${c.lxdSocket}"`,
      ].join("\n") + "\n",
    );
    const env = { ...process.env, GITHUB_TOKEN: bed.fake.token, NO_COLOR: "1" };
    // Asynchronous: the fake GitHub answers from this very process, so a synchronous spawn would deadlock.
    const bin = (...args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(BINARY, args, { env, encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) => {
          resolve({ status: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
        });
      });

    // A flag overrides the file: 2 containers, not 1.
    const first = await bin("reconcile", "--json", "-c", configPath, "--containers", "2");
    assert.equal(first.status, 0, first.stderr);
    const report = JSON.parse(first.stdout);
    assert.equal(report.results.filter((r: { outcome: string }) => r.outcome === "done").length, 2);
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { timeoutMs: 60_000, what: "2 idle runners" });

    const check = await bin("check", "--json", "-c", configPath);
    assert.equal(check.status, 0, check.stderr);
    const seen = JSON.parse(check.stdout);
    assert.equal(seen.counts.idle, 2);
    assert.deepEqual(seen.runners.map((r: { name: string }) => r.name).sort(), idleRunners(bed).sort());

    // One-shot processes keep the ETag in cache-dir: a steady-state reconcile reads the list with a free 304.
    await bin("reconcile", "-c", configPath, "--containers", "2"); // settles the list after the spawns
    const counted = bed.fake.counted;
    const steady = await bin("reconcile", "--json", "-c", configPath, "--containers", "2");
    assert.equal(steady.status, 0, steady.stderr);
    assert.deepEqual(JSON.parse(steady.stdout).results, []);
    assert.equal(bed.fake.counted, counted, "a steady-state one-shot reconcile cost a counted request");
    assert.equal(bed.fake.requests.at(-1)?.status, 304);

    // Back to the file's target of 1: one surplus runner removed.
    const second = await bin("reconcile", "-c", configPath);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /remove \S+ \(surplus\): done/);
    assert.equal((await bed.instances()).size, 1);

    const flush = await bin("flush", "--json", "-c", configPath, "--containers", "0");
    assert.equal(flush.status, 0, flush.stderr);
    assert.equal((await bed.instances()).size, 0);

    for (const r of [first, check, second, flush]) {
      assert.ok(
        !r.stdout.includes(bed.fake.token) && !r.stderr.includes(bed.fake.token),
        "the token leaked into output",
      );
    }
    // Logs are JSON lines on stderr when not on a terminal, one per decision.
    const records = first.stderr.trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(records.some((r) => /Created \S+ \(container\)/.test(r.message)), first.stderr);
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});

Deno.test("binary: bad config exits 2 with one line and no stack trace", () => {
  ensureBinary();
  const r = spawnSync(BINARY, ["reconcile", "--path", "acme", "--max-runners", "many"], {
    env: { PATH: process.env.PATH, GITHUB_TOKEN: "x" },
    encoding: "utf8",
  });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'github-runner: Invalid config "max-runners": must be a whole number >= 0, got "many"\n');
});

Deno.test("binary: run keeps the target through a job, and SIGTERM ends it with exit 0", async () => {
  ensureBinary();
  const bed = await openBed({ containers: 1 });
  try {
    const c = bed.config;
    // Deno.Command, not node:child_process: under Deno the latter reports a child it signalled as killed by the
    // signal even when the child handled it and exited 0.
    const child = new Deno.Command(BINARY, {
      args: [
        "run",
        ...["--path", "acme", "--containers", "1", "--check-interval", "1s", "--image", c.image],
        ...["--github-api-url", c.githubApiUrl, "--name-prefix", c.namePrefix, "--cache-dir", c.cacheDir],
        ...["--lxd-socket", c.lxdSocket!],
      ],
      env: { GITHUB_TOKEN: bed.fake.token },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      await bed.fake.waitFor(() => idleRunners(bed).length === 1, { timeoutMs: 60_000, what: "1 idle runner" });
      const [first] = idleRunners(bed);
      bed.fake.assignJob(first, { seconds: 1 });
      await bed.fake.waitFor(() => idleRunners(bed).some((n) => n !== first), {
        timeoutMs: 60_000,
        what: "a replacement",
      });
    } finally {
      child.kill("SIGTERM");
    }
    const { code, stderr: raw } = await output;
    const stderr = new TextDecoder().decode(raw);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /"message":"Stopped"/);
  } finally {
    await bed.close();
  }
});
