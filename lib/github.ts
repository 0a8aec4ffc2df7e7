/**
 * The narrow GitHub client: exactly the runner endpoints this tool uses, over @octokit/rest with the official
 * throttling and retry plugins. Every request has a timeout; the token goes only to `apiUrl`.
 */
import { Octokit } from "@octokit/rest";
import { throttling } from "@octokit/plugin-throttling";
import { retry } from "@octokit/plugin-retry";
import Bottleneck from "bottleneck/light.js";
import type { Scope } from "./config.ts";
import type { GithubRunner } from "./types.ts";
import { toGithubError } from "./github_errors.ts";
import { GithubError } from "./errors.ts";

const ThrottledOctokit = Octokit.plugin(throttling, retry);

export interface GithubClientOptions {
  token: string;
  apiUrl: string;
  scope: Scope;
  /** Per HTTP request, including each retry. Default 30 s. */
  requestTimeoutMs?: number;
  /** Scales the retry plugin's back-off (1 s, 4 s, 9 s); tests shrink it. Default 1000. */
  retryBaseMs?: number;
  /** Called after every HTTP exchange: metrics and logs. */
  onResponse?: (info: ResponseInfo) => void;
  /** Called when GitHub asks us to wait (rate limit); return false to give up instead. */
  onRateLimit?: (info: { retryAfterS: number; secondary: boolean; route: string }) => void;
}

export interface ResponseInfo {
  method: string;
  route: string;
  status: number;
  rateLimitRemaining?: number;
  rateLimitReset?: number;
}

interface ApiRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: { name: string }[];
}

function toRunner(r: ApiRunner): GithubRunner {
  return {
    id: r.id,
    name: r.name,
    status: r.status === "online" ? "online" : "offline",
    busy: r.busy,
    labels: r.labels.map((l) => l.name),
  };
}

export interface RunnerDownload {
  os: string;
  architecture: string;
  download_url: string;
  filename: string;
  sha256_checksum?: string;
}

/** Waiting longer than this for a rate limit would blow a pass's deadline: fail the call instead. */
const MAX_RATE_LIMIT_WAIT_S = 60;

/**
 * Writes (JIT configs, deregistrations) at most WRITE_CONCURRENCY at once and WRITE_SPACING_MS apart: 20 a second.
 * GitHub's secondary limit is 900 points a minute with a write costing 5, i.e. 180 writes a minute: a burst of 100
 * spawns (500 points) fits, and a host cannot churn 180 runners a minute for long. Should it, GitHub answers with a
 * secondary rate limit and the throttling plugin waits its retry-after. The plugin's default (one write a second,
 * one at a time) would make a scale-up to 20 runners wait 20 s for its JIT configs; 350 ms spacing still 7 s
 * (measured, scripts/bench_scale.ts).
 */
const WRITE_SPACING_MS = 50;
const WRITE_CONCURRENCY = 10;

export class GithubClient {
  readonly #octokit: InstanceType<typeof ThrottledOctokit>;
  readonly #base: string;
  readonly #scope: Scope;
  /** Conditional-request cache for the runner list: url -> last ETag and body. A 304 costs no rate limit. */
  readonly #etags = new Map<string, { etag: string; data: unknown }>();

