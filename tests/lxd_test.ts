/**
 * LxdClient against the real LXD daemon on this machine (no mocks). Parallel-safe: every instance is named
 * `lxdtest-<random hex>-...`, and each test deletes exactly the instances it created, in `finally`.
 * Needs the busybox image alias "github-runner-test" (scripts/lxd-test-host.sh) and user 1001 in it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectLxdSocket, LxdClient, LxdError } from "../lib/lxd.ts";
import { unixRequest } from "../lib/unix_http.ts";

const IMAGE = "github-runner-test";
const SOCKET = detectLxdSocket();
if (!SOCKET) throw new Error("Cannot run LXD tests: no LXD socket found (run scripts/lxd-test-host.sh)");
const lxd = new LxdClient({ socketPath: SOCKET });
const RUN = `lxdtest-${randomBytes(4).toString("hex")}`;
let serial = 0;
const newName = () => `${RUN}-${serial++}`;

/** Runs `fn` with a fresh started ephemeral container and always deletes it afterwards. */
async function withContainer(fn: (name: string) => Promise<void>, config?: Record<string, string>): Promise<void> {
  const name = newName();
  try {
    await lxd.createInstance({ name, type: "container", image: IMAGE, ephemeral: true, start: true, config });
    await fn(name);
  } finally {
    await lxd.deleteInstance(name);
  }
}

/** LXD's own view of an instance, straight from the REST API (404 -> undefined). */
async function rawGet(path: string): Promise<any> {
  const res = await unixRequest(SOCKET!, { method: "GET", path, timeoutMs: 10_000 });
  return res.status === 404 ? undefined : JSON.parse(new TextDecoder().decode(res.body)).metadata;
}

async function sh(name: string, script: string): Promise<string> {
  const r = await lxd.exec(name, ["sh", "-c", script]);
  assert.equal(r.exitCode, 0, `script failed: ${r.stderr}`);
  return r.stdout;
}

Deno.test("server() reports the version and that this host runs containers but no VMs", async () => {
  const info = await lxd.server();
  assert.match(info.serverVersion, /^\d+\.\d+/);
  assert.ok(info.instanceTypes.includes("container"));
  assert.ok(!info.instanceTypes.includes("virtual-machine"));
});

Deno.test("an ephemeral container is listed with its user keys, creation time and type", async () => {
  const before = Date.now();
  await withContainer(async (name) => {
    const mine = (await lxd.listInstances()).find((i) => i.name === name);
    assert.ok(mine, `listInstances does not show ${name}`);
    assert.equal(mine.type, "container");
    assert.equal(mine.status, "Running");
    assert.deepEqual(mine.userKeys, { "user.github-runner.prefix": RUN, "user.n": "1" });
    assert.ok(Number.isInteger(mine.createdAt));
    // LXD and this process share the host clock; a generous window only catches unit mistakes (s vs ms).
    assert.ok(Math.abs(mine.createdAt - before) < 3_600_000, `createdAt ${mine.createdAt} is not near ${before}`);
  }, { "user.github-runner.prefix": RUN, "user.n": "1", "boot.autostart": "false" });
});

Deno.test("exec returns stdout, stderr and exit codes, runs as the given user, and removes its logs", async () => {
  await withContainer(async (name) => {
    const r = await lxd.exec(name, ["sh", "-c", "id -u; id -g; pwd; echo oops >&2; exit 3"], {
      user: 1001,
      group: 1001,
      cwd: "/home/runner",
    });
    assert.deepEqual(r, { exitCode: 3, stdout: "1001\n1001\n/home/runner\n", stderr: "oops\n" });
    assert.deepEqual(await lxd.exec(name, ["true"]), { exitCode: 0, stdout: "", stderr: "" });
    await assert.rejects(lxd.exec(name, ["no-such-command"]), (e) => {
      assert.ok(e instanceof LxdError);
      assert.match(e.message, new RegExp(`^Cannot run a command in instance "${name}": .*Command not found`));
      return true;
    });
    const logs: string[] = await rawGet(`/1.0/instances/${name}/logs`);
    assert.deepEqual(logs.filter((l) => l.includes("/exec_")), [], "exec output logs were left behind");
  });
});

