import assert from "node:assert/strict";
import { SpawnLatency } from "../lib/spawn_latency.ts";

Deno.test("spawn latency: measured once, when a booting or created runner first reads online", () => {
  const s = new SpawnLatency();
  assert.deepEqual(
    s.update([{ name: "old", bucket: "idle", ageMs: 90_000 }]),
    [],
    "already online at start: not ours to measure",
  );
  s.created("new");
  assert.deepEqual(
    s.update([{ name: "new", bucket: "booting", ageMs: 1_000 }, { name: "b", bucket: "booting", ageMs: 500 }]),
    [],
  );
  assert.deepEqual(
    s.update([{ name: "new", bucket: "idle", ageMs: 2_500 }, {
      name: "b",
      bucket: "busy",
      ageMs: 3_000,
      type: "virtual-machine",
    }]),
    [{ seconds: 2.5, type: "container" }, { seconds: 3, type: "virtual-machine" }],
  );
  assert.deepEqual(s.update([{ name: "new", bucket: "idle", ageMs: 9_000 }]), [], "measured only once");
  s.created("gone");
  assert.deepEqual(s.update([]), []);
  assert.deepEqual(s.update([{ name: "gone", bucket: "idle", ageMs: 1 }]), [], "forgotten once it disappeared");
});