  /** The conditional-request cache, to keep across processes (a one-shot `reconcile` then also gets 304s). */
  exportEtags(): Record<string, { etag: string; data: unknown }> {
    return Object.fromEntries(this.#etags);
  }

  importEtags(saved: Record<string, { etag: string; data: unknown }>): void {
    for (const [key, value] of Object.entries(saved)) {
      if (typeof value?.etag === "string" && value.data !== undefined) this.#etags.set(key, value);
    }
  }
  #groupIds = new Map<string, number>();

  constructor(opts: GithubClientOptions) {
    this.#scope = opts.scope;
    this.#base = opts.scope.kind === "org"
      ? `/orgs/${opts.scope.org}`
      : `/repos/${opts.scope.owner}/${opts.scope.repo}`;
    const timeoutMs = opts.requestTimeoutMs ?? 30_000;
    const timedFetch: typeof fetch = (input, init) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      return fetch(input, { ...init, signal });
    };
    const onLimit =
      (secondary: boolean) =>
      (retryAfterS: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
        opts.onRateLimit?.({ retryAfterS, secondary, route: `${options.method} ${options.url}` });
        return retryCount < 1 && retryAfterS <= MAX_RATE_LIMIT_WAIT_S;
      };
    this.#octokit = new ThrottledOctokit({
      auth: opts.token,
      baseUrl: opts.apiUrl,
      userAgent: "github-runner",
      request: { fetch: timedFetch },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      throttle: {
        id: `github-runner-${opts.apiUrl}`,
        onRateLimit: onLimit(false),
        onSecondaryRateLimit: onLimit(true),
        write: new Bottleneck.Group({ maxConcurrent: WRITE_CONCURRENCY, minTime: WRITE_SPACING_MS }),
      },
      // 409 (name taken) and 429 (the throttling plugin's business) are not worth a blind retry.
      retry: {
        doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451],
        retryAfterBaseValue: opts.retryBaseMs ?? 1000,
      },
    });
    this.#octokit.hook.after("request", (res, options) => report(opts, options, res.status, res.headers));
    this.#octokit.hook.error("request", (err: any, options) => {
      report(opts, options, err?.status ?? 0, err?.response?.headers ?? {});
      throw err;
    });
  }

  /**
   * All runners of the scope, every page (per_page=100), each page a conditional request. Pages are not a
   * snapshot: a runner deleted between two page reads shifts the next page and one runner would go unseen, so
   * the walk must yield unique ids and exactly the total_count every page reported; otherwise it is read again
   * once, then the pass fails rather than plan on a list that may miss a busy runner.
   */
  async listRunners(signal?: AbortSignal): Promise<GithubRunner[]> {
    const first = await this.#walkRunners(signal);
    if (first.consistent) return first.runners;
    const second = await this.#walkRunners(signal);
    if (second.consistent) return second.runners;
    throw new GithubError(
      0,
      `GET ${this.#base}/actions/runners`,
      "server",
      `the runner list changed while it was read (${second.runners.length} runners read, GitHub counts ${second.total}); the next pass reads it again`,
    );
  }

  async #walkRunners(signal?: AbortSignal): Promise<{ runners: GithubRunner[]; total: number; consistent: boolean }> {
    const all: GithubRunner[] = [];
    const totals = new Set<number>();
    for (let page = 1;; page++) {
      const data = await this.#conditionalGet(`GET ${this.#base}/actions/runners`, { per_page: 100, page }, signal) as {
        total_count: number;
        runners: ApiRunner[];
      };
      totals.add(data.total_count);
      all.push(...data.runners.map(toRunner));
      if (data.runners.length < 100 || all.length >= data.total_count) {
        const total = data.total_count;
        const consistent = totals.size === 1 && all.length === total && new Set(all.map((r) => r.id)).size === total;
        return { runners: all, total, consistent };
      }
    }
  }

  /** One runner by name (GitHub's `name` filter), or undefined. Not conditional: used only before a removal. */
  async findRunner(name: string, signal?: AbortSignal): Promise<GithubRunner | undefined> {
    const data = await this.#call(`GET ${this.#base}/actions/runners`, { name, per_page: 100 }, signal) as {
      runners: ApiRunner[];
    };
    return data.runners.map(toRunner).find((r) => r.name === name);
  }

  /**
   * Deregisters a runner. GitHub answers 422 when the runner is running a job: that is "busy", and the caller
   * must keep the runner (REST docs, delete-a-self-hosted-runner-from-an-organization). 404: already gone.
   */
  async deleteRunner(runnerId: number, signal?: AbortSignal): Promise<"deleted" | "busy" | "gone"> {
    try {
      await this.#call(`DELETE ${this.#base}/actions/runners/{runner_id}`, { runner_id: runnerId }, signal);
      return "deleted";
    } catch (e) {
      if (e instanceof GithubError && e.status === 422) return "busy";
      if (e instanceof GithubError && e.status === 404) return "gone";
      throw e;
    }
  }

  /** A single-use JIT runner configuration. The encoded config is a secret: never log it. */
  async generateJitConfig(
    spec: { name: string; labels: string[]; runnerGroupId: number },
    signal?: AbortSignal,
  ): Promise<{ runnerId: number; encodedJitConfig: string }> {
    const data = await this.#call(`POST ${this.#base}/actions/runners/generate-jitconfig`, {
      name: spec.name,
      labels: spec.labels,
      runner_group_id: spec.runnerGroupId,
    }, signal) as { runner: { id: number }; encoded_jit_config: string };
    return { runnerId: data.runner.id, encodedJitConfig: data.encoded_jit_config };
  }

  /** The id of a runner group by name; repositories have only the default group (id 1). Cached. */
  async runnerGroupId(group: string, signal?: AbortSignal): Promise<number> {
    if (this.#scope.kind === "repo") return 1;
    const cached = this.#groupIds.get(group);
    if (cached !== undefined) return cached;
    const groups: { id: number; name: string; default?: boolean }[] = [];
    for (let page = 1;; page++) {
      const data = await this.#call(`GET ${this.#base}/actions/runner-groups`, { per_page: 100, page }, signal) as {
        runner_groups: { id: number; name: string; default?: boolean }[];
      };
      groups.push(...data.runner_groups);
      if (data.runner_groups.length < 100) break;
    }
    const found = groups.find((g) =>
      g.name.toLowerCase() === group.toLowerCase() || (group === "default" && g.default)
    );
    if (!found) {
      const known = groups.slice(0, 20).map((g) => `"${g.name}"`).join(", ") + (groups.length > 20 ? ", ..." : "");
      throw new GithubError(
        404,
        `GET ${this.#base}/actions/runner-groups`,
        "not-found",
        `no runner group "${group}" (groups: ${known})`,
      );
    }
    this.#groupIds.set(group, found.id);
    return found.id;
  }

  /** Where to download the runner application, with its sha256. Conditional: usually a free 304. */
  async runnerDownloads(signal?: AbortSignal): Promise<RunnerDownload[]> {
    return await this.#conditionalGet(`GET ${this.#base}/actions/runners/downloads`, {}, signal) as RunnerDownload[];
  }

  async #conditionalGet(route: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const key = `${route}?${new URLSearchParams(params as Record<string, string>)}`;
    const cached = this.#etags.get(key);
    try {
      const res = await this.#raw(
        route,
        { ...params, headers: cached ? { "if-none-match": cached.etag } : {} },
        signal,
      );
      const etag = res.headers.etag;
      if (etag) this.#etags.set(key, { etag, data: res.data });
      return res.data;
    } catch (e) {
      if (cached && (e as { status?: number }).status === 304) return cached.data;
      throw toGithubError(e, route);
    }
  }

  async #call(route: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    try {
      return (await this.#raw(route, params, signal)).data;
    } catch (e) {
      throw toGithubError(e, route);
    }
  }

  #raw(route: string, params: Record<string, unknown>, signal?: AbortSignal) {
    return this.#octokit.request(route, { ...params, request: { signal } });
  }
}

function report(
  opts: GithubClientOptions,
  options: { method: string; url: string },
  status: number,
  headers: Record<string, unknown>,
) {
  if (!opts.onResponse) return;
  const num = (h: unknown) => (h === undefined || h === null || h === "" ? undefined : Number(h));
  opts.onResponse({
    method: options.method,
    route: routeOf(options.url, opts.apiUrl),
    status,
    rateLimitRemaining: num(headers["x-ratelimit-remaining"]),
    rateLimitReset: num(headers["x-ratelimit-reset"]),
  });
}

/** A URL's path with ids replaced by placeholders, for low-cardinality metric labels. */
function routeOf(url: string, apiUrl: string): string {
  const path = url.startsWith(apiUrl) ? url.slice(apiUrl.length) : url;
  return path.split("?")[0].replace(/\/runners\/\d+/, "/runners/{runner_id}");
}
