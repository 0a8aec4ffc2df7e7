/**
 * LXD's REST wire format, decoded (pure: no I/O). lib/lxd.ts does the talking.
 *
 * Contract (LXD REST API, doc/rest-api.md, "Return values"; shapes measured against LXD 5.0.2 here):
 * - sync:  `{"type":"sync","status_code":200,"metadata":...}`
 * - async: HTTP 202 `{"type":"async","operation":"/1.0/operations/<uuid>","metadata":<operation>}`
 * - error: HTTP status = `error_code`, `{"type":"error","error_code":404,"error":"Instance not found"}`
 * - an operation: `{"id","status":"Running"|"Success"|"Failure"|"Cancelled","status_code","err","metadata"}`
 */
import type { Instance, InstanceType } from "./types.ts";
import type { UnixResponse } from "./unix_http.ts";

/**
 * Any failure talking to LXD. `status` is LXD's `error_code` (= HTTP status) for a refused request, the operation's
 * `status_code` (400 Failure, 401 Cancelled) for a failed operation, and 0 when no answer came (transport error,
 * timeout, abort). The message names the operation and quotes values; it never contains a request body.
 */
export class LxdError extends Error {
  readonly status: number;
  /** What we were doing, e.g. `create instance "acme-1f2e3d4c"`. */
  readonly operation: string;
  constructor(operation: string, status: number, detail: string, options?: { cause?: unknown }) {
    super(`Cannot ${operation}: ${detail}`, options);
    this.name = "LxdError";
    this.status = status;
    this.operation = operation;
  }
}

/** An LXD background operation, reduced to what callers read. */
export interface LxdOperation {
  id: string;
  /** "Pending", "Running", "Success", "Failure", "Cancelled", ... */
  status: string;
  statusCode: number;
  err: string;
  metadata: Record<string, unknown>;
}

/** A decoded answer: sync metadata, or the operation an async request started. */
export type LxdAnswer =
  | { type: "sync"; metadata: unknown }
  | { type: "async"; operation: LxdOperation };

/** Decodes an LXD JSON answer, throwing LxdError for an error answer or a body that is not LXD's envelope. */
export function decodeAnswer(operation: string, res: UnixResponse): LxdAnswer {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(new TextDecoder().decode(res.body));
  } catch {
    body = {};
  }
  if (body.type === "error" || res.status >= 400) {
    const code = typeof body.error_code === "number" && body.error_code > 0 ? body.error_code : res.status;
    const text = typeof body.error === "string" && body.error ? body.error : "no error text";
    throw new LxdError(operation, code, `LXD returned ${code}: ${text}`);
  }
  if (body.type === "sync") return { type: "sync", metadata: body.metadata };
  if (body.type === "async") return { type: "async", operation: decodeOperation(operation, body.metadata) };
  throw new LxdError(operation, res.status, `LXD returned ${res.status} with a body that is not an LXD response`);
}

export function decodeOperation(operation: string, raw: unknown): LxdOperation {
  const op = raw as Record<string, unknown> | null;
  if (!op || typeof op.id !== "string" || typeof op.status !== "string") {
    throw new LxdError(operation, 0, "LXD returned an operation without an id or status");
  }
  return {
    id: op.id,
    status: op.status,
    statusCode: typeof op.status_code === "number" ? op.status_code : 0,
    err: typeof op.err === "string" ? op.err : "",
    metadata: op.metadata && typeof op.metadata === "object" ? op.metadata as Record<string, unknown> : {},
  };
}

/** Operation states after which LXD changes nothing more (LXD's api.StatusCode.IsFinal). */
export function isFinal(op: LxdOperation): boolean {
  return op.status === "Success" || op.status === "Failure" || op.status === "Cancelled";
}

/** Throws unless a finished operation succeeded; LXD's `err` carries the reason (e.g. a duplicate name). */
export function requireSuccess(operation: string, op: LxdOperation): LxdOperation {
  if (op.status === "Success") return op;
  const code = op.statusCode || 400;
  const outcome = op.status === "Cancelled" ? "was cancelled" : "failed";
  throw new LxdError(operation, code, `LXD operation ${outcome}: ${op.err || "no error text"}`);
}

