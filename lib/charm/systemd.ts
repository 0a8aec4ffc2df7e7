/**
 * The unit's systemd service: the unit file text (pure) and the systemctl calls, through an injected runner so
 * tests need no systemd (they put a recording stand-in named `systemctl` on PATH, or pass a function).
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { UnitPaths } from "./context.ts";

/** Runs `systemctl <args>`; resolves with stdout, rejects on a non-zero exit. */
export type SystemctlRunner = (args: string[], opts: { timeoutMs: number }) => Promise<string>;

/** A stop waits for the pass in flight, which has a 15-minute deadline: systemd and we allow a little more. */
const STOP_TIMEOUT_MS = 17 * 60_000;

export interface ServiceSpec {
  unitName: string;
  binary: string;
  paths: UnitPaths;
}

export function unitFileText(spec: ServiceSpec): string {
  return `# Written by the github-runner charm for Juju unit ${spec.unitName}: edits are overwritten.
[Unit]
Description=github-runner for Juju unit ${spec.unitName}: idle ephemeral GitHub Actions runners in LXD
Wants=network-online.target
After=network-online.target snap.lxd.daemon.service lxd.service

[Service]
Type=exec
ExecStart=${quote(spec.binary)} run -c ${quote(spec.paths.configFile)}
# SIGHUP re-reads the config; a bad one is refused and the running one kept.
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM lets the pass in flight finish (15-minute deadline), then the service exits 0.
KillSignal=SIGTERM
TimeoutStopSec=16min
Restart=on-failure
RestartSec=10s
# The Juju model's proxy settings (juju-http-proxy etc.), mode 0600: a proxy URL may hold credentials.
EnvironmentFile=-${spec.paths.envFile}
Environment=NO_COLOR=1
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}

/** systemd's quoting for ExecStart: double quotes, with backslash and quote escaped. */
function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, "\\$1")}"`;
}

export class Service {
  constructor(readonly name: string, readonly unitFile: string, readonly systemctl: SystemctlRunner) {}

  /** Writes the unit file when it changed (then daemon-reload) and enables it. True when the file changed. */
  async install(text: string): Promise<boolean> {
    const old = await readFile(this.unitFile, "utf8").catch(() => undefined);
    if (old !== text) {
      await mkdir(dirname(this.unitFile), { recursive: true });
      await writeFile(this.unitFile, text, { mode: 0o644 });
      await this.systemctl(["daemon-reload"], { timeoutMs: 60_000 });
    }
    await this.systemctl(["enable", `${this.name}.service`], { timeoutMs: 60_000 });
    return old !== text;
  }

  async restart(): Promise<void> {
    await this.systemctl(["restart", `${this.name}.service`], { timeoutMs: STOP_TIMEOUT_MS });
  }

  async start(): Promise<void> {
    await this.systemctl(["start", `${this.name}.service`], { timeoutMs: 60_000 });
  }

  async stop(): Promise<void> {
    await this.systemctl(["stop", `${this.name}.service`], { timeoutMs: STOP_TIMEOUT_MS });
  }

  /** systemctl is-active prints the state and exits non-zero unless it is "active". */
  async state(): Promise<string> {
    try {
      return (await this.systemctl(["is-active", `${this.name}.service`], { timeoutMs: 30_000 })).trim();
    } catch (e) {
      return (e as { stdout?: string }).stdout?.trim() || "unknown"; // CommandError keeps stdout
    }
  }

  /** Stops, disables and deletes the unit; each step tolerates a unit that is already gone. */
  async remove(): Promise<void> {
    const exists = await readFile(this.unitFile, "utf8").then(() => true, () => false);
    if (!exists) return;
    await this.systemctl(["disable", "--now", `${this.name}.service`], { timeoutMs: STOP_TIMEOUT_MS });
    await rm(this.unitFile, { force: true });
    await this.systemctl(["daemon-reload"], { timeoutMs: 60_000 });
  }
}
