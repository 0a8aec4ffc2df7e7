/**
 * The `run` service in-process on the real LXD and the fake GitHub, for tests: started on a free loopback port with
 * its listener, stopped with its exit code; /metrics scraped with a real Prometheus text parser; webhooks signed as
 * GitHub signs them.
 */
import { createHmac } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { getMetricsFromIterator } from "prom2javascript";
import { type Bed, openBed } from "./harness.ts";
import { runCommand } from "../../lib/commands/run.ts";
import type { RawConfig } from "../../lib/config.ts";

export const SECRET = "a-webhook-secret-for-tests";
export const LONG = "10m"; // longer than any wait below: whatever happens in a test, this timer did not cause it

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

export interface Service {
  bed: Bed;
  url: string;
  /** Stops the service and returns its exit code; closes the bed too unless `keepBed`. */
  stop(opts?: { keepBed?: boolean }): Promise<number>;
}

export async function startService(file: RawConfig, secret?: string): Promise<Service> {
  const port = await freePort();
  const bed = await openBed({ ...file, listen: `127.0.0.1:${port}`, ...(secret ? { "webhook-secret": secret } : {}) });
  bed.reconfigure({ "state-dir": join(bed.cacheDir, "state") });
  const stop = new AbortController();
  const done = runCommand(bed.config, {
    out: () => {},
    err: () => {},
    isTty: false,
    env: {},
    stop: stop.signal,
  }, { reload: () => bed.config });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => (await fetch(`${url}/readyz`).then((r) => r.status).catch(() => 0)) === 200, "ready");
  return {
    bed,
    url,
    stop: async (opts) => {
      stop.abort();
      const code = await done;
      if (!opts?.keepBed) await bed.close();
      return code;
    },
  };
}

export async function waitUntil(f: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function scrape(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const families = await getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
  const series = (name: string, labels: Record<string, string>) =>
    ((families[name]?.data ?? []) as unknown as { labels: Record<string, string>; value?: number; count?: number }[])
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  /** A counter's or gauge's value summed over the matching series. */
  const sum = (name: string, labels: Record<string, string> = {}) =>
    series(name, labels).reduce((n, s) => n + Number(s.value), 0);
  /** A histogram's observation count summed over the matching series. */
  const count = (name: string, labels: Record<string, string> = {}) =>
    series(name, labels).reduce((n, s) => n + Number(s.count), 0);
  return { sum, count, names: Object.keys(families) };
}

export function signedDelivery(url: string, payload: unknown, secret: string) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  return fetch(`${url}/webhook`, {
    method: "POST",
    headers: { "x-github-event": "workflow_job", "x-hub-signature-256": signature, "content-type": "application/json" },
    body,
  });
}

/** A workflow_job delivery's payload, as GitHub sends it. */
export const workflowJob = (
  action: string,
  runnerName: string | null,
  over: { id?: number; created_at?: string; started_at?: string } = {},
) => ({
  action,
  workflow_job: {
    id: 4242,
    run_id: 1,
    labels: ["self-hosted", "linux"],
    runner_name: runnerName,
    created_at: "2026-11-28T12:00:00Z",
    started_at: "2026-11-28T12:00:03Z",
    status: action,
    ...over,
  },
});
