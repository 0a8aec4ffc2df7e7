/**
 * One charm unit on a prepared host for dispatch tests: the fake GitHub (on loopback: no runner is started), a
 * fake LXD socket (the real daemon's shared profile stays untouched), the source tree as the attached binary.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeGithub } from "../fakes/github.ts";
import { FakeLxd } from "./fake_lxd.ts";
import { JujuUnit, sourceBinary } from "./juju_unit.ts";

export const APP = "charmtestd";

export async function bed(
  config: Record<string, unknown> = {},
  extra: Partial<ConstructorParameters<typeof JujuUnit>[0]> = {},
) {
  const fake = await FakeGithub.start({ hostname: "127.0.0.1" });
  const lxd = await FakeLxd.start();
  lxd.state.images.add("github-runner");
  const unit = new JujuUnit({
    app: APP,
    ...extra,
    config: { path: "acme", token: fake.token, "github-api-url": fake.url, "lxd-socket": lxd.socketPath, ...config },
  });
  if (!("resource" in extra)) unit.writeFixture("resources.json", { "github-runner-binary": sourceBinary(unit.dir) });
  const paths = {
    config: join(unit.root, `etc/github-runner/${APP}-0/config.toml`),
    unitFile: join(unit.root, `etc/systemd/system/github-runner-${APP}-0.service`),
    state: join(unit.root, `var/lib/github-runner/${APP}-0`),
    env: join(unit.root, `etc/github-runner/${APP}-0/proxy.env`),
  };
  const markInstalled = () => {
    mkdirSync(paths.state, { recursive: true });
    writeFileSync(join(paths.state, "installed"), "test\n");
  };
  const close = async () => {
    unit.close();
    await lxd.close();
    await fake.close();
  };
  return { fake, lxd, unit, paths, markInstalled, close };
}

export function noSecretIn(calls: { args: string[] }[], ...secrets: string[]): void {
  for (const c of calls) {
    for (const s of secrets) assert.ok(!c.args.join(" ").includes(s), `a secret reached ${JSON.stringify(c)}`);
  }
}
