/**
 * The runner application cache against the fake GitHub's downloads API and its separate download host:
 * download once, verify the sha256, never send the token there, fall back to the cache, import offline.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeGithub } from "./fakes/github.ts";
import { buildFakeRunnerTarball } from "./fakes/runner_app.ts";
import { GithubClient } from "../lib/github.ts";
import { cachedRunnerApp, ensureRunnerApp, importRunnerApp, RunnerAppError } from "../lib/runner_app.ts";

async function setup() {
  const fake = await FakeGithub.start({ hostname: "127.0.0.1" });
  const github = new GithubClient({ token: fake.token, apiUrl: fake.url, scope: { kind: "org", org: "acme" } });
  const cacheDir = await mkdtemp(join(tmpdir(), "runner-app-"));
  return { fake, github, cacheDir };
}

Deno.test("runner app: downloaded once, verified, without the token; the second time it is served from the cache", async () => {
  const { fake, github, cacheDir } = await setup();
  try {
    const app = await ensureRunnerApp(await github.runnerDownloads(), { cacheDir, arch: "x64" });
    const expected = await buildFakeRunnerTarball(await mkdtemp(join(tmpdir(), "expected-")));
    assert.equal(app.sha256, expected.sha256);
    assert.equal(app.filename, expected.filename);
    assert.deepEqual(await readFile(app.path), await readFile(expected.path));
    const downloads = fake.downloadRequests.length; // the release URL redirects, as GitHub's does: 2 requests
    assert.ok(downloads >= 1);
    assert.equal(fake.downloadSawAuthorization, false, "the token went to the download host");

    const again = await ensureRunnerApp(await github.runnerDownloads(), { cacheDir, arch: "x64" });
    assert.equal(again.sha256, app.sha256);
    assert.equal(fake.downloadRequests.length, downloads, "a cached, verified application is not downloaded again");
    assert.deepEqual(await cachedRunnerApp(cacheDir, "x64"), app);
  } finally {
    await fake.close();
  }
});

Deno.test("runner app: a checksum mismatch is refused and leaves nothing in the cache", async () => {
  const { fake, github, cacheDir } = await setup();
  try {
    const listed = await github.runnerDownloads();
    const forged = listed.map((d) => ({ ...d, sha256_checksum: "0".repeat(64) }));
    await assert.rejects(ensureRunnerApp(forged, { cacheDir, arch: "x64" }), (e: Error) => {
      assert.ok(e instanceof RunnerAppError);
      assert.match(e.message, /failed verification: sha256 [0-9a-f]{64}, GitHub lists 0{64}/);
      return true;
    });
    assert.deepEqual(await readdir(cacheDir), []);
    assert.equal(await cachedRunnerApp(cacheDir, "x64"), undefined);
    const noArm = listed.filter((d) => d.architecture !== "arm64");
    await assert.rejects(ensureRunnerApp(noArm, { cacheDir, arch: "arm64" }), /no runner application for linux\/arm64/);
  } finally {
    await fake.close();
  }
});

Deno.test("runner app: an imported tarball (air-gapped hosts) is what the cache serves", async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), "runner-app-"));
  const src = await buildFakeRunnerTarball(await mkdtemp(join(tmpdir(), "src-")));
  const app = await importRunnerApp(src.path, cacheDir);
  assert.equal(app.sha256, src.sha256);
  assert.deepEqual(await cachedRunnerApp(cacheDir, "x64"), app);
  const odd = join(await mkdtemp(join(tmpdir(), "odd-")), "runner.tgz");
  await writeFile(odd, "x");
  await assert.rejects(importRunnerApp(odd, cacheDir), /is not named like a runner application/);
});
