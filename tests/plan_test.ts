/** Table-driven tests of the planner: every rule of a pass is a row. */
import assert from "node:assert/strict";
import { type Action, plan, planFlush } from "../lib/plan.ts";
import type { Desired, GithubRunner, Instance, InstanceType, Observed } from "../lib/types.ts";
import { KEY_FINISHED_AT, KEY_PREFIX, KEY_RUNNER_ID, KEY_SCOPE } from "../lib/names.ts";

const NOW = Date.parse("2026-11-28T12:00:00Z");
const MIN = 60_000;
const P = "acme";
const SCOPE = "https://api.github.com/acme";
const desired = (over: Partial<Desired> = {}): Desired => ({
  prefix: P,
  containers: 2,
  virtualMachines: 0,
  maxRunners: 0,
  bootTimeoutMs: 10 * MIN,
  finishedGraceMs: 2 * MIN,
  maxRunnerAgeMs: 0,
  scope: SCOPE,
  ...over,
});

let nextId = 1;
/** A runner with an instance. `ageMin` is the instance's age. */
function r(
  hex: string,
  s: {
    status?: "online" | "offline";
    busy?: boolean;
    ageMin?: number;
    lxd?: string;
    type?: InstanceType;
    prefix?: string;
    noInstance?: boolean;
    noRunner?: boolean;
    unmarked?: boolean;
    /** The scope the instance was marked with (default: none, as before scopes were marked). */
    scope?: string;
    /** The image fingerprint the instance was made from. */
    image?: string;
    /** Made by a version that registered after creating: no runner-id key on the instance. */
    legacy?: boolean;
    /** A pass marked the instance finished this many minutes ago. */
    finishedMin?: number;
  },
): Partial<Observed> {
  const name = `${s.prefix ?? P}-${hex.padStart(8, "0")}`;
  const id = nextId++;
  const runners: GithubRunner[] = s.noRunner
    ? []
    : [{ id, name, status: s.status ?? "online", busy: s.busy ?? false, labels: [] }];
  const keys: Record<string, string> = { [KEY_PREFIX]: s.prefix ?? P };
  if (s.scope) keys[KEY_SCOPE] = s.scope;
  if (!s.legacy) keys[KEY_RUNNER_ID] = String(id);
  if (s.finishedMin !== undefined) keys[KEY_FINISHED_AT] = String(NOW - s.finishedMin * MIN);
  const instances: Instance[] = s.noInstance ? [] : [{
    name,
    type: s.type ?? "container",
    status: s.lxd ?? "Running",
    createdAt: NOW - (s.ageMin ?? 1) * MIN,
    userKeys: s.unmarked ? {} : keys,
    ...(s.image ? { baseImage: s.image } : {}),
  }];
  return { runners, instances };
}
function obs(...parts: Partial<Observed>[]): Observed {
  return { runners: parts.flatMap((p) => p.runners ?? []), instances: parts.flatMap((p) => p.instances ?? []) };
}
/** A compact, order-insensitive rendering of actions: "create container", "remove acme-0000000a (surplus)". */
function show(actions: Action[]): string[] {
  return actions.map((a) =>
    a.kind === "create"
      ? `create ${a.type}`
      : a.kind === "mark-finished"
      ? `mark ${a.name.slice(P.length + 1)} finished`
      : `remove ${a.name.slice(P.length + 1)} (${a.cause}${a.busy ? ", busy" : ""})`
  ).sort();
}
const n = (hex: string) => hex.padStart(8, "0");

