/**
 * Logging setup (LogTape): human-readable lines on a terminal, JSON lines otherwise, always on stderr so that
 * stdout stays for command output (`--json`). Every module logs through `logger(...)`; messages carry data as
 * properties. Nothing secret is ever passed to a logger.
 */
import {
  configureSync,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

export type { Logger };

export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];

export function setupLogging(opts: { level: LogLevel; json: boolean; write?: (line: string) => void }): void {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const format = opts.json ? jsonLine : getTextFormatter({ timestamp: "date-time", category: ".", value: "bare" });
  const sink = (record: LogRecord) => write(format(record));
  resetSync();
  configureSync({
    sinks: { stderr: sink },
    loggers: [
      { category: ["github-runner"], lowestLevel: opts.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

export function logger(...category: string[]): Logger {
  return getLogger(["github-runner", ...category]);
}

/** One JSON object a line: time, level, logger, the message rendered without quotes, and its properties. */
function jsonLine(record: LogRecord): string {
  const message = record.message.map((part) => typeof part === "string" ? part : bare(part)).join("");
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    message,
    ...record.properties,
  }) + "\n";
}

function bare(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}
