/**
 * The fake GitHub's REST handlers for self-hosted runners: `(context, request) -> response`, no sockets here
 * (github.ts adds authentication, rate limits, conditional requests, failure injection and OpenAPI checks).
 * Each handler mirrors https://docs.github.com/rest/actions/self-hosted-runners (and ...-runner-groups).
 */
import { Buffer } from "node:buffer";
import { randomBytes, randomUUID } from "node:crypto";
import { FAKE_RUNNER_VERSION, runnerFilename } from "./runner_app.ts";
import type { FakeState, RunnerRecord } from "./github_state.ts";

export interface RestRequest {
  method: string;
  /** The canonical path: /orgs/{org}/... or /repos/{owner}/{repo}/... (github.ts resolves /organizations/{id}). */
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface RestResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface RestContext {
  state: FakeState;
  /** The API's base URL (http://host:port). */
  apiUrl: string;
  /** Where the fake runner application talks to the fake (reachable from containers). */
  brokerUrl: string;
  /** The download host's base URL and the runner archive's sha256. */
  downloads: { url: string; sha256: string };
  /** How GitHub spells a canonical path in Link headers (/orgs/acme/x -> /organizations/123/x). */
  linkPath: (path: string) => string;
  /** GitHub's documentation page for the operation, for `documentation_url`. */
  docsUrl: string;
  now: () => number;
}

/** GitHub's error body: {message, documentation_url, status} (basic-error; `status` is a string). */
export function errorBody(status: number, message: string, docsUrl: string): RestResponse {
  return { status, body: { message, documentation_url: docsUrl, status: String(status) } };
}

export function handleRest(ctx: RestContext, req: RestRequest): RestResponse {
  const m = /^\/(orgs\/[^/]+|repos\/[^/]+\/[^/]+)\/actions\/(runners|runner-groups)(?:\/(.*))?$/.exec(req.path);
  if (!m) return errorBody(404, "Not Found", ctx.docsUrl);
  const [, scope, collection, rest = ""] = m;
  const route = `${req.method} ${collection}${rest ? "/" + rest.replace(/^\d+/, "{id}") : ""}`;
  const id = Number(/^(\d+)/.exec(rest)?.[1]);
  switch (route) {
    case "GET runners":
      return listRunners(ctx, req);
    case "GET runners/downloads":
      return { status: 200, body: downloads(ctx) };
    case "POST runners/generate-jitconfig":
      return generateJitConfig(ctx, scope, req.body);
    case "POST runners/registration-token":
    case "POST runners/remove-token":
      // Both answer 201 with a token that expires after one hour.
      return { status: 201, body: { token: token(), expires_at: new Date(ctx.now() + 3600_000).toISOString() } };
    case "GET runners/{id}":
    case "GET runners/{id}/labels": {
      const r = ctx.state.get(id);
      if (!r) return errorBody(404, "Not Found", ctx.docsUrl);
      if (route === "GET runners/{id}") return { status: 200, body: ctx.state.toApiRunner(r) };
      const labels = r.labels.map((l) => ctx.state.labelObject(l));
      return { status: 200, body: { total_count: labels.length, labels } };
    }
    case "DELETE runners/{id}":
      return deleteRunner(ctx, id);
    case "GET runner-groups":
      if (!scope.startsWith("orgs/")) break;
      return listGroups(ctx, scope, req);
  }
  return errorBody(404, "Not Found", ctx.docsUrl);
}

function listRunners(ctx: RestContext, req: RestRequest): RestResponse {
  const name = req.query.get("name");
  const all = ctx.state.list().filter((r) => name === null || r.name === name);
  const { items, link } = paginate(ctx, req, all);
  if (name === null) ctx.state.history.listings.push({ at: ctx.now(), runners: ctx.state.moments() });
  return {
    status: 200,
    headers: link ? { link } : {},
    body: { total_count: all.length, runners: items.map((r) => ctx.state.toApiRunner(r)) },
  };
}

function listGroups(ctx: RestContext, scope: string, req: RestRequest): RestResponse {
  const { items, link } = paginate(ctx, req, ctx.state.groups);
  const groups = items.map((g) => ({
    id: g.id,
    name: g.name,
    visibility: "all",
    default: g.id === 1,
    runners_url: `${ctx.apiUrl}/${scope}/actions/runner_groups/${g.id}/runners`,
    inherited: false,
    allows_public_repositories: false,
    restricted_to_workflows: false,
    selected_workflows: [],
    workflow_restrictions_read_only: false,
  }));
  return {
    status: 200,
    headers: link ? { link } : {},
    body: { total_count: ctx.state.groups.length, runner_groups: groups },
  };
}

/**
 * page/per_page pagination: per_page defaults to 30 and is capped at 100; the Link header lists prev, next, last,
 * first in that order, each URL the request's own with `page` replaced, on GitHub's id-based path
 * (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api). No Link on a single page.
 */
function paginate<T>(ctx: RestContext, req: RestRequest, all: T[]): { items: T[]; link?: string } {
  const asInt = (v: string | null, fallback: number) => (v !== null && /^\d+$/.test(v) ? Number(v) : fallback);
  const perPage = Math.min(100, asInt(req.query.get("per_page"), 30) || 30);
  const page = Math.max(1, asInt(req.query.get("page"), 1));
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const items = all.slice((page - 1) * perPage, page * perPage);
  if (last === 1 && page === 1) return { items };
  const url = (p: number) => {
    const q = new URLSearchParams(req.query);
    q.set("page", String(p));
    return `<${ctx.apiUrl}${ctx.linkPath(req.path)}?${q}>`;
  };
  const parts: string[] = [];
  if (page > 1) parts.push(`${url(Math.min(page - 1, last))}; rel="prev"`);
  if (page < last) parts.push(`${url(page + 1)}; rel="next"`, `${url(last)}; rel="last"`);
  if (page > 1) parts.push(`${url(1)}; rel="first"`);
  return { items, link: parts.join(", ") };
}

function downloads(ctx: RestContext): unknown[] {
  // GitHub lists every platform; the fake serves the same (Linux, sh) archive under each name.
  const platforms = ["osx-x64", "osx-arm64", "linux-x64", "linux-arm", "linux-arm64", "win-x64", "win-arm64"]
    .map((p) => p.split("-"));
  return platforms.map(([os, architecture]) => {
    const filename = os === "win"
      ? runnerFilename(os, architecture).replace(/\.tar\.gz$/, ".zip")
      : runnerFilename(os, architecture);
    return {
      os,
      architecture,
      // Like GitHub's: a release URL on another host (which redirects to blob storage); no token belongs there.
      download_url: `${ctx.downloads.url}/actions/runner/releases/download/v${FAKE_RUNNER_VERSION}/${filename}`,
      filename,
      sha256_checksum: ctx.downloads.sha256,
    };
  });
}

function deleteRunner(ctx: RestContext, id: number): RestResponse {
  const r = ctx.state.get(id);
  if (!r) return errorBody(404, "Not Found", ctx.docsUrl);
  // GitHub refuses to remove a runner that is running a job (422, message verbatim, stray quote included).
  if (r.busy) return errorBody(422, `Bad request - Runner "${r.name}" is still running a job"`, ctx.docsUrl);
  ctx.state.history.deregistrations.push({ at: ctx.now(), runner: ctx.state.moment(r) });
  ctx.state.remove(id);
  return { status: 204 };
}

function generateJitConfig(ctx: RestContext, scope: string, body: unknown): RestResponse {
  const b = (body ?? {}) as Record<string, unknown>;
  const invalid = (why: string) => errorBody(422, `Invalid request.\n\n${why}`, ctx.docsUrl);
  if (typeof body !== "object" || body === null || Array.isArray(body)) return invalid("The body must be an object.");
  for (const key of ["name", "runner_group_id", "labels"]) if (!(key in b)) return invalid(`"${key}" wasn't supplied.`);
  if (typeof b.name !== "string" || b.name === "") {
    return invalid(`For 'properties/name', ${JSON.stringify(b.name)} is not a string.`);
  }
  if (!Number.isInteger(b.runner_group_id)) {
    return invalid(`For 'properties/runner_group_id', ${JSON.stringify(b.runner_group_id)} is not an integer.`);
  }
  const labels = b.labels;
  if (!Array.isArray(labels) || labels.length < 1 || labels.length > 100 || labels.some((l) => typeof l !== "string")) {
    return invalid(`For 'properties/labels', ${JSON.stringify(labels)} is not an array of 1 to 100 strings.`);
  }
  const group = ctx.state.groups.find((g) => g.id === b.runner_group_id);
  if (!group) return errorBody(404, "Not Found", ctx.docsUrl);
  const secret = randomBytes(16).toString("hex");
  const record = ctx.state.register({
    name: b.name,
    os: "unknown", // GitHub's example: unknown until the runner application connects
    busy: false,
    ephemeral: true, // JIT runners are ephemeral: GitHub removes them after one job
    labels: labels as string[],
    runnerGroupId: group.id,
    connected: false,
    secret,
  });
  if (!record) return errorBody(409, `Already exists - A runner with the name ${b.name} already exists.`, ctx.docsUrl);
  const workFolder = typeof b.work_folder === "string" ? b.work_folder : "_work";
  return {
    status: 201,
    body: {
      runner: ctx.state.toApiRunner(record),
      encoded_jit_config: encodeJitConfig(ctx, scope, record, group.name, workFolder),
    },
  };
}

/**
 * GitHub's encoded_jit_config: base64 of a JSON object mapping the runner's config file names to base64 file
 * contents (actions/runner writes each into its root directory). The fake's `.runner` adds `fakeBrokerSecret`.
 */
function encodeJitConfig(
  ctx: RestContext,
  scope: string,
  r: RunnerRecord,
  poolName: string,
  workFolder: string,
): string {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const runnerFile = {
    agentId: r.id,
    agentName: r.name,
    poolId: r.runnerGroupId,
    poolName,
    serverUrl: ctx.brokerUrl,
    gitHubUrl: `https://github.com/${scope.replace(/^(orgs|repos)\//, "")}`,
    workFolder,
    ephemeral: true,
    useV2Flow: true,
    serverUrlV2: ctx.brokerUrl,
    fakeBrokerSecret: r.secret,
  };
  const credentials = {
    scheme: "OAuth",
    data: {
      clientId: randomUUID(),
      authorizationUrl: `${ctx.brokerUrl}/oauth2/token`,
      requireFipsCryptography: "True",
    },
  };
  const rsa = Object.fromEntries(
    ["d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q"].map((k) => [k, randomBytes(32).toString("base64")]),
  );
  return b64(JSON.stringify({
    ".runner": b64(JSON.stringify(runnerFile, null, 2)),
    ".credentials": b64(JSON.stringify(credentials, null, 2)),
    ".credentials_rsaparams": b64(JSON.stringify(rsa)),
  }));
}

/** Registration and remove tokens look like GitHub's: 29 upper-case letters and digits. */
function token(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return [...randomBytes(29)].map((b) => alphabet[b % 32]).join("");
}
