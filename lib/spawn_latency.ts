/**
 * Spawn latency as operators mean it: from instance creation to the runner being online. Runners are tracked
 * from when this process first sees them booting (or creates them), and measured when they first read idle or
 * busy; runners that were already online when the service started are never measured.
 */
import type { Bucket } from "./classify.ts";
import type { InstanceType } from "./types.ts";

export interface Online {
  seconds: number;
  type: InstanceType;
}

export class SpawnLatency {
  readonly #booting = new Set<string>();

  /** Feed every observation; returns the latencies (seconds) of runners that just came online. */
  update(runners: { name: string; bucket: Bucket; ageMs: number; type?: InstanceType }[]): Online[] {
    const online: Online[] = [];
    const present = new Set<string>();
    for (const r of runners) {
      present.add(r.name);
      if (r.bucket === "booting") this.#booting.add(r.name);
      else if ((r.bucket === "idle" || r.bucket === "busy") && this.#booting.delete(r.name)) {
        online.push({ seconds: r.ageMs / 1000, type: r.type ?? "container" });
      }
    }
    for (const name of this.#booting) if (!present.has(name)) this.#booting.delete(name);
    return online;
  }

  /** True while a runner is being tracked: the service then watches more often, for an exact measurement. */
  get tracking(): boolean {
    return this.#booting.size > 0;
  }

  /** Runners this process created: measured even when no observation caught them booting. */
  created(name: string): void {
    this.#booting.add(name);
  }
}
