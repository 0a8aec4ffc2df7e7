/**
 * Failure injection for the fake GitHub, with presets shaped like GitHub's own failures
 * (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
 */

export interface FailureSpec {
  /** Only requests with this method (any when absent). */
  method?: string;
  /** Only requests whose path (as sent, or its /orgs|/repos form) contains this (any when absent). */
  pathIncludes?: string;
  status: number;
  /** Headers of the failure; they override the fake's own (e.g. x-ratelimit-remaining). */
  headers?: Record<string, string>;
  /** JSON body; a string is sent as text/html, like GitHub's HTML error pages. Default: GitHub's error shape. */
  body?: unknown;
  /** How many matching requests fail. Default 1; Infinity for all. */
  times?: number;
  /**
   * Perform the request before failing it. GitHub has been seen to register a JIT runner and still answer 5xx,
   * so a client's retry then meets 409 "Already exists" (runs-on/runs-on#30).
   */
  commit?: boolean;
}

export class Failures {
  readonly #pending: (FailureSpec & { left: number })[] = [];

  add(spec: FailureSpec): void {
    const left = spec.times ?? 1;
    if (!(left > 0)) throw new Error(`Cannot inject a failure ${left} times`);
    this.#pending.push({ ...spec, left });
  }

  /** The failure for this request, consuming one of its `times`; undefined when none matches. */
  take(method: string, rawPath: string, canonicalPath: string | undefined): FailureSpec | undefined {
    const found = this.#pending.find((f) =>
      (f.method === undefined || f.method.toUpperCase() === method.toUpperCase()) &&
      (f.pathIncludes === undefined || rawPath.includes(f.pathIncludes) ||
        (canonicalPath ?? "").includes(f.pathIncludes))
    );
    if (!found) return undefined;
    if (--found.left <= 0) this.#pending.splice(this.#pending.indexOf(found), 1);
    return found;
  }
}

type Where = Pick<FailureSpec, "method" | "pathIncludes" | "times">;

/** The primary rate limit ran out: 403, x-ratelimit-remaining 0 and the reset time (epoch seconds). */
export function primaryRateLimit(opts: Where & { resetAt?: number } = {}): FailureSpec {
  const resetAt = opts.resetAt ?? Math.floor(Date.now() / 1000) + 60;
  return {
    ...where(opts),
    status: 403,
    headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(resetAt) },
    body: {
      message:
        "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
      documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
      status: "403",
    },
  };
}

/** A secondary rate limit: 403 (or 429) with retry-after and GitHub's "secondary rate limit" message. */
export function secondaryRateLimit(opts: Where & { retryAfterSeconds?: number; status?: 403 | 429 } = {}): FailureSpec {
  const status = opts.status ?? 403;
  return {
    ...where(opts),
    status,
    headers: { "retry-after": String(opts.retryAfterSeconds ?? 1) },
    body: {
      message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
        "If you reach out to GitHub Support for help, please include the request ID.",
      documentation_url:
        "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
      status: String(status),
    },
  };
}

function where(opts: Where): Where {
  const out: Where = {};
  if (opts.method !== undefined) out.method = opts.method;
  if (opts.pathIncludes !== undefined) out.pathIncludes = opts.pathIncludes;
  if (opts.times !== undefined) out.times = opts.times;
  return out;
}
