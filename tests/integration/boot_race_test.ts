/**
 * A spawn pushes the runner tarball right after the instance starts, while a systemd image is still booting. On the
 * Debian base, systemd-tmpfiles-setup empties /tmp during boot: a tarball pushed there vanished in 4 of 4 tries
 * (found by scripts/bench_image.ts). This pins that the push target survives boot, on a real systemd image.
 */
import assert from "node:assert/strict";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { PUSHED_TARBALL } from "../../lib/instance_scripts.ts";

const DEBIAN_BASE = Deno.env.get("GITHUB_RUNNER_TEST_DEBIAN_IMAGE") ?? "github-runner-test-debian";

Deno.test("a tarball pushed before or during a systemd boot survives it; one in /tmp would not", async () => {
  const lxd = new LxdClient({ socketPath: detectLxdSocket()! });
  const name = `t${crypto.randomUUID().slice(0, 6)}-boot`;
  try {
    // Pushed before the start, so the whole boot runs after the push: the race, lost every time, not by luck.
    await lxd.createInstance({ name, type: "container", image: DEBIAN_BASE, ephemeral: false, start: false }, {
      timeoutMs: 180_000,
    });
    const bytes = new Uint8Array(1 << 20).fill(7);
    await lxd.pushFile(name, PUSHED_TARBALL, bytes, { mode: 0o600 });
    await lxd.pushFile(name, "/tmp/control", bytes, { mode: 0o600 });
    await lxd.startInstance(name);
    // Early in boot systemd's bus is not up yet ("Failed to connect to bus"): ask again until it answers.
    const waitBoot = `for i in $(seq 1 300); do s=$(systemctl is-system-running --wait 2>/dev/null)
case "$s" in running|degraded) echo "$s"; exit 0;; esac; sleep 0.2; done; echo "boot did not finish: $s"`;
    const booted = await lxd.exec(name, ["sh", "-c", waitBoot], { timeoutMs: 120_000 });
    assert.match(booted.stdout, /running|degraded/, booted.stdout + booted.stderr);
    const seen = await lxd.exec(name, ["sh", "-c", `stat -c %s ${PUSHED_TARBALL}; ls /tmp/control 2>&1; true`]);
    const [size, control] = seen.stdout.trim().split("\n");
    assert.equal(Number(size), bytes.length, `the pushed tarball is gone: ${seen.stdout}${seen.stderr}`);
    // The control shows what boot does to /tmp here: without it this test could not tell a safe path from luck.
    assert.match(control, /No such file/, "boot emptied /tmp after the push");
  } finally {
    await lxd.deleteInstance(name).catch(() => {});
  }
});