/** One entry of `GET /1.0/instances?recursion=1`; `config` holds the instance's own keys, not its profiles'. */
export function toInstance(raw: unknown): Instance {
  const r = raw as Record<string, unknown> | null;
  const createdAt = typeof r?.created_at === "string" ? Date.parse(r.created_at) : NaN;
  if (
    !r || typeof r.name !== "string" || typeof r.status !== "string" || !isInstanceType(r.type) ||
    Number.isNaN(createdAt)
  ) {
    throw new LxdError("list instances", 0, `LXD returned an instance without name, type, status or created_at`);
  }
  const userKeys: Record<string, string> = {};
  for (const [key, value] of Object.entries((r.config ?? {}) as Record<string, unknown>)) {
    if (key.startsWith("user.") && typeof value === "string") userKeys[key] = value;
  }
  // LXD records the fingerprint an instance was created from: rotation compares it with what `image` names now.
  const base = (r.config as Record<string, unknown> | undefined)?.["volatile.base_image"];
  return {
    name: r.name,
    type: r.type,
    status: r.status,
    createdAt,
    userKeys,
    ...(typeof base === "string" ? { baseImage: base } : {}),
  };
}

export function isInstanceType(value: unknown): value is InstanceType {
  return value === "container" || value === "virtual-machine";
}

/**
 * The instance types a server can run. LXD >= 5.x with API extension `server_instance_type_info` lists them in
 * `environment.instance_types`; older servers (5.0.2 here) only name the working drivers in `environment.driver`,
 * e.g. "lxc | qemu" (lxc runs containers, qemu virtual machines).
 */
export function instanceTypesFrom(environment: Record<string, unknown>): string[] {
  const listed = environment.instance_types;
  if (Array.isArray(listed)) return listed.filter((t): t is string => typeof t === "string");
  const drivers = typeof environment.driver === "string" ? environment.driver.split("|").map((d) => d.trim()) : [];
  const types: string[] = [];
  if (drivers.includes("lxc")) types.push("container");
  if (drivers.includes("qemu")) types.push("virtual-machine");
  return types;
}

/**
 * The `source` of an instance created from an image. `ubuntu:`, `ubuntu-daily:` or `images:` followed by an alias
 * names an image on that public server (as the lxc CLI spells it); a 12-64 digit hex string is a (partial)
 * fingerprint, as in `lxc image list`; anything else is a local alias.
 */
export function imageSource(image: string): Record<string, string> {
  const remote = /^([a-z-]+):(.+)$/.exec(image);
  if (remote && remote[1] in IMAGE_REMOTES) {
    // LXD pulls the image from the simplestreams server and caches it (REST API "mode":"pull"; the public servers
    // are unreachable from the test hosts, so this path is covered by a unit test of its shape only).
    return {
      type: "image",
      mode: "pull",
      server: IMAGE_REMOTES[remote[1]],
      protocol: "simplestreams",
      alias: remote[2],
    };
  }
  return looksLikeFingerprint(image) ? { type: "image", fingerprint: image } : { type: "image", alias: image };
}

/** The lxc CLI's default remotes (lxc remote list). */
const IMAGE_REMOTES: Record<string, string> = {
  ubuntu: "https://cloud-images.ubuntu.com/releases",
  "ubuntu-daily": "https://cloud-images.ubuntu.com/daily",
  images: "https://images.lxd.canonical.com",
};

export function looksLikeFingerprint(image: string): boolean {
  return /^[0-9a-f]{12,64}$/.test(image);
}

export interface FileAttributes {
  uid?: number;
  gid?: number;
  mode?: number;
}

/**
 * Headers for `POST /1.0/instances/<n>/files`. LXD parses X-LXD-mode with Go's strconv.ParseInt(s, 0, 0), so the
 * mode must carry a leading 0 to be read as octal ("640" would be decimal 640), and it keeps only the 0777 bits.
 * The octet-stream content type matters: with a form content type LXD stores an empty file (measured).
 */
export function fileHeaders(type: "file" | "directory", attrs: FileAttributes): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/octet-stream", "x-lxd-type": type };
  if (type === "file") headers["x-lxd-write"] = "overwrite";
  if (attrs.uid !== undefined) headers["x-lxd-uid"] = String(checkId("uid", attrs.uid));
  if (attrs.gid !== undefined) headers["x-lxd-gid"] = String(checkId("gid", attrs.gid));
  if (attrs.mode !== undefined) {
    if (!Number.isInteger(attrs.mode) || attrs.mode < 0 || attrs.mode > 0o777) {
      throw new RangeError(`Cannot set file mode: mode must be an integer from 0 to 0o777, got ${attrs.mode}`);
    }
    headers["x-lxd-mode"] = "0" + attrs.mode.toString(8);
  }
  return headers;
}

function checkId(what: string, id: number): number {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
    throw new RangeError(`Cannot set file owner: ${what} must be a non-negative integer, got ${id}`);
  }
  return id;
}
