/**
 * What GitHub does around every REST call, in front of the handlers of github_rest.ts:
 * - authentication: `Authorization: token X` or `Bearer X`; none -> 401 "Requires authentication", a wrong token ->
 *   401 "Bad credentials" (https://docs.github.com/rest/authentication/authenticating-to-the-rest-api)
 * - the primary rate limit: x-ratelimit-limit/remaining/used/reset/resource on every answer, a counter, and 403 with
 *   x-ratelimit-remaining: 0 once it runs out (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api)
 * - strong ETags on GET; a matching If-None-Match -> 304 with no body, not counted against the limit
 *   (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api)
 * - Link headers on GitHub's id-based paths (/organizations/{id}/..., /repositories/{id}/...), served as aliases
 * - injected failures, the request log, and the OpenAPI check of every request and response (`violations`).
 */
import { Buffer } from "node:buffer";
import { createHash, randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Failures, type FailureSpec } from "./github_failures.ts";
import { errorBody, handleRest, type RestContext, type RestResponse } from "./github_rest.ts";
import { runnerApi } from "./openapi.ts";

export interface RequestLogEntry {
  method: string;
  /** As requested (may be /organizations/{id}/... when the client followed a Link header), without the query. */
  path: string;
  query: string;
  status: number;
  counted: boolean;
  hadIfNoneMatch: boolean;
}

export interface Violation {
  kind: "request" | "response";
  method: string;
  path: string;
  status?: number;
  message: string;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  text?: string;
}

type Outcome = { response: RestResponse; counted: boolean; checkedPath?: string; injected?: boolean };

export class RestFront {
  readonly requests: RequestLogEntry[] = [];
  readonly violations: Violation[] = [];
  readonly failures = new Failures();
  used = 0;
  readonly token: string;
  readonly #limit: number;
  readonly #context: Omit<RestContext, "docsUrl" | "linkPath">;
  readonly #scopeIds = new Map<string, number>();
  #resetAt = Math.floor(Date.now() / 1000) + 3600;

  constructor(opts: { token: string; rateLimit: number; context: Omit<RestContext, "docsUrl" | "linkPath"> }) {
    this.token = opts.token;
    this.#limit = opts.rateLimit;
    this.#context = opts.context;
  }

  injectFailure(spec: FailureSpec): void {
    this.failures.add(spec);
  }

