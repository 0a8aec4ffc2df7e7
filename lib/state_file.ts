/**
 * The last pass's summary on disk (<state-dir>/state.json), so other tools (the charm's update-status, a
 * monitoring script) can report without calling GitHub. Written atomically: a reader never sees half a file.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { PassReport } from "./reconcile.ts";
import type { Bucket } from "./classify.ts";

export interface StateSummary {
  updatedAt: string;
  prefix: string;
  ok: boolean;
  /** Why the last pass could not plan, if it could not. */
  error: string | null;
  /** Runners by bucket, as last observed: by the last pass, or by the watch after it (`run`). */
  counts: Record<Bucket, number>;
  /** When `counts` were observed. */
  observedAt: string;
  target: PassReport["target"];
  /** What the last pass did: "created", "removed", "kept-busy", "failed" counts. */
  actions: Record<"created" | "removed" | "keptBusy" | "failed", number>;
  /** The last pass's failures, for a status line. */
  failures: string[];
}

export function summarize(report: PassReport, now: number): StateSummary {
  const count = (f: (r: PassReport["results"][number]) => boolean) => report.results.filter(f).length;
  return {
    updatedAt: new Date(now).toISOString(),
    observedAt: report.startedAt,
    prefix: report.prefix,
    ok: report.ok,
    error: report.error ?? null,
    counts: report.before,
    target: report.target,
    actions: {
      created: count((r) => r.action.kind === "create" && r.outcome === "done"),
      removed: count((r) => r.action.kind === "remove" && r.outcome === "done"),
      keptBusy: count((r) => r.outcome === "kept-busy"),
      failed: count((r) => r.outcome === "failed"),
    },
    failures: [
      ...report.problems,
      ...report.results.filter((r) => r.outcome === "failed").map((r) => r.error ?? "unknown"),
    ].slice(0, 10),
  };
}

/**
 * What `run` writes: the last pass's summary, with the counts of the latest observation. Returns a summary only when
 * there is something new to write, so a watch that sees the same counts every second does not touch the disk.
 */
export class StateTracker {
  #last: StateSummary | undefined;

  passed(report: PassReport, now: number): StateSummary {
    return this.#last = summarize(report, now);
  }

  observed(counts: Record<Bucket, number>, now: number): StateSummary | undefined {
    if (!this.#last || JSON.stringify(this.#last.counts) === JSON.stringify(counts)) return undefined;
    const at = new Date(now).toISOString();
    return this.#last = { ...this.#last, counts, observedAt: at, updatedAt: at };
  }
}

export async function writeState(stateDir: string, summary: StateSummary): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  const path = join(stateDir, "state.json");
  await writeFile(`${path}.tmp`, JSON.stringify(summary, null, 2) + "\n", { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}

export async function readState(stateDir: string): Promise<StateSummary | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, "state.json"), "utf8")) as StateSummary;
  } catch {
    return undefined;
  }
}