const rows: { name: string; observed: Observed; desired?: Partial<Desired>; expect: string[] }[] = [
  { name: "empty host fills the target", observed: obs(), expect: ["create container", "create container"] },
  { name: "steady state does nothing", observed: obs(r("a", {}), r("b", {})), expect: [] },
  {
    name: "busy runners do not count toward the idle target",
    observed: obs(r("a", { busy: true }), r("b", {})),
    expect: ["create container"],
  },
  {
    name: "booting instances count toward the target (no double spawn)",
    observed: obs(r("a", { status: "offline", ageMin: 2 }), r("b", { status: "offline", ageMin: 1 })),
    expect: [],
  },
  {
    name: "surplus idle removed oldest first; busy never",
    observed: obs(
      r("a", { ageMin: 5 }),
      r("b", { ageMin: 50 }),
      r("c", { ageMin: 20 }),
      r("d", { busy: true, ageMin: 90 }),
    ),
    desired: { containers: 1 },
    expect: [`remove ${n("b")} (surplus)`, `remove ${n("c")} (surplus)`],
  },
  {
    name: "surplus beyond the idle runners takes booting ones, youngest first",
    observed: obs(
      r("a", { ageMin: 30 }),
      r("b", { status: "offline", ageMin: 2 }),
      r("c", { status: "offline", ageMin: 1 }),
    ),
    desired: { containers: 1 },
    expect: [`remove ${n("a")} (surplus)`, `remove ${n("c")} (surplus)`],
  },
  {
    name: "max-runner-age replaces idle runners older than it; busy ones finish their job",
    observed: obs(r("a", { ageMin: 61 }), r("b", { ageMin: 5 }), r("c", { busy: true, ageMin: 300 })),
    desired: { maxRunnerAgeMs: 60 * MIN },
    expect: [`remove ${n("a")} (max-age)`, "create container"],
  },
  {
    name: "max-runner-age rotates one runner per type and pass, within the cap",
    observed: obs(r("a", { ageMin: 61 }), r("b", { ageMin: 90 })),
    desired: { maxRunnerAgeMs: 60 * MIN, maxRunners: 2 },
    expect: [`remove ${n("b")} (max-age)`],
  },
  {
    name: "a webhook's busy hint beats GitHub's lagging idle flag: replaced at once, never removed",
    observed: { ...obs(r("a", { ageMin: 30 }), r("b", {})), busyHints: [`${P}-${n("a")}`] },
    desired: { containers: 2 },
    expect: ["create container"],
  },
  {
    name: "a busy hint protects from surplus removal too",
    observed: { ...obs(r("a", { ageMin: 30 })), busyHints: [`${P}-${n("a")}`] },
    desired: { containers: 0 },
    expect: [],
  },
  {
    name: "runners of an old scope (path changed) drain: never removed, not counted, replaced",
    observed: obs(
      r("a", { scope: "https://api.github.com/old", noRunner: true, ageMin: 300 }),
      r("b", { scope: SCOPE }),
    ),
    desired: { containers: 2, maxRunners: 3 },
    expect: ["create container"],
  },
  {
    name: "a draining instance counts toward the cap",
    observed: obs(r("a", { scope: "https://api.github.com/old", noRunner: true }), r("b", { scope: SCOPE })),
    desired: { containers: 2, maxRunners: 2 },
    expect: [],
  },
  {
    name: "a drained instance that powered off is deleted",
    observed: obs(r("a", { scope: "https://api.github.com/old", noRunner: true, lxd: "Stopped" })),
    desired: { containers: 0 },
    expect: [`remove ${n("a")} (stopped)`],
  },
  {
    name: "a rebuilt image replaces idle runners of the old one, one per type and pass; busy ones finish",
    observed: {
      ...obs(
        r("a", { image: "old", ageMin: 30 }),
        r("b", { image: "old", ageMin: 20 }),
        r("c", { image: "old", busy: true }),
      ),
      currentImage: "new",
    },
    desired: { containers: 2 },
    expect: [`remove ${n("a")} (outdated)`, "create container"],
  },
  {
    name: "runners of the current image are not rotated; an unknown current image rotates nothing",
    observed: { ...obs(r("a", { image: "new" }), r("b", { image: "old" })) },
    desired: { containers: 2 },
    expect: [],
  },
  {
    name: "target 0 removes every idle runner and keeps the busy one",
    observed: obs(r("a", {}), r("b", { busy: true })),
    desired: { containers: 0 },
    expect: [`remove ${n("a")} (surplus)`],
  },
  {
    name: "busy flag wins even on a stopped instance or an offline registration",
    observed: obs(r("a", { busy: true, lxd: "Stopped" }), r("b", { busy: true, status: "offline", ageMin: 60 })),
    desired: { containers: 0 },
    expect: [],
  },
  {
    name: "offline registration without instance is deregistered",
    observed: obs(r("a", { status: "offline", noInstance: true }), r("b", {}), r("c", {})),
    expect: [`remove ${n("a")} (orphan-registration)`],
  },
  {
    name: "online registration without instance is left until GitHub marks it offline",
    observed: obs(r("a", { noInstance: true }), r("b", {}), r("c", {})),
    expect: [],
  },
  {
    name: "offline but booting (younger than boot-timeout) is not dead",
    observed: obs(r("a", { status: "offline", ageMin: 9 }), r("b", {})),
    expect: [],
  },
  {
    name: "an older version's instance without a registration is removed, not counted, and replaced",
    observed: obs(r("a", { noRunner: true, legacy: true, ageMin: 1 }), r("b", {})),
    expect: [`remove ${n("a")} (unregistered)`, "create container"],
  },
  {
    name: "a finished runner (registration gone, instance running) is marked, not counted, and replaced",
    observed: obs(r("a", { noRunner: true, ageMin: 1 }), r("b", {})),
    expect: [`mark ${n("a")} finished`, "create container"],
  },
  {
    name: "a finished runner within its grace to power off is left alone",
    observed: obs(r("a", { noRunner: true, finishedMin: 1 }), r("b", {}), r("c", {})),
    expect: [],
  },
  {
    name: "a finished runner still running after its grace is deleted",
    observed: obs(r("a", { noRunner: true, finishedMin: 3 }), r("b", {}), r("c", {})),
    expect: [`remove ${n("a")} (finished)`],
  },
  {
    name: "a finished runner does not count toward the cap",
    observed: obs(r("a", { noRunner: true, finishedMin: 1 }), r("b", { busy: true })),
    desired: { containers: 1, maxRunners: 2 },
    expect: ["create container"],
  },
  {
    name: "offline registration after boot-timeout: deregistered and deleted, replaced",
    observed: obs(r("a", { status: "offline", ageMin: 11 }), r("b", {})),
    expect: [`remove ${n("a")} (boot-timeout)`, "create container"],
  },
  {
    name: "stopped and errored instances are deleted and replaced",
    observed: obs(r("a", { lxd: "Stopped", status: "offline" }), r("b", { lxd: "Error", noRunner: true })),
    expect: [`remove ${n("a")} (stopped)`, `remove ${n("b")} (stopped)`, "create container", "create container"],
  },
  {
    name: "other prefixes are invisible, even ones that extend ours",
    observed: obs(
      r("a", { prefix: "other", status: "offline", noInstance: true }),
      r("b", { prefix: "acme-1", lxd: "Stopped" }),
      { runners: [{ id: 99, name: "acme-1-0000000c", status: "offline", busy: false, labels: [] }] },
      r("d", {}),
      r("e", {}),
    ),
    expect: [],
  },
  {
    name: "an instance with our name pattern but without our mark is not ours",
    observed: obs(r("a", { unmarked: true, lxd: "Stopped", noRunner: true }), r("b", {}), r("c", {})),
    expect: [],
  },
  {
    name: "max-runners caps creation, counting busy runners",
    observed: obs(r("a", { busy: true }), r("b", { busy: true })),
    desired: { containers: 2, maxRunners: 3 },
    expect: ["create container"],
  },
  {
    name: "over the cap: idle runners removed down to it, busy kept",
    observed: obs(r("a", { busy: true }), r("b", { busy: true }), r("c", { ageMin: 3 }), r("d", { ageMin: 4 })),
    desired: { containers: 2, maxRunners: 3 },
    expect: [`remove ${n("d")} (over-cap)`],
  },
  {
    name: "the cap shares room between containers and virtual machines",
    observed: obs(),
    desired: { containers: 2, virtualMachines: 2, maxRunners: 2 },
    expect: ["create container", "create virtual-machine"],
  },
  {
    name: "containers and virtual machines have separate targets",
    observed: obs(r("a", { type: "virtual-machine" }), r("b", { type: "virtual-machine" })),
    desired: { containers: 1, virtualMachines: 1 },
    expect: [`remove ${n("a")} (surplus)`, "create container"],
  },
  {
    name: "busy flag flips back to idle: still only surplus idle goes, through deregistration first",
    observed: obs(r("a", { ageMin: 30 }), r("b", { ageMin: 1 })),
    desired: { containers: 1 },
    expect: [`remove ${n("a")} (surplus)`],
  },
];

