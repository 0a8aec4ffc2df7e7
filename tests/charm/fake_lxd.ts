/**
 * A minimal LXD API on a unix socket, for the host-preparation paths that must not touch the real daemon's
 * shared state (the "default" profile other tests' runners use): server info, storage pools, the default
 * profile (GET/PUT with ETag), image aliases and an empty instance list. Answers in LXD's sync envelope.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeLxdState {
  pools: string[];
  profile: { config: Record<string, string>; description: string; devices: Record<string, Record<string, string>> };
  images: Set<string>;
}

export class FakeLxd {
  readonly requests: { method: string; path: string; body?: unknown }[] = [];
  readonly state: FakeLxdState = {
    pools: ["/1.0/storage-pools/default"],
    profile: {
      config: {},
      description: "Default LXD profile",
      devices: {
        root: { type: "disk", path: "/", pool: "default" },
        eth0: { type: "nic", network: "lxdbr0", name: "eth0" },
      },
    },
    images: new Set(),
  };
  #etag = 1;

  private constructor(readonly socketPath: string, readonly server: Server, readonly dir: string) {}

  static async start(): Promise<FakeLxd> {
    const dir = mkdtempSync(join(tmpdir(), "fake-lxd-"));
    const socketPath = join(dir, "unix.socket");
    const server = createServer();
    const fake = new FakeLxd(socketPath, server, dir);
    server.on("request", async (req, res) => {
      const body = await readBody(req);
      const { status, metadata, etag } = fake.#answer(req.method ?? "GET", req.url ?? "/", body, req.headers);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (etag) headers.etag = etag;
      res.writeHead(status, headers);
      res.end(JSON.stringify(
        status < 300
          ? { type: "sync", status: "Success", status_code: 200, metadata }
          : { type: "error", error: metadata, error_code: status },
      ));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return fake;
  }

  #answer(method: string, url: string, body: unknown, headers: IncomingMessage["headers"]) {
    this.requests.push({ method, path: url, body });
    const path = url.split("?")[0];
    if (method === "GET" && path === "/1.0") {
      return { status: 200, metadata: { environment: { server_version: "5.0.2", instance_types: ["container"] } } };
    }
    if (method === "GET" && path === "/1.0/storage-pools") return { status: 200, metadata: this.state.pools };
    if (method === "GET" && path === "/1.0/instances") return { status: 200, metadata: [] };
    if (path === "/1.0/profiles/default") {
      if (method === "GET") return { status: 200, metadata: this.state.profile, etag: `"${this.#etag}"` };
      if (method === "PUT") {
        if (headers["if-match"] && headers["if-match"] !== `"${this.#etag}"`) {
          return { status: 412, metadata: "ETag doesn't match" };
        }
        this.state.profile = body as FakeLxdState["profile"];
        this.#etag++;
        return { status: 200, metadata: {} };
      }
    }
    const alias = /^\/1\.0\/images\/aliases\/(.+)$/.exec(path);
    if (method === "GET" && alias) {
      const name = decodeURIComponent(alias[1]);
      return this.state.images.has(name)
        ? { status: 200, metadata: { name, target: "f".repeat(64) } }
        : { status: 404, metadata: "Image alias not found" };
    }
    return { status: 404, metadata: "not found" };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}
