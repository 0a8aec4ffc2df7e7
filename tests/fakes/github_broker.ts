/**
 * The fake GitHub's "broker": what the fake runner application (runner-app/run.sh) talks to instead of
 * broker.actions.githubusercontent.com. It lives under /_broker/, which is not part of GitHub's REST API, so it is
 * neither authenticated with the API token, rate-limited nor OpenAPI-checked.
 *
 * Protocol (every call is a POST whose body is the runner's secret from the JIT config, so busybox wget can send it
 * with --post-file and the secret never appears in a process's argv; answers are plain text):
 *   /runners/{id}/connect?version=V   the runner goes online; a JIT config connects once (409 after)
 *   /runners/{id}/poll                long poll: "job <jobId> <seconds>" or "none" after the hold time
 *   /runners/{id}/jobs/{job}/started  the runner is busy
 *   /runners/{id}/jobs/{job}/renew    keeps the job's lease (and the runner online) while it runs
 *   /runners/{id}/jobs/{job}/done     the job finished: an ephemeral runner is removed, as GitHub does
 * 404 means the runner registration is gone (deleted through the API); the runner application then exits.
 */
import type { FakeState } from "./github_state.ts";

export interface BrokerAnswer {
  status: number;
  body: string;
}

export interface BrokerLogEntry {
  runnerId: number;
  action: string;
  status: number;
}

export class Broker {
  readonly log: BrokerLogEntry[] = [];
  readonly #state: FakeState;
  readonly #pollHoldMs: number;
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(state: FakeState, opts: { pollHoldMs: number }) {
    this.#state = state;
    this.#pollHoldMs = opts.pollHoldMs;
  }

  /** Polls being held open right now (runner applications waiting for a job). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Something changed (a job queued, a runner removed): waiting polls look again. */
  wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Answers every waiting poll now; later polls answer at once. */
  close(): void {
    this.#closed = true;
    this.wake();
  }

  /** `path` is what follows /_broker. */
  async handle(method: string, path: string, query: URLSearchParams, secret: string): Promise<BrokerAnswer> {
    const m = /^\/runners\/(\d+)\/(connect|poll|jobs\/(\d+)\/(started|renew|done))$/.exec(path);
    if (method !== "POST" || !m) return { status: 404, body: "unknown broker call\n" };
    const runnerId = Number(m[1]);
    const action = m[4] ?? m[2];
    const answer = await this.#handle(runnerId, action, Number(m[3]), query, secret.trim());
    this.log.push({ runnerId, action, status: answer.status });
    return answer;
  }

  async #handle(
    id: number,
    action: string,
    jobId: number,
    query: URLSearchParams,
    secret: string,
  ): Promise<BrokerAnswer> {
    const state = this.#state;
    const r = state.get(id);
    if (!r) return { status: 404, body: "runner not found\n" };
    if (!r.secret || secret !== r.secret) return { status: 401, body: "bad runner credentials\n" };
    if (action === "connect") {
      if (r.connected) return { status: 409, body: "this JIT configuration was already used\n" };
      Object.assign(r, { connected: true, os: "linux", version: query.get("version") ?? "unknown" });
      state.touch(r);
      return { status: 200, body: "ok\n" };
    }
    if (!r.connected) return { status: 409, body: "connect first\n" };
    state.touch(r);
    if (action === "poll") return await this.#poll(id);
    const job = r.job;
    if (!job || job.id !== jobId) return { status: 409, body: "not this runner's job\n" };
    if (action === "started") {
      if (job.state !== "assigned") return { status: 409, body: `job is ${job.state}\n` };
      Object.assign(job, { state: "running", startedAt: state.now });
      r.busy = true;
    } else if (action === "done") {
      if (job.state !== "running") return { status: 409, body: `job is ${job.state}\n` };
      Object.assign(job, { state: "done", endedAt: state.now });
      r.job = undefined;
      r.busy = false;
      if (r.ephemeral) state.remove(r.id);
    }
    return { status: 200, body: "ok\n" };
  }

  async #poll(id: number): Promise<BrokerAnswer> {
    const deadline = Date.now() + this.#pollHoldMs;
    for (;;) {
      const r = this.#state.get(id);
      if (!r) return { status: 404, body: "runner not found\n" };
      this.#state.touch(r);
      const job = this.#state.takeJob(r);
      if (job) return { status: 200, body: `job ${job.id} ${job.seconds}\n` };
      const left = deadline - Date.now();
      if (this.#closed || left <= 0) return { status: 200, body: "none\n" };
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }
}
