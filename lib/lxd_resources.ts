/**
 * What the LXD host has free, for admission: memory (GET /1.0/resources) and the storage pool's space
 * (GET /1.0/storage-pools/<pool>/resources). Read-only, bounded like every LXD call.
 */
import { LxdConnection, startCall } from "./lxd_operations.ts";
import type { HostCapacity } from "./types.ts";

export async function hostCapacity(
  socketPath: string,
  opts: { pool?: string; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<HostCapacity> {
  const lxd = new LxdConnection(socketPath);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const res = await lxd.sync(startCall("read host resources", timeoutMs, opts.signal), {
    method: "GET",
    path: "/1.0/resources",
  }) as {
    memory?: { total?: number; used?: number };
  };
  const pool = opts.pool ?? "default";
  const space = await lxd.sync(startCall(`read storage pool "${pool}" resources`, timeoutMs, opts.signal), {
    method: "GET",
    path: `/1.0/storage-pools/${encodeURIComponent(pool)}/resources`,
  }) as { space?: { total?: number; used?: number } };
  const free = (x?: { total?: number; used?: number }) =>
    typeof x?.total === "number" && typeof x.used === "number" ? Math.max(0, x.total - x.used) : undefined;
  return { memoryFree: free(res.memory), diskFree: free(space.space) };
}