for (const row of rows) {
  Deno.test(`plan: ${row.name}`, () => {
    assert.deepEqual(show(plan(row.observed, desired(row.desired), NOW).actions), [...row.expect].sort());
  });
}

Deno.test("plan: every removal of a registered runner deregisters before deleting", () => {
  const { actions } = plan(
    obs(r("a", { ageMin: 30 }), r("b", { status: "offline", ageMin: 11 })),
    desired({ containers: 0 }),
    NOW,
  );
  for (const a of actions) {
    assert.equal(a.kind, "remove");
    if (a.kind === "remove") {
      assert.equal(typeof a.runnerId, "number", `${a.name} has a runner id to deregister first`);
      assert.equal(a.instance, true);
    }
  }
});

Deno.test("plan: time is a parameter; the same observation later times out", () => {
  const o = obs(r("a", { status: "offline", ageMin: 5 }), r("b", {}));
  assert.deepEqual(show(plan(o, desired(), NOW).actions), []);
  assert.deepEqual(
    show(plan(o, desired(), NOW + 6 * MIN).actions),
    [`remove ${n("a")} (boot-timeout)`, "create container"].sort(),
  );
});

Deno.test("planFlush: an aged runner is flushed once, not twice", () => {
  const o = obs(r("a", { ageMin: 120 }));
  assert.deepEqual(show(planFlush(o, desired({ maxRunnerAgeMs: 60 * MIN }), NOW, { busy: false }).actions), [
    `remove ${n("a")} (flush)`,
  ]);
});

