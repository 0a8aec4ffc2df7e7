/**
 * The fence's edges that the real LXD here cannot show without touching state other tests share: a default profile
 * with a second NIC (a runner would get it unfenced), and the instance a fenced spawn asks LXD for.
 */
import assert from "node:assert/strict";
import { FakeLxd } from "./charm/fake_lxd.ts";
import { ensureRunnerNetwork } from "../lib/runner_network.ts";
import { spawnRunner, type SpawnSpec } from "../lib/spawn.ts";
import type { InstanceSpec } from "../lib/lxd.ts";

const spec = { name: "ghr-x", ipv6: false, denylist: [], needs: [] };

Deno.test("runner network: the default profile's NICs other than eth0 are reported for masking", async () => {
  const lxd = await FakeLxd.start();
  try {
    lxd.state.profile.devices.eth1 = { type: "nic", nictype: "macvlan", parent: "eno1" };
    lxd.state.profile.devices.data = { type: "disk", path: "/data", source: "/srv" };
    // createMissing false and no bridge yet: nothing is created, and the profile was still read.
    const r = await ensureRunnerNetwork(lxd.socketPath, spec, { createMissing: false });
    assert.deepEqual(r, { changes: [], maskNics: ["eth1"] });
    assert.ok(!lxd.requests.some((q) => q.method !== "GET"), "a pass without creates changes nothing");
  } finally {
    await lxd.close();
  }
});

Deno.test("spawn: a fenced runner gets an isolated NIC on the runners' bridge and every other NIC masked", async () => {
  let asked: InstanceSpec | undefined;
  const refuse = () => Promise.reject(new Error("stop here"));
  const deps = {
    github: {
      generateJitConfig: () => Promise.resolve({ runnerId: 7, encodedJitConfig: "x" }),
      deleteRunner: () => Promise.resolve("deleted"),
      findRunner: refuse,
    },
    lxd: {
      createInstance: (s: InstanceSpec) => {
        asked = s;
        return Promise.reject(new Error("stop here"));
      },
      deleteInstance: refuse,
      exec: refuse,
      pushFile: refuse,
    },
    runnerApp: refuse,
    runnerGroupId: () => Promise.resolve(1),
    image: () => Promise.resolve({}),
  };
  const base: SpawnSpec = {
    name: "p-0123abcd",
    type: "container",
    prefix: "p",
    scope: "s",
    image: "img",
    labels: [],
    vm: { cpu: 2, memory: "1GiB", disk: "10GiB" },
    container: { cpu: 0, memory: "" },
    environment: {},
  };
  // deno-lint-ignore no-explicit-any
  await assert.rejects(spawnRunner(deps as any, { ...base, network: { name: "ghr-p", maskNics: ["eth1"] } }));
  assert.deepEqual(asked?.devices, {
    eth0: { type: "nic", name: "eth0", network: "ghr-p", "security.port_isolation": "true" },
    eth1: { type: "none" },
  });
  // deno-lint-ignore no-explicit-any
  await assert.rejects(spawnRunner(deps as any, base));
  assert.deepEqual(asked?.devices, {}, "without the fence: the profile's NICs as they are");
});
