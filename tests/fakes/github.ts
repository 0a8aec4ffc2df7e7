/**
 * FakeGithub: a fake api.github.com for self-hosted runners, faithful enough to run the real reconciler (octokit)
 * against, and checked against GitHub's own OpenAPI description on every exchange (`violations`).
 *
 * One HTTP server carries the REST API (github_api.ts in front of github_rest.ts) and, under /_broker/, the broker
 * the fake runner application talks to (github_broker.ts); a second server on another port is the download host
 * for the runner archive (github_http.ts). State lives in github_state.ts; failure presets in github_failures.ts.
 */
import { readFile } from "node:fs/promises";
import { Broker, type BrokerLogEntry } from "./github_broker.ts";
import { type RequestLogEntry, RestFront, type Violation } from "./github_api.ts";
import type { FailureSpec } from "./github_failures.ts";
import { type DownloadHost, type DownloadRequest, listen, type Listener, startDownloadHost } from "./github_http.ts";
import { type FakeHistory, type FakeJob, type FakeRunner, FakeState, type RunnerMoment } from "./github_state.ts";
import { runnerApi } from "./openapi.ts";
import { FAKE_RUNNER_VERSION, fakeRunnerTarballBytes, sha256Hex } from "./runner_app.ts";

export type { FailureSpec } from "./github_failures.ts";
export { primaryRateLimit, secondaryRateLimit } from "./github_failures.ts";
export type {
  BrokerLogEntry,
  DownloadRequest,
  FakeHistory,
  FakeJob,
  FakeRunner,
  RequestLogEntry,
  RunnerMoment,
  Violation,
};

export interface FakeGithubOptions {
  /** Address to listen on: "127.0.0.1", or the LXD bridge ("10.200.77.1") when containers must reach the fake. */
  hostname: string;
  /** The API token clients must send. Default "ghp_fakeGithubToken0000000000000000000". */
  token?: string;
  /** Primary rate limit per hour. Default 5000. */
  rateLimit?: number;
  /** A connected runner that has not talked to the broker for this long is offline. Default 30 000. */
  offlineAfterMs?: number;
  /** How long the broker holds a poll that has no job. Default 5 000; at most 10 000 (run.sh waits 30 s). */
  pollHoldMs?: number;
  /** The runner archive the download host serves: a path or the bytes. Default: built from runner-app/. */
  runnerTarball?: string | Uint8Array;
}

export class FakeGithub {
  /** The API's base URL (what the manager's github-api-url would be). */
  readonly url: string;
  readonly token: string;
  /** Base URL of the broker, as written into JIT configs. */
  readonly brokerUrl: string;
  /** Base URL of the download host (another port: another origin, like GitHub's release downloads). */
  readonly downloadUrl: string;
  readonly #state: FakeState;
  readonly #broker: Broker;
  readonly #front: RestFront;
  readonly #api: Listener;
  readonly #downloads: DownloadHost;

  private constructor(api: Listener, downloads: DownloadHost, state: FakeState, broker: Broker, front: RestFront) {
    this.#api = api;
    this.#downloads = downloads;
    this.#state = state;
    this.#broker = broker;
    this.#front = front;
    this.url = api.url;
    this.brokerUrl = `${api.url}/_broker`;
    this.downloadUrl = downloads.url;
    this.token = front.token;
  }

  static async start(opts: FakeGithubOptions): Promise<FakeGithub> {
    const pollHoldMs = opts.pollHoldMs ?? 5000;
    if (pollHoldMs > 10_000) throw new Error(`Cannot start the fake GitHub: pollHoldMs ${pollHoldMs} is over 10000`);
    const archive = typeof opts.runnerTarball === "string"
      ? new Uint8Array(await readFile(opts.runnerTarball))
      : opts.runnerTarball ?? fakeRunnerTarballBytes();
    const token = opts.token ?? "ghp_fakeGithubToken0000000000000000000";
    const state = new FakeState({ now: () => Date.now(), offlineAfterMs: opts.offlineAfterMs ?? 30_000 });
    const broker = new Broker(state, { pollHoldMs });
    state.onChange = () => broker.wake();
    runnerApi(); // compile the OpenAPI fixture now, not inside the first request
    const ref: { front?: RestFront } = {};
    const api = await listen(opts.hostname, 0, async (req, body, res) => {
      const url = new URL(req.url ?? "/", "http://fake");
      const method = req.method ?? "GET";
      if (url.pathname.startsWith("/_broker/")) {
        const path = url.pathname.slice("/_broker".length);
        const a = await broker.handle(method, path, url.searchParams, body.toString());
        res.writeHead(a.status, { "content-type": "text/plain" });
        res.end(a.body);
        return;
      }
      const answer = ref.front!.answer(method, url, req.headers, body);
      res.writeHead(answer.status, answer.headers);
      res.end(answer.text);
    });
    const downloads = await startDownloadHost(opts.hostname, archive);
    ref.front = new RestFront({
      token,
      rateLimit: opts.rateLimit ?? 5000,
      context: {
        state,
        apiUrl: api.url,
        brokerUrl: `${api.url}/_broker`,
        downloads: { url: downloads.url, sha256: sha256Hex(archive) },
        now: () => Date.now(),
      },
    });
    return new FakeGithub(api, downloads, state, broker, ref.front);
  }

