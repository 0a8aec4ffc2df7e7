/**
 * Running a host command (systemctl, snap, lxd, lxc, hook tools) with a time limit. Arguments never hold a
 * secret: any user of the host can read a process's arguments.
 */
import { execFile } from "node:child_process";

export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${command} failed (${exitCode}): ${stderr.trim().split("\n").at(-1) || "no message"}`);
  }
}

export type CommandRunner = (
  command: string,
  args: string[],
  opts?: { timeoutMs?: number },
) => Promise<string>;

export function commandRunner(env: Record<string, string | undefined>): CommandRunner {
  return (command, args, opts = {}) =>
    new Promise((resolve, reject) => {
      execFile(
        command,
        args,
        {
          env: env as NodeJS.ProcessEnv,
          timeout: opts.timeoutMs ?? 60_000,
          encoding: "utf8",
          maxBuffer: 8 << 20,
        },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          const code = error.killed ? "timeout" : (error as { code?: number | string }).code ?? "error";
          reject(new CommandError([command, ...args].join(" "), code, stdout, stderr || error.message));
        },
      );
    });
}