Deno.test("planFlush: idle and booting go, busy only with --busy, other prefixes never", () => {
  const o = obs(
    r("a", {}),
    r("b", { busy: true }),
    r("c", { status: "offline", ageMin: 1 }),
    r("d", { prefix: "other" }),
  );
  assert.deepEqual(show(planFlush(o, desired(), NOW, { busy: false }).actions), [
    `remove ${n("a")} (flush)`,
    `remove ${n("c")} (flush)`,
  ]);
  const drainingToo = obs(r("e", { scope: "https://api.github.com/old", noRunner: true }));
  assert.deepEqual(show(planFlush(drainingToo, desired(), NOW, { busy: false }).actions), []);
  assert.deepEqual(show(planFlush(drainingToo, desired(), NOW, { busy: true }).actions), [
    `remove ${n("e")} (flush, busy)`,
  ]);
  assert.deepEqual(show(planFlush(o, desired(), NOW, { busy: true }).actions), [
    `remove ${n("a")} (flush)`,
    `remove ${n("b")} (flush, busy)`,
    `remove ${n("c")} (flush)`,
  ]);
});

Deno.test("plan: admission refuses creates the host cannot hold, and says why", () => {
  const GiB = 2 ** 30;
  const needs = {
    container: { memory: 2 * GiB, disk: 0 },
    "virtual-machine": { memory: 7 * GiB, disk: 10 * GiB },
  };
  const observed = { ...obs(), capacity: { memoryFree: 10 * GiB, diskFree: 100 * GiB } };
  const p = plan(observed, desired({ containers: 2, virtualMachines: 2, needs }), NOW);
  // In order: container (8 GiB left), VM (1 GiB left), container refused, VM refused.
  assert.deepEqual(show(p.actions), ["create container", "create virtual-machine"]);
  assert.deepEqual(p.problems, [
    "Not creating 1 container runner(s): each needs 2.0 GiB memory, the host has 10.0 GiB memory free",
    "Not creating 1 virtual-machine runner(s): each needs 7.0 GiB memory and 10.0 GiB disk, the host has 10.0 GiB memory and 100.0 GiB disk free",
  ]);
  const unknown = plan(obs(), desired({ containers: 2, virtualMachines: 2, needs }), NOW);
  assert.equal(unknown.actions.length, 4, "unknown capacity refuses nothing");
  assert.deepEqual(unknown.problems, []);
  const noLimits = plan({ ...obs(), capacity: { memoryFree: 0, diskFree: 0 } }, desired({ containers: 1 }), NOW);
  assert.deepEqual(show(noLimits.actions), ["create container"], "no declared need: not checked");
});

