/** The command line as a user meets it: exit codes, one clear line for bad input, no secret in any output. */
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../main.ts";

async function run(argv: string[], env: Record<string, string> = {}) {
  let out = "", err = "";
  const code = await main(argv, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTty: false,
    env,
    stop: new AbortController().signal,
  });
  return { code, out, err };
}

async function configFile(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "github-runner-cli-")), "config.toml");
  await writeFile(path, text);
  return path;
}

Deno.test("cli: help and version", async () => {
  const help = await run(["help"]);
  assert.equal(help.code, 0);
  for (const cmd of ["reconcile", "run", "check", "flush", "update-runner-bin", "version"]) {
    assert.match(help.out, new RegExp(cmd));
  }
  assert.match((await run(["flush", "--help"])).out, /flush \[--busy\]/);
  assert.match((await run(["version"])).out, /^github-runner \d+\.\d+\.\d+\n$/);
});

const usageErrors: [string, string[], RegExp][] = [
  ["unknown command", ["frobnicate"], /Unknown command "frobnicate"/],
  ["unknown flag (typo)", ["reconcile", "--contianers", "2"], /contianers/],
  ["token on the command line", ["reconcile", "--token", "ghp_abc123"], /Refusing --token/],
  ["stray argument", ["check", "extra"], /Unexpected argument "extra"/],
  ["webhook secret on the command line", ["run", "--webhook-secret", "ghp_abc123"], /Refusing --webhook-secret/],
  ["--busy on reconcile", ["reconcile", "--busy"], /--busy does not apply to "reconcile"/],
  ["--from on check", ["check", "--from", "x.tar.gz"], /--from does not apply to "check"/],
  ["bad log level", ["check", "--log-level", "loud", "--path", "acme"], /log-level/],
];
for (const [what, argv, message] of usageErrors) {
  Deno.test(`cli: ${what} exits 2 with one line`, async () => {
    const r = await run(argv, { GITHUB_TOKEN: "ghp_envsecret" });
    assert.equal(r.code, 2);
    assert.match(r.err, message);
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
    assert.ok(!r.err.includes("ghp_abc123") && !r.err.includes("ghp_envsecret"));
    assert.equal(r.out, "");
  });
}

Deno.test("cli: bad config exits 2 naming the key, before touching GitHub or LXD", async () => {
  const path = await configFile('path = "acme"\ncontainers = -2\ntoken = "ghp_filesecret"\n');
  const r = await run(["reconcile", "-c", path]);
  assert.equal(r.code, 2);
  assert.match(r.err, /Invalid config "containers": must be a whole number >= 0, got -2/);
  assert.ok(!r.err.includes("ghp_filesecret"));
});

Deno.test("cli: unknown config key in the file exits 2", async () => {
  const path = await configFile('path = "acme"\nvirtual_machines = 1\n');
  const r = await run(["check", "-c", path], { GITHUB_TOKEN: "x" });
  assert.equal(r.code, 2);
  assert.match(r.err, /"virtual_machines": unknown key/);
});

Deno.test("cli: invalid TOML is reported by line without echoing the line (it may hold the token)", async () => {
  const path = await configFile('path = "acme"\ntoken = "ghp_brokensecret\n');
  const r = await run(["check", "-c", path]);
  assert.equal(r.code, 2);
  assert.match(r.err, /is not valid TOML/);
  assert.ok(!r.err.includes("ghp_brokensecret"), r.err);
});

Deno.test("cli: a missing config file and a missing token-file are config errors", async () => {
  assert.match(
    (await run(["check", "-c", "/nonexistent/config.toml"])).err,
    /cannot read "\/nonexistent\/config.toml": ENOENT/,
  );
  const path = await configFile('path = "acme"\ntoken-file = "/nonexistent/token"\n');
  const r = await run(["check", "-c", path]);
  assert.equal(r.code, 2);
  assert.match(r.err, /"token-file": cannot read/);
});

Deno.test("cli: a token pasted where the token-file path belongs is not echoed", async () => {
  const path = await configFile('path = "acme"\ntoken-file = "ghp_pastedsecret"\n');
  const r = await run(["check", "-c", path]);
  assert.equal(r.code, 2);
  assert.match(r.err, /"token-file": cannot read the file it names: ENOENT/);
  assert.ok(!r.err.includes("ghp_pastedsecret"));
});

Deno.test("cli: flags override the file and are validated like it", async () => {
  const path = await configFile('path = "acme"\n');
  const r = await run(["check", "-c", path, "--vm-memory", "lots"], { GITHUB_TOKEN: "x" });
  assert.equal(r.code, 2);
  assert.match(r.err, /"vm-memory": must be a size/);
});
