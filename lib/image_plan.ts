/**
 * The pure parts of `image build` (no I/O): instance and alias names, the proof, and moving the `image` alias to a
 * proven new image. The previous image stays reachable as `<image>-previous` for a quick rollback; the one before
 * it is deleted, unless an alias still uses it.
 */
import { RUNNER_DIR } from "./instance_scripts.ts";

const MAX_NAME = 63;

/** What the aliases point to now (full fingerprints; undefined: no such alias). */
export interface AliasState {
  current?: string;
  previous?: string;
}

export type SwapStep =
  | { kind: "set-alias"; alias: string; fingerprint: string }
  | { kind: "delete-image"; fingerprint: string };

export function previousAlias(image: string): string {
  return `${image}-previous`;
}

/**
 * The steps, in order: `image` moves first (the one that matters to spawns; if a later step fails, the new image is
 * already in use), then `-previous`, then the image that fell off the end is deleted.
 */
export function planSwap(image: string, state: AliasState, fresh: string): SwapStep[] {
  const steps: SwapStep[] = [{ kind: "set-alias", alias: image, fingerprint: fresh }];
  // Rebuilding to an identical image (same fingerprint): nothing moves down.
  if (state.current === undefined || state.current === fresh) return steps;
  steps.push({ kind: "set-alias", alias: previousAlias(image), fingerprint: state.current });
  if (state.previous !== undefined && state.previous !== state.current && state.previous !== fresh) {
    steps.push({ kind: "delete-image", fingerprint: state.previous });
  }
  return steps;
}

export function builderName(prefix: string): string {
  return instanceName(prefix, "image-builder");
}

export function testInstanceName(prefix: string): string {
  return instanceName(prefix, "image-test");
}

/** LXD names are hostnames (at most 63 characters): a long prefix is cut rather than refused. */
function instanceName(prefix: string, suffix: string): string {
  return `${prefix.slice(0, MAX_NAME - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}

export function candidateAlias(image: string): string {
  return `${image}-candidate`;
}

/** What every runner needs of the image; exits non-zero with the first thing missing on stderr. */
export function proofScript(withDocker: boolean): string {
  return `set -u
id runner >/dev/null 2>&1 || { echo "the image has no user named runner" >&2; exit 1; }
[ -x ${RUNNER_DIR}/run.sh ] || { echo "the image has no runner application at ${RUNNER_DIR}/run.sh" >&2; exit 1; }
[ "$(stat -c %U ${RUNNER_DIR}/run.sh)" = runner ] || { echo "${RUNNER_DIR} is not owned by runner" >&2; exit 1; }
${
    withDocker
      ? `command -v docker >/dev/null || { echo "the image has no docker" >&2; exit 1; }
[ -f /etc/docker/daemon.json ] || { echo "the image has no /etc/docker/daemon.json" >&2; exit 1; }`
      : ""
  }
exit 0
`;
}