/**
 * The churn situations of issue 8, each measured on the real LXD before the fix: jobs finish together, GitHub drops
 * their registrations at once, and their instances take a few seconds to power off. Only creates and removals are
 * compared (the finished runners' marks are bookkeeping): each row failed on the planner that counted a finished
 * instance as booting.
 */
/** 3 idle runners, and 2 whose jobs just finished: registrations gone, instances still powering off. */
const threeIdleTwoFinished = obs(
  r("a", { ageMin: 30 }),
  r("b", { ageMin: 20 }),
  r("c", { ageMin: 10 }),
  r("d", { noRunner: true, ageMin: 40 }),
  r("e", { noRunner: true, ageMin: 40 }),
);
const churn: { name: string; observed: Observed; desired: Partial<Desired>; expect: string[] }[] = [
  {
    name: "3 idle at target 3, 2 jobs just finished: no idle runner is removed",
    observed: threeIdleTwoFinished,
    desired: { containers: 3 },
    expect: [],
  },
  {
    name: "target 2, 3 idle after a burst, 2 jobs just finished: exactly one surplus idle runner goes",
    observed: threeIdleTwoFinished,
    desired: { containers: 2 },
    expect: [`remove ${n("a")} (surplus)`],
  },
  {
    name: "a runner goes busy while another one's job just finished: the busy one is replaced",
    observed: obs(r("a", { busy: true }), r("b", {}), r("c", { noRunner: true, ageMin: 5 })),
    desired: { containers: 2 },
    expect: ["create container"],
  },
];
for (const row of churn) {
  Deno.test(`plan under churn: ${row.name}`, () => {
    const changes = plan(row.observed, desired(row.desired), NOW).actions.filter((a) => a.kind !== "mark-finished");
    assert.deepEqual(show(changes), row.expect);
  });
}

Deno.test("plan: a finished runner's removal asks GitHub by name first (no runner id), then deletes", () => {
  const { actions } = plan(obs(r("a", { noRunner: true, finishedMin: 5 }), r("b", {}), r("c", {})), desired(), NOW);
  assert.deepEqual(actions, [{
    kind: "remove",
    name: `${P}-${n("a")}`,
    cause: "finished",
    reason: "registration gone 300s ago and the instance is still running",
    runnerId: undefined,
    instance: true,
  }]);
});

Deno.test("plan: the finished mark records the pass's own time", () => {
  const { actions } = plan(obs(r("a", { noRunner: true }), r("b", {}), r("c", {})), desired(), NOW);
  assert.deepEqual(actions, [{
    kind: "mark-finished",
    name: `${P}-${n("a")}`,
    at: NOW,
    reason: "registration gone, instance running",
  }]);
});
