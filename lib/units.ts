/** Parsing of the human units the config uses: durations and LXD memory/disk sizes. Pure. */

const DURATION_PART = /(\d+)(ms|s|m|h|d)/g;
const DURATION_WHOLE = /^(\d+(ms|s|m|h|d))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration as milliseconds: "30s", "5m", "1h30m", or a bare integer meaning minutes (the charm's
 * historical `check-interval` unit). Returns undefined when the text is not a duration.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value * 60_000 : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 60_000;
  if (!DURATION_WHOLE.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) total += Number(amount) * UNIT_MS[unit];
  return total;
}

/** "1h30m" style rendering for messages and `check` output. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1_000);
  const parts: string[] = [];
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (sec || parts.length === 0) parts.push(`${sec}s`);
  return parts.join("");
}

/** LXD's size syntax (limits.memory, disk size): an integer with a decimal or binary unit. */
const SIZE = /^(\d+)(B|kB|MB|GB|TB|KiB|MiB|GiB|TiB)$/;

const SIZE_FACTOR: Record<string, number> = {
  B: 1,
  kB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

/** Bytes of an LXD size ("7GiB"); 0 for "" (unset). */
export function sizeBytes(value: string): number {
  const m = SIZE.exec(value);
  return m ? Number(m[1]) * SIZE_FACTOR[m[2]] : 0;
}

/** "7.0 GiB": sizes in messages. */
export function formatBytes(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** True when LXD would accept `value` as a size such as "7GiB". */
export function isLxdSize(value: string): boolean {
  return SIZE.test(value) && Number(SIZE.exec(value)![1]) > 0;
}