  async close(): Promise<void> {
    this.#broker.close();
    await Promise.all([this.#api.close(), this.#downloads.close()]);
  }

  /** REST requests that counted against the primary rate limit. */
  get counted(): number {
    return this.#front.used;
  }

  /** Every REST request, in order. */
  get requests(): RequestLogEntry[] {
    return this.#front.requests;
  }

  /** Where requests or responses did not match GitHub's OpenAPI description; [] when all conformed. */
  get violations(): Violation[] {
    return this.#front.violations;
  }

  /** Requests the download host saw; and whether any of them carried an Authorization header. */
  get downloadRequests(): DownloadRequest[] {
    return this.#downloads.requests;
  }
  get downloadSawAuthorization(): boolean {
    return this.#downloads.requests.some((r) => r.hadAuthorization);
  }

  /** What the broker saw (connects, polls, job reports), for debugging tests. */
  get brokerLog(): BrokerLogEntry[] {
    return this.#broker.log;
  }

  /** Broker polls held open right now: runner applications waiting for a job. */
  get pollsWaiting(): number {
    return this.#broker.waiting;
  }

  /**
   * Registers a runner directly (another prefix, a stale offline registration...). Its status stays as given
   * (updateRunner changes it); no runner application stands behind it, so it takes no jobs.
   */
  addRunner(
    spec: {
      name: string;
      status: "online" | "offline";
      busy: boolean;
      labels?: string[];
      ephemeral?: boolean;
      os?: string;
    },
  ): FakeRunner {
    const record = this.#state.register({
      name: spec.name,
      os: spec.os ?? "linux",
      busy: spec.busy,
      ephemeral: spec.ephemeral ?? true,
      labels: spec.labels ?? ["self-hosted", "Linux", "X64"],
      runnerGroupId: 1,
      version: FAKE_RUNNER_VERSION,
      connected: spec.status === "online",
      pinnedStatus: spec.status,
    });
    if (!record) throw new Error(`Cannot add runner "${spec.name}": a runner with that name exists`);
    return this.#state.snapshot(record);
  }

  /** Forces a runner's status and/or busy flag (e.g. GitHub marking a silent runner offline). */
  updateRunner(name: string, patch: { status?: "online" | "offline"; busy?: boolean }): FakeRunner {
    const r = this.#state.byName(name);
    if (!r) throw new Error(`Cannot update runner "${name}": no such runner`);
    if (patch.status !== undefined) r.pinnedStatus = patch.status;
    if (patch.busy !== undefined) r.busy = patch.busy;
    return this.#state.snapshot(r);
  }

  runners(): FakeRunner[] {
    return this.#state.list().map((r) => this.#state.snapshot(r));
  }

  /** Adds an org runner group; returns its id (Default is 1). */
  addRunnerGroup(name: string): number {
    const id = Math.max(...this.#state.groups.map((g) => g.id)) + 1;
    this.#state.groups.push({ id, name });
    return id;
  }

  /** The next `times` (default 1) matching REST requests fail as described. See primaryRateLimit() and co. */
  injectFailure(spec: FailureSpec): void {
    this.#front.injectFailure(spec);
  }

  /**
   * Queues a job of `seconds`. With a runner name only that runner takes it; without, the first idle connected
   * runner that polls and carries every label in `labels` does (as GitHub queues a job until a runner is free).
   */
  assignJob(runnerName: string | undefined, opts: { seconds: number; labels?: string[] }): FakeJob;
  assignJob(opts: { seconds: number; labels?: string[] }): FakeJob;
  assignJob(
    a: string | undefined | { seconds: number; labels?: string[] },
    b?: { seconds: number; labels?: string[] },
  ): FakeJob {
    const [name, opts] = typeof a === "object" ? [undefined, a] : [a, b!];
    if (!Number.isInteger(opts.seconds) || opts.seconds < 0) {
      throw new Error(`Cannot queue a job of ${opts.seconds} seconds`);
    }
    const target = name === undefined ? undefined : this.#state.byName(name);
    if (name !== undefined && !target) throw new Error(`Cannot assign a job to runner "${name}": no such runner`);
    if (target && !target.secret) {
      // Nothing would ever poll for it: fail now rather than leave a test waiting.
      throw new Error(
        `Cannot assign a job to runner "${name}": it came from addRunner, so no runner application ` +
          `polls for it; use updateRunner("${name}", { busy: true })`,
      );
    }
    return { ...this.#state.queueJob({ seconds: opts.seconds, labels: opts.labels, target: name }) };
  }

  jobs(): FakeJob[] {
    return this.#state.jobs();
  }

  /** Every runner as GitHub knows it now, with whether its application connected and whether it holds a job. */
  moments(): RunnerMoment[] {
    return this.#state.moments();
  }

  /** Every full runner listing answered and every deregistration done, with what GitHub knew then. */
  get history(): FakeHistory {
    return this.#state.history;
  }

  /** Polls `predicate` every intervalMs (default 50) until it holds; throws after timeoutMs. */
  async waitFor(
    predicate: (fake: FakeGithub) => boolean | Promise<boolean>,
    opts: { timeoutMs: number; intervalMs?: number; what?: string },
  ): Promise<void> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      if (await predicate(this)) return;
      if (Date.now() >= deadline) {
        throw new Error(`Timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? "a condition"}`);
      }
      await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 50));
    }
  }
}