  answer(method: string, url: URL, headers: IncomingHttpHeaders, body: Buffer): HttpAnswer {
    const { response, counted, checkedPath, injected } = this.#outcome(method, url, headers, body);
    const status = response.status;
    if (counted) this.used++;
    const out: Record<string, string> = {
      "x-github-api-version-selected": "2022-11-28",
      "x-github-media-type": "github.v3; format=json",
      "x-github-request-id": randomUUID().toUpperCase().slice(0, 23),
      "x-ratelimit-limit": String(this.#limit),
      "x-ratelimit-remaining": String(Math.max(0, this.#limit - this.used)),
      "x-ratelimit-used": String(this.used),
      "x-ratelimit-reset": String(this.#resetAt),
      "x-ratelimit-resource": "core",
      ...response.headers,
    };
    const html = typeof response.body === "string";
    const text = response.body === undefined ? undefined : html ? String(response.body) : JSON.stringify(response.body);
    if (text !== undefined) out["content-type"] = html ? "text/html; charset=utf-8" : "application/json; charset=utf-8";
    out["content-length"] = String(text === undefined ? 0 : Buffer.byteLength(text));
    // An injected failure is the test's choice, possibly one GitHub does not describe (an HTML 502): not checked.
    if (checkedPath && !injected) {
      for (const message of runnerApi().validateResponse(method, checkedPath, status, response.body)) {
        this.violations.push({ kind: "response", method, path: url.pathname, status, message });
      }
    }
    const hadIfNoneMatch = headers["if-none-match"] !== undefined;
    this.requests.push({ method, path: url.pathname, query: url.search, status, counted, hadIfNoneMatch });
    return { status, headers: out, text };
  }

  #outcome(method: string, url: URL, headers: IncomingHttpHeaders, raw: Buffer): Outcome {
    const path = this.#canonicalPath(url.pathname);
    const docsUrl = (path && runnerApi().findOperation(method, path)?.docsUrl) || "https://docs.github.com/rest";
    const fail = (status: number, message: string, counted = true): Outcome => ({
      response: errorBody(status, message, docsUrl),
      counted,
      checkedPath: path,
    });
    const auth = /^(?:token|bearer)\s+(\S+)$/i.exec(String(headers.authorization ?? "").trim());
    if (!auth) return fail(401, "Requires authentication", false);
    if (auth[1] !== this.token) return fail(401, "Bad credentials", false);
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString()) : undefined;
    } catch {
      return fail(400, "Problems parsing JSON");
    }
    if (path === undefined) return { response: errorBody(404, "Not Found", docsUrl), counted: true };
    for (const message of runnerApi().validateRequest(method, path, url.searchParams, body)) {
      this.violations.push({ kind: "request", method, path: url.pathname, message });
    }
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (nowSeconds >= this.#resetAt) [this.used, this.#resetAt] = [0, nowSeconds + 3600];
    const context = { ...this.#context, docsUrl, linkPath: (p: string) => this.#linkPath(p) };
    const handle = () => handleRest(context, { method, path, query: url.searchParams, body });
    const failure = this.failures.take(method, url.pathname, path);
    if (failure) {
      if (failure.commit) handle();
      const body = failure.body ?? errorBody(failure.status, "Server Error", docsUrl).body;
      return {
        response: { status: failure.status, headers: failure.headers, body },
        counted: true,
        checkedPath: path,
        injected: true,
      };
    }
    if (this.used >= this.#limit) {
      const limited = fail(403, "API rate limit exceeded for user ID 1.", false);
      limited.response.headers = { "x-ratelimit-remaining": "0" };
      return limited;
    }
    const response = handle();
    if (method === "GET" && response.status === 200) {
      const etag = `"${createHash("sha256").update(JSON.stringify(response.body)).digest("hex")}"`;
      response.headers = {
        ...response.headers,
        etag,
        "cache-control": "private, max-age=60, s-maxage=60",
        vary: "Accept, Authorization, Cookie",
      };
      if (etagMatches(headers["if-none-match"], etag)) {
        return { response: { status: 304, headers: response.headers }, counted: false, checkedPath: path };
      }
    }
    return { response, counted: true, checkedPath: path };
  }

  /** /organizations/{id}/... and /repositories/{id}/... (Link header paths) -> /orgs/{org}/..., /repos/{o}/{r}/... */
  #canonicalPath(path: string): string | undefined {
    const alias = /^\/(organizations|repositories)\/(\d+)(\/.*)?$/.exec(path);
    if (!alias) return path;
    const kind = alias[1] === "organizations" ? "orgs/" : "repos/";
    for (const [scope, id] of this.#scopeIds) {
      if (id === Number(alias[2]) && scope.startsWith(kind)) return `/${scope}${alias[3] ?? ""}`;
    }
    return undefined;
  }

  #linkPath(path: string): string {
    const m = /^\/(orgs\/[^/]+|repos\/[^/]+\/[^/]+)(\/.*)?$/.exec(path);
    if (!m) return path;
    const isOrg = m[1].startsWith("orgs/");
    if (!this.#scopeIds.has(m[1])) this.#scopeIds.set(m[1], (isOrg ? 9_100_000 : 7_100_000) + this.#scopeIds.size);
    return `/${isOrg ? "organizations" : "repositories"}/${this.#scopeIds.get(m[1])}${m[2] ?? ""}`;
  }
}

/** If-None-Match: a list of entity tags or "*"; GET uses weak comparison (RFC 9110 13.1.2), so W/ is ignored. */
function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = String(header).split(",").map((t) => t.trim().replace(/^W\//, ""));
  return tags.includes("*") || tags.includes(etag);
}