Deno.test("pushFile writes strings, bytes and host files with owner and mode; readFile reads them back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lxdtest-"));
  try {
    const big = randomBytes(3 * 1024 * 1024);
    writeFileSync(join(dir, "big.bin"), big);
    await withContainer(async (name) => {
      await lxd.pushFile(name, "/tmp/text", "héllo\n", { uid: 1001, gid: 1001, mode: 0o640 });
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      await lxd.pushFile(name, "/tmp/bytes", bytes, { mode: 0o600 });
      await lxd.pushFile(name, "/tmp/big", { fromFile: join(dir, "big.bin") }, { mode: 0o755 });
      assert.equal(
        await sh(name, "stat -c '%a %u %g %s %n' /tmp/text /tmp/bytes /tmp/big"),
        `640 1001 1001 7 /tmp/text\n600 0 0 256 /tmp/bytes\n755 0 0 ${big.length} /tmp/big\n`,
      );
      assert.deepEqual(await lxd.readFile(name, "/tmp/text"), new TextEncoder().encode("héllo\n"));
      assert.deepEqual(await lxd.readFile(name, "/tmp/bytes"), bytes);
      assert.deepEqual(await lxd.readFile(name, "/tmp/big"), new Uint8Array(big));
      await lxd.pushFile(name, "/tmp/text", "short", { mode: 0o644 }); // overwrite, not append
      assert.deepEqual(await lxd.readFile(name, "/tmp/text"), new TextEncoder().encode("short"));
      await assert.rejects(lxd.readFile(name, "/tmp/missing"), { name: "LxdError", status: 404 });
      await assert.rejects(lxd.pushFile(name, "/tmp/x", { fromFile: join(dir, "missing") }), {
        name: "LxdError",
        status: 0,
      });
      await assert.rejects(lxd.pushFile(name, "relative", "x"), TypeError);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("mkdir creates a directory with owner and mode, and accepts one that exists", async () => {
  await withContainer(async (name) => {
    await lxd.mkdir(name, "/home/runner/work", { uid: 1001, gid: 1001, mode: 0o750 });
    await lxd.mkdir(name, "/home/runner/work", { uid: 1001, gid: 1001, mode: 0o750 });
    assert.equal(await sh(name, "stat -c '%a %u %g %F' /home/runner/work"), "750 1001 1001 directory\n");
    await assert.rejects(lxd.readFile(name, "/home/runner/work"), { name: "LxdError", message: /is a directory/ });
    await assert.rejects(lxd.mkdir(name, "/no/such/parent"), { name: "LxdError", status: 404 });
  });
});

Deno.test("a persistent container stops, starts, and is deleted while running; deleting it again succeeds", async () => {
  const name = newName();
  try {
    await lxd.createInstance({ name, type: "container", image: IMAGE, start: true });
    await lxd.stopInstance(name, { force: true });
    assert.equal((await rawGet(`/1.0/instances/${name}`)).status, "Stopped");
    await lxd.startInstance(name);
    assert.equal((await rawGet(`/1.0/instances/${name}`)).status, "Running");
    await lxd.deleteInstance(name);
    assert.equal(await rawGet(`/1.0/instances/${name}`), undefined);
    await lxd.deleteInstance(name);
  } finally {
    await lxd.deleteInstance(name);
  }
});

Deno.test("deleteInstance of an instance that never existed succeeds", async () => {
  await lxd.deleteInstance(newName());
});

Deno.test("creating a duplicate name fails with an LxdError naming the instance", async () => {
  const name = newName();
  try {
    await lxd.createInstance({ name, type: "container", image: IMAGE });
    await assert.rejects(lxd.createInstance({ name, type: "container", image: IMAGE }), (e) => {
      assert.ok(e instanceof LxdError);
      assert.equal(e.operation, `create instance "${name}" from image "${IMAGE}"`);
      assert.match(e.message, new RegExp(`^Cannot create instance "${name}" .*already exists`));
      return true;
    });
  } finally {
    await lxd.deleteInstance(name);
  }
});

Deno.test("creating a virtual machine on this host fails saying VMs are not supported, and creates nothing", async () => {
  const name = newName();
  try {
    await assert.rejects(lxd.createInstance({ name, type: "virtual-machine", image: IMAGE }), (e) => {
      assert.ok(e instanceof LxdError);
      assert.match(e.message, /virtual machines are not supported/);
      return true;
    });
    assert.equal(await rawGet(`/1.0/instances/${name}`), undefined);
  } finally {
    await lxd.deleteInstance(name);
  }
});

Deno.test("an unknown image fails with an LxdError that names it and never echoes config values", async () => {
  const name = newName();
  try {
    const config = { "user.token": "s3cret-value" };
    await assert.rejects(lxd.createInstance({ name, type: "container", image: "no-such-image", config }), (e) => {
      assert.ok(e instanceof LxdError);
      assert.equal(e.status, 404);
      assert.match(e.message, /"no-such-image".*not found/);
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
    assert.equal(await lxd.imageExists("no-such-image"), false);
    assert.equal(await lxd.imageExists(IMAGE), true);
  } finally {
    await lxd.deleteInstance(name);
  }
});

Deno.test("a server that never answers fails with status 0 after the request timeout", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lxdtest-"));
  const path = join(dir, "silent.socket");
  const held: Socket[] = [];
  const server: Server = createServer((socket) => held.push(socket)); // accepts, reads, never answers
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    assert.equal(detectLxdSocket([join(dir, "missing"), dir, path, SOCKET!]), path);
    assert.equal(detectLxdSocket([join(dir, "missing"), dir]), undefined);
    const silent = new LxdClient({ socketPath: path, requestTimeoutMs: 200 });
    await assert.rejects(silent.listInstances(), {
      name: "LxdError",
      status: 0,
      message: /did not answer within 200 ms/,
    });
    const aborted = AbortSignal.abort(new Error("shutting down"));
    await assert.rejects(silent.pushFile("x", "/tmp/x", "SECRET-JIT", { signal: aborted }), (e) => {
      assert.ok(e instanceof LxdError && e.status === 0);
      assert.match(e.message, /aborted/);
      assert.doesNotMatch(e.message, /SECRET/);
      return true;
    });
    const absent = new LxdClient({ socketPath: join(dir, "missing") });
    await assert.rejects(absent.server(), { name: "LxdError", status: 0, message: /missing/ });
  } finally {
    held.forEach((s) => s.destroy());
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("an operation that outlives the call's timeout fails with status 0 and says so", async () => {
  await withContainer(async (name) => {
    await assert.rejects(lxd.exec(name, ["sleep", "5"], { timeoutMs: 1_500 }), (e) => {
      assert.ok(e instanceof LxdError);
      assert.equal(e.status, 0);
      assert.match(e.message, /did not finish within 1500 ms/);
      return true;
    });
  });
});

Deno.test("image() resolves an alias, a whole fingerprint and a partial one to the same image; none is undefined", async () => {
  const byAlias = await lxd.image(IMAGE);
  assert.ok(byAlias && /^[0-9a-f]{64}$/.test(byAlias.fingerprint), "an alias resolves to a whole fingerprint");
  assert.equal(byAlias.properties.release, "1.35", "the test image's release property (scripts/lxd-test-host.sh)");
  assert.deepEqual(await lxd.image(byAlias.fingerprint), byAlias);
  assert.deepEqual(await lxd.image(byAlias.fingerprint.slice(0, 12)), byAlias);
  assert.equal(await lxd.image(`${RUN}-no-such-alias`), undefined);
  assert.equal(await lxd.image("0".repeat(64)), undefined);
});

Deno.test("setUserKeys sets user.* keys on a running instance and refuses any other key", async () => {
  await withContainer(async (name) => {
    await lxd.setUserKeys(name, { "user.github-runner.finished-at": "1234" });
    const listed = (await lxd.listInstances()).find((i) => i.name === name);
    assert.equal(listed?.userKeys["user.github-runner.finished-at"], "1234");
    await assert.rejects(lxd.setUserKeys(name, { "limits.cpu": "1" }), /not a user\.\* key/);
  });
});

Deno.test("exec with output on-failure skips the logs on success and reads them on failure", async () => {
  await withContainer(async (name) => {
    assert.deepEqual(await lxd.exec(name, ["sh", "-c", "echo out"], { output: "on-failure" }), {
      exitCode: 0,
      stdout: "",
      stderr: "",
    });
    const failed = await lxd.exec(name, ["sh", "-c", "echo why >&2; exit 3"], { output: "on-failure" });
    assert.deepEqual(failed, { exitCode: 3, stdout: "", stderr: "why\n" });
  });
});
