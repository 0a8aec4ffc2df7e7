/**
 * The narrow LXD client: instances, exec and files over LXD's REST API on its unix socket.
 *
 * Every call has one deadline (`timeoutMs`, default `requestTimeoutMs`) covering all its requests and operation
 * waits, plus the caller's optional AbortSignal. Failures are LxdError. Async requests (HTTP 202) are followed to
 * the end with `GET /1.0/operations/<id>/wait?timeout=N` (LXD REST API, "Operations").
 */
import { statSync } from "node:fs";
import type { Instance, InstanceType } from "./types.ts";
import {
  fileHeaders,
  imageSource,
  instanceTypesFrom,
  looksLikeFingerprint,
  LxdError,
  requireSuccess,
  toInstance,
} from "./lxd_wire.ts";
import { type Call, GONE, gone, LxdConnection, remaining, startCall } from "./lxd_operations.ts";

export { LxdError };

export interface LxdClientOptions {
  socketPath: string;
  /** Default time limit of one client call, in milliseconds. Default 30_000. */
  requestTimeoutMs?: number;
  /** LXD project; default: the server's default project. */
  project?: string;
}

/** Options every call takes. `timeoutMs` overrides the client's `requestTimeoutMs` for this call. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface InstanceSpec {
  name: string;
  type: InstanceType;
  /** A local image alias, or a (partial, 12+ hex digits) fingerprint. */
  image: string;
  config?: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  /** Default: LXD applies the "default" profile. */
  profiles?: string[];
  ephemeral?: boolean;
  /** Start the instance after creating it. Default false. */
  start?: boolean;
}

export interface StopOptions extends CallOptions {
  force?: boolean;
  /** Graceful shutdown limit in seconds (ignored with force). Default 30. */
  timeoutS?: number;
}

export interface ExecOptions extends CallOptions {
  user?: number;
  group?: number;
  cwd?: string;
  /**
   * "on-failure": stdout and stderr are read (and their log files deleted) only when the command fails; a success
   * returns them empty and leaves the two small log files to be deleted with the instance. Saves four round trips.
   * Default "always".
   */
  output?: "always" | "on-failure";
}

/** An image as LXD describes it (GET /1.0/images/FINGERPRINT). */
export interface ImageInfo {
  fingerprint: string;
  /** The image's properties: LXD's images carry `os`, `release` ("noble", "bookworm"), `description`. */
  properties: Record<string, string>;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface FileOptions extends CallOptions {
  uid?: number;
  gid?: number;
  mode?: number;
}

export interface ServerInfo {
  serverVersion: string;
  /** e.g. ["container"] on a host without VM support. */
  instanceTypes: string[];
}

export const DEFAULT_LXD_SOCKETS: readonly string[] = [
  "/var/snap/lxd/common/lxd/unix.socket", // the snap, as on production hosts
  "/var/lib/lxd/unix.socket", // distribution packages (Debian's LXD 5.0.2 here)
];

/** The first candidate path that exists and is a unix socket. */
export function detectLxdSocket(candidates: readonly string[] = DEFAULT_LXD_SOCKETS): string | undefined {
  return candidates.find((path) => {
    try {
      return statSync(path).isSocket();
    } catch {
      return false; // missing or unreadable: not a candidate
    }
  });
}

const enc = encodeURIComponent;

export class LxdClient {
  readonly #lxd: LxdConnection;
  readonly #timeoutMs: number;
  /** Instance types, remembered after the first successful server() call: they change only with a restart. */
  #instanceTypes?: string[];

  constructor(opts: LxdClientOptions) {
    if (!opts.socketPath) throw new TypeError("Cannot create LXD client: socketPath is empty");
    const timeoutMs = opts.requestTimeoutMs ?? 30_000;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError(`Cannot create LXD client: requestTimeoutMs must be positive, got ${timeoutMs}`);
    }
    this.#lxd = new LxdConnection(opts.socketPath, opts.project);
    this.#timeoutMs = timeoutMs;
  }

