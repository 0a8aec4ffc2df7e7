/**
 * node:http plumbing for the fake GitHub (node:http so it runs under deno, bun and node alike): a listener that
 * can be closed with requests still open (long polls, keep-alive sockets), and the runner download host.
 */
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface Listener {
  url: string;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void> | void;

/** Listens on hostname:port (0 = any free port); close() drops open connections instead of waiting for them. */
export async function listen(hostname: string, port: number, handler: Handler): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      try {
        await handler(req, Buffer.concat(chunks), res);
      } catch (error) {
        // A bug in the fake must be loud, not a hung client.
        console.error("fake GitHub handler failed:", error);
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`fake GitHub handler failed: ${error}\n`);
      }
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`Cannot listen on ${hostname}: no TCP address`);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

export interface DownloadRequest {
  method: string;
  path: string;
  hadAuthorization: boolean;
}

export interface DownloadHost extends Listener {
  /** Every request the host saw, in order. */
  requests: DownloadRequest[];
}

/**
 * Serves the runner archive the way GitHub's download_url does: the release URL
 * (/actions/runner/releases/download/v<version>/<file>) answers 302 to blob storage (/objects/<file>), which serves
 * the bytes. It records whether any request carried an Authorization header: the API token must never go there.
 */
export async function startDownloadHost(hostname: string, archive: Uint8Array): Promise<DownloadHost> {
  const requests: DownloadRequest[] = [];
  const file = /^actions-runner-[a-z]+-[a-z0-9]+-\d+\.\d+\.\d+\.(tar\.gz|zip)$/;
  let base = "";
  const listener = await listen(hostname, 0, (req, _body, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push({ method: req.method ?? "GET", path, hadAuthorization: req.headers.authorization !== undefined });
    const release = /^\/actions\/runner\/releases\/download\/v[^/]+\/([^/]+)$/.exec(path);
    const object = /^\/objects\/([^/]+)$/.exec(path);
    if (req.method === "GET" && release && file.test(release[1])) {
      res.writeHead(302, { location: `${base}/objects/${release[1]}`, "content-length": "0" });
      res.end();
    } else if (req.method === "GET" && object && file.test(object[1])) {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(archive.length) });
      res.end(archive);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("Not Found\n");
    }
  });
  base = listener.url;
  return { ...listener, requests };
}
