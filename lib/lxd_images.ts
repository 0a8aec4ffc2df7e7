/**
 * LXD images and their aliases: publishing an instance, importing a tarball, moving aliases, deleting images.
 * Beside lib/lxd.ts (instances) with the same rules: every call has one deadline and the caller's signal, and
 * failures are LxdError. Only `image build` uses it.
 *
 * Contract (LXD REST API, "Images" and "Image aliases"; measured on 5.0.2): `POST /1.0/images` starts an
 * operation whose final metadata holds the new image's `fingerprint`; an alias is `{name, target, description}`
 * where target is a full fingerprint.
 */
import { type Call, GONE, gone, LxdConnection, startCall } from "./lxd_operations.ts";
import { LxdError } from "./lxd_wire.ts";

export interface LxdImagesOptions {
  socketPath: string;
  /** Default time limit of one call, in milliseconds. Default 30_000. */
  requestTimeoutMs?: number;
  project?: string;
}

export interface ImageCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PublishOptions extends ImageCallOptions {
  /** Image properties (description, os, release, ...). */
  properties?: Record<string, string>;
  /** "none", "gzip", ...; default: the server's images.compression_algorithm. */
  compression?: string;
}

const enc = encodeURIComponent;

export class LxdImages {
  readonly #lxd: LxdConnection;
  readonly #timeoutMs: number;

  constructor(opts: LxdImagesOptions) {
    if (!opts.socketPath) throw new TypeError("Cannot create LXD image client: socketPath is empty");
    this.#lxd = new LxdConnection(opts.socketPath, opts.project);
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  /** Publishes a stopped instance as a new image (no alias). Returns its fingerprint. */
  async publish(instance: string, opts: PublishOptions = {}): Promise<string> {
    const call = this.#call(`publish instance "${instance}" as an image`, opts);
    const json = {
      source: { type: "instance", name: instance },
      properties: opts.properties ?? {},
      public: false,
      ...(opts.compression ? { compression_algorithm: opts.compression } : {}),
    };
    const op = await this.#lxd.operation(call, { method: "POST", path: "/1.0/images", json });
    return fingerprintOf(call, op.metadata);
  }

  /** Imports an image tarball (LXD's unified format, or as `lxc image export` writes it). Returns its fingerprint. */
  async importFile(file: string, opts: ImageCallOptions = {}): Promise<string> {
    const call = this.#call(`import image "${file}"`, opts);
    const op = await this.#lxd.operation(call, {
      method: "POST",
      path: "/1.0/images",
      headers: { "content-type": "application/octet-stream", "x-lxd-public": "0" },
      body: { fromFile: file },
    });
    return fingerprintOf(call, op.metadata);
  }

  /** The full fingerprint an alias points to; undefined when there is no such alias. */
  async aliasTarget(alias: string, opts: ImageCallOptions = {}): Promise<string | undefined> {
    const call = this.#call(`look up image alias "${alias}"`, opts);
    const meta = await this.#lxd.sync(call, { method: "GET", path: `/1.0/images/aliases/${enc(alias)}` }).catch(gone);
    if (meta === GONE) return undefined;
    const target = (meta as Record<string, unknown> | null)?.target;
    if (typeof target !== "string") throw new LxdError(call.operation, 0, "LXD returned an alias without a target");
    return target;
  }

  /** Points an alias at an image, creating the alias or moving it. */
  async setAlias(alias: string, fingerprint: string, opts: ImageCallOptions & { description?: string } = {}) {
    const call = this.#call(`point image alias "${alias}" at ${fingerprint.slice(0, 12)}`, opts);
    const description = opts.description ?? "";
    const path = `/1.0/images/aliases/${enc(alias)}`;
    if ((await this.#lxd.sync(call, { method: "GET", path }).catch(gone)) === GONE) {
      await this.#lxd.sync(call, {
        method: "POST",
        path: "/1.0/images/aliases",
        json: { name: alias, target: fingerprint, description },
      });
    } else {
      await this.#lxd.sync(call, { method: "PUT", path, json: { target: fingerprint, description } });
    }
  }

  /** Removes an alias (not its image). A missing alias counts as removed. */
  async deleteAlias(alias: string, opts: ImageCallOptions = {}): Promise<void> {
    const call = this.#call(`delete image alias "${alias}"`, opts);
    await this.#lxd.sync(call, { method: "DELETE", path: `/1.0/images/aliases/${enc(alias)}` }).catch(gone);
  }

  /** Deletes an image (and its aliases). A missing image counts as deleted. */
  async deleteImage(fingerprint: string, opts: ImageCallOptions = {}): Promise<void> {
    const call = this.#call(`delete image ${fingerprint.slice(0, 12)}`, opts);
    await this.#lxd.operation(call, { method: "DELETE", path: `/1.0/images/${enc(fingerprint)}` }).catch(gone);
  }

  /** True when an image with this fingerprint exists. */
  async imageExists(fingerprint: string, opts: ImageCallOptions = {}): Promise<boolean> {
    const call = this.#call(`look up image ${fingerprint.slice(0, 12)}`, opts);
    return (await this.#lxd.sync(call, { method: "GET", path: `/1.0/images/${enc(fingerprint)}` }).catch(gone)) !==
      GONE;
  }

  #call(operation: string, opts: ImageCallOptions): Call {
    return startCall(operation, opts.timeoutMs ?? this.#timeoutMs, opts.signal);
  }
}

function fingerprintOf(call: Call, metadata: Record<string, unknown>): string {
  const fingerprint = metadata.fingerprint;
  if (typeof fingerprint !== "string" || !/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new LxdError(call.operation, 0, "LXD finished without naming the new image's fingerprint");
  }
  return fingerprint;
}