  async server(opts?: CallOptions): Promise<ServerInfo> {
    const call = this.#call("read LXD server information", opts);
    const meta = (await this.#lxd.sync(call, { method: "GET", path: "/1.0" })) as Record<string, unknown> | null;
    const env = (meta?.environment ?? {}) as Record<string, unknown>;
    this.#instanceTypes = instanceTypesFrom(env);
    return { serverVersion: String(env.server_version ?? ""), instanceTypes: this.#instanceTypes };
  }

  async listInstances(opts?: CallOptions): Promise<Instance[]> {
    const call = this.#call("list instances", opts);
    const list = await this.#lxd.sync(call, { method: "GET", path: "/1.0/instances?recursion=1" });
    if (!Array.isArray(list)) throw new LxdError(call.operation, 0, "LXD returned something other than a list");
    return list.map(toInstance);
  }

  async createInstance(spec: InstanceSpec, opts?: CallOptions): Promise<void> {
    const call = this.#call(`create instance "${spec.name}" from image "${spec.image}"`, opts);
    if (spec.type === "virtual-machine") {
      // Checked up front: without VM support LXD's own error depends on the image ("Requested image's type
      // "container" doesn't match instance type ...") instead of saying that VMs cannot run here at all.
      const types = this.#instanceTypes ?? (await this.server(remaining(call))).instanceTypes;
      if (!types.includes("virtual-machine")) {
        const has = types.length ? types.map((t) => `"${t}"`).join(", ") : "none";
        throw new LxdError(
          call.operation,
          400,
          `virtual machines are not supported on this LXD server (types: ${has})`,
        );
      }
    }
    const { name, type, config, devices, profiles, ephemeral } = spec;
    const json = { name, type, source: imageSource(spec.image), config, devices, profiles, ephemeral };
    // A duplicate name is accepted (202) and fails inside the operation (measured on 5.0.2); an unknown alias is
    // refused at once with 404. The `start` field of POST /1.0/instances needs API extension instance_create_start,
    // which 5.0.2 ignores, so starting is a separate state change.
    await this.#lxd.operation(call, { method: "POST", path: "/1.0/instances", json });
    if (spec.start) await this.#setState({ ...call, operation: `start instance "${name}"` }, name, { action: "start" });
  }

  async startInstance(name: string, opts?: CallOptions): Promise<void> {
    await this.#setState(this.#call(`start instance "${name}"`, opts), name, { action: "start" });
  }

  async stopInstance(name: string, opts?: StopOptions): Promise<void> {
    const timeoutS = opts?.timeoutS ?? 30;
    // LXD's own shutdown limit must end before ours, or we would report a timeout for a stop that was going fine.
    const timeoutMs = opts?.timeoutMs ??
      (opts?.force ? this.#timeoutMs : Math.max(this.#timeoutMs, timeoutS * 1000 + 10_000));
    const call = this.#call(`stop instance "${name}"`, { ...opts, timeoutMs });
    await this.#setState(
      call,
      name,
      opts?.force ? { action: "stop", force: true } : { action: "stop", timeout: timeoutS },
    );
  }

  /** Force-stops a running instance, then deletes it. An instance that is already gone counts as deleted. */
  async deleteInstance(name: string, opts?: CallOptions): Promise<void> {
    const call = this.#call(`delete instance "${name}"`, opts);
    const path = `/1.0/instances/${enc(name)}`;
    const state = await this.#lxd.sync(call, { method: "GET", path }).catch(gone);
    if (state === GONE) return;
    let stopError: unknown;
    if ((state as Record<string, unknown>)?.status !== "Stopped") {
      // LXD refuses to delete a running instance ("Instance is running"). An ephemeral instance deletes itself when
      // it stops, so the stop may race with its disappearance: DELETE decides, and 404 there means done.
      await this.#lxd.operation(call, { method: "PUT", path: `${path}/state`, json: { action: "stop", force: true } })
        .catch((e: unknown) => {
          stopError = e;
        });
    }
    // An instance whose stop (or failed start) is still settling answers "busy running a ... operation" for a
    // moment (seen on LXD 5.0.2): retry that, 100 ms more patient each time (4.5 s over 10 tries), within the
    // call's deadline. A fixed second would put a timer in every scale-down that meets it.
    for (let attempt = 1;; attempt++) {
      try {
        await this.#lxd.operation(call, { method: "DELETE", path });
        return;
      } catch (e) {
        if (e instanceof LxdError && e.status === 404) return;
        // The delete operation itself can fail because the instance vanished meanwhile; look before reporting.
        if ((await this.#lxd.sync(call, { method: "GET", path }).catch(gone)) === GONE) return;
        if (attempt >= 10 || !/busy running/i.test(String((e as Error).message))) throw stopError ?? e;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  /**
   * Runs a command without websockets: LXD records stdout/stderr to log files, which are read and then deleted.
   * A non-zero exit code is a result, not an error. Never pass secrets in `command`'s environment: there is none.
   */
  async exec(name: string, command: string[], opts?: ExecOptions): Promise<ExecResult> {
    if (command.length === 0) throw new TypeError(`Cannot run a command in instance "${name}": command is empty`);
    const call = this.#call(`run a command in instance "${name}"`, opts);
    const json = {
      command,
      environment: {},
      "wait-for-websocket": false,
      "record-output": true,
      interactive: false,
      user: opts?.user,
      group: opts?.group,
      cwd: opts?.cwd,
    };
    const op = await this.#lxd.operation(
      call,
      { method: "POST", path: `/1.0/instances/${enc(name)}/exec`, json },
      false,
    );
    // metadata: {"output":{"1":"/1.0/instances/<n>/logs/exec_<id>.stdout","2":"...stderr"},"return":N}
    const output = (op.metadata.output ?? {}) as Record<string, string>;
    const logs = [output["1"], output["2"]].filter((p): p is string => typeof p === "string");
    if (op.status !== "Success") {
      // e.g. "Command not found" (return 127). That error is the one to report; cleanup is best effort.
      await Promise.allSettled(logs.map((path) => this.#lxd.request(call, { method: "DELETE", path })));
      requireSuccess(call.operation, op);
    }
    const exitCode = op.metadata.return;
    if (typeof exitCode !== "number") throw new LxdError(call.operation, 0, "LXD reported no exit code");
    if (exitCode === 0 && opts?.output === "on-failure") return { exitCode, stdout: "", stderr: "" };
    const text = async (path: string | undefined) =>
      path ? new TextDecoder().decode((await this.#lxd.raw(call, { method: "GET", path })).body) : "";
    const [stdout, stderr] = await Promise.all([text(output["1"]), text(output["2"])]);
    await Promise.all(logs.map((path) => this.#lxd.sync(call, { method: "DELETE", path })));
    return { exitCode, stdout, stderr };
  }

  /**
   * Sets `user.*` keys on an instance, leaving the rest of its config as it is (PATCH, sync: about 50 ms on a
   * busy 2-core host). Only `user.` keys: nothing else about a running instance changes here.
   */
  async setUserKeys(name: string, keys: Record<string, string>, opts?: CallOptions): Promise<void> {
    for (const key of Object.keys(keys)) {
      if (!key.startsWith("user.")) throw new TypeError(`Cannot set "${key}" on instance "${name}": not a user.* key`);
    }
    const call = this.#call(`set user keys on instance "${name}"`, opts);
    await this.#lxd.sync(call, { method: "PATCH", path: `/1.0/instances/${enc(name)}`, json: { config: keys } });
  }

  /** The image an alias (or a fingerprint, 12+ hex digits) names; undefined when there is none. */
  async image(aliasOrFingerprint: string, opts?: CallOptions): Promise<ImageInfo | undefined> {
    const call = this.#call(`look up image "${aliasOrFingerprint}"`, opts);
    // An alias first, as LXD resolves a source: a fingerprint-like name may still be an alias. A whole fingerprint
    // (64 hex digits, as the alias lookup of a pass returns it) is taken as one.
    const whole = /^[0-9a-f]{64}$/.test(aliasOrFingerprint);
    const alias = whole ? GONE : await this.#lxd.sync(call, {
      method: "GET",
      path: `/1.0/images/aliases/${enc(aliasOrFingerprint)}`,
    }).catch(gone);
    if (alias === GONE && !looksLikeFingerprint(aliasOrFingerprint)) return undefined;
    const target = alias === GONE ? aliasOrFingerprint : (alias as Record<string, unknown> | null)?.target;
    if (typeof target !== "string") throw new LxdError(call.operation, 0, "LXD returned an alias without a target");
    const fingerprint = target;
    const meta = await this.#lxd.sync(call, { method: "GET", path: `/1.0/images/${enc(fingerprint)}` }).catch(gone);
    if (meta === GONE) return undefined;
    const m = (meta ?? {}) as Record<string, unknown>;
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries((m.properties ?? {}) as Record<string, unknown>)) {
      if (typeof v === "string") properties[k] = v;
    }
    return { fingerprint: typeof m.fingerprint === "string" ? m.fingerprint : fingerprint, properties };
  }

  /** Writes a file (overwriting). `{fromFile}` streams a host file instead of holding it in memory. */
  async pushFile(
    name: string,
    path: string,
    content: Uint8Array | string | { fromFile: string },
    opts?: FileOptions,
  ): Promise<void> {
    const call = this.#call(`write file "${path}" in instance "${name}"`, opts);
    await this.#lxd.sync(call, {
      method: "POST",
      path: filesPath(name, path),
      headers: fileHeaders("file", opts ?? {}),
      body: content,
    });
  }

  /** Creates one directory; its parent must exist. An existing directory is left as it is (LXD answers 200). */
  async mkdir(name: string, path: string, opts?: FileOptions): Promise<void> {
    const call = this.#call(`create directory "${path}" in instance "${name}"`, opts);
    await this.#lxd.sync(call, {
      method: "POST",
      path: filesPath(name, path),
      headers: fileHeaders("directory", opts ?? {}),
    });
  }

  async readFile(name: string, path: string, opts?: CallOptions): Promise<Uint8Array> {
    const call = this.#call(`read file "${path}" in instance "${name}"`, opts);
    const res = await this.#lxd.raw(call, { method: "GET", path: filesPath(name, path) });
    // For a directory LXD answers 200 with a JSON listing of its entries, marked by X-LXD-type.
    if (res.headers["x-lxd-type"] === "directory") throw new LxdError(call.operation, 400, "it is a directory");
    return res.body;
  }

  async imageExists(aliasOrFingerprint: string, opts?: CallOptions): Promise<boolean> {
    const call = this.#call(`look up image "${aliasOrFingerprint}"`, opts);
    const paths = [`/1.0/images/aliases/${enc(aliasOrFingerprint)}`];
    if (looksLikeFingerprint(aliasOrFingerprint)) paths.push(`/1.0/images/${enc(aliasOrFingerprint)}`);
    for (const path of paths) {
      if ((await this.#lxd.sync(call, { method: "GET", path }).catch(gone)) !== GONE) return true;
    }
    return false;
  }

  #call(operation: string, opts?: CallOptions): Call {
    return startCall(operation, opts?.timeoutMs ?? this.#timeoutMs, opts?.signal);
  }

  async #setState(call: Call, name: string, json: Record<string, unknown>): Promise<void> {
    await this.#lxd.operation(call, { method: "PUT", path: `/1.0/instances/${enc(name)}/state`, json });
  }
}

function filesPath(name: string, path: string): string {
  if (!path.startsWith("/")) throw new TypeError(`Cannot use path "${path}" in instance "${name}": it is not absolute`);
  return `/1.0/instances/${enc(name)}/files?path=${enc(path)}`;
}
