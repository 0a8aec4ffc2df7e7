/**
 * The shell scripts that run INSIDE a runner instance. POSIX sh, so they work on Ubuntu images and on the
 * busybox test image alike. They never receive a secret as an argument: the JIT config travels as a file.
 */

/** Where the runner application lives inside an instance (the image may already have it baked in). */
export const RUNNER_DIR = "/home/runner/actions-runner";
/** Private to the runner user: holds the JIT config file until the runner reads it. */
export const SECRET_DIR = "/run/github-runner";
export const JIT_FILE = `${SECRET_DIR}/jit`;
export const LAUNCHER = "/usr/local/sbin/github-runner-launch";
/**
 * Not /tmp: the push comes right after the start, while systemd-tmpfiles-setup may still be emptying /tmp at boot
 * (measured on the Debian base: the tarball vanished in 4 of 4 launch-then-push tries). /root exists in every image.
 */
export const PUSHED_TARBALL = "/root/github-runner-app.tar.gz";

/**
 * Prepares the instance, as root: checks the runner user, unpacks the pushed tarball when one was pushed,
 * creates the secret folder. Prints the runner user's uid, gid and the image's release codename on its last line.
 */
export const PREPARE = `set -eu
uid=$(id -u runner 2>/dev/null) || { echo "the image has no user named runner" >&2; exit 3; }
gid=$(id -g runner)
if [ -f ${PUSHED_TARBALL} ]; then
  mkdir -p ${RUNNER_DIR}
  tar -xzf ${PUSHED_TARBALL} -C ${RUNNER_DIR}
  rm -f ${PUSHED_TARBALL}
  chown -R "$uid:$gid" ${RUNNER_DIR}
fi
[ -x ${RUNNER_DIR}/run.sh ] || { echo "no runner application at ${RUNNER_DIR}/run.sh" >&2; exit 4; }
mkdir -p ${SECRET_DIR} "$(dirname ${LAUNCHER})"
chown "$uid:$gid" ${SECRET_DIR}
chmod 0700 ${SECRET_DIR}
# The image's release (e.g. "noble", "bookworm") becomes a runner label, so workflows can select it.
release=$( (. /etc/os-release 2>/dev/null && echo "\${VERSION_CODENAME:-}") || true)
echo "$uid $gid $release"
`;

/** True (exit 0) when the image already carries the runner application: no tarball push needed. */
export const HAS_RUNNER_APP = `[ -x ${RUNNER_DIR}/run.sh ]`;

/**
 * Runs the runner application once as the runner user, then powers the instance off (it is ephemeral, so
 * LXD deletes it). The JIT config goes from the file into the runner's environment
 * (ACTIONS_RUNNER_INPUT_JITCONFIG, which the runner reads like --jitconfig) and the file is removed first, so
 * the secret never appears in a process's arguments, which the host could see.
 */
export const LAUNCHER_SCRIPT = `#!/bin/sh
# Written by github-runner. Runs one job, then powers off.
su runner -s /bin/sh -c 'ACTIONS_RUNNER_INPUT_JITCONFIG=$(cat ${JIT_FILE}) && rm -f ${JIT_FILE} && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd ${RUNNER_DIR} && exec ./run.sh' >>/var/log/github-runner.log 2>&1
echo "run.sh exited with $?" >>/var/log/github-runner.log
poweroff
`;

/** Starts the launcher detached from the exec session, so exec returns at once. */
export const START_DETACHED = `setsid ${LAUNCHER} </dev/null >/dev/null 2>&1 &`;
