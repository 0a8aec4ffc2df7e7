/**
 * The shell scripts that run INSIDE a runner instance. POSIX sh, so they work on Ubuntu images and on the
 * busybox test image alike. They never receive a secret as an argument: the JIT config travels as a file.
 */

/** Where the runner application lives inside an instance (the image may already have it baked in). */
export const RUNNER_DIR = "/home/runner/actions-runner";
/** Private to the runner user: holds the JIT config file until the runner reads it. */
export const SECRET_DIR = "/run/github-runner";
export const JIT_FILE = `${SECRET_DIR}/jit`;
/**
 * Where the spawn pushes the JIT config (root only, 0400) before the one exec that moves it into SECRET_DIR for the
 * runner user. /root, not /run: a push right after the start may land before systemd mounts its tmpfs on /run.
 */
export const JIT_DROP = "/root/.github-runner-jit";
export const LAUNCHER = "/usr/local/sbin/github-runner-launch";
/**
 * Not /tmp: the push comes right after the start, while systemd-tmpfiles-setup may still be emptying /tmp at boot
 * (measured on the Debian base: the tarball vanished in 4 of 4 launch-then-push tries). /root exists in every image.
 */
export const PUSHED_TARBALL = "/root/github-runner-app.tar.gz";

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

/** START's exit code when the image lacks the runner application and none was pushed: push it, then run again. */
export const NEEDS_RUNNER_APP = 10;

/**
 * Everything a spawn does inside the instance, as root, in ONE exec (each exec is several LXD round trips):
 * checks the runner user, unpacks a pushed runner tarball if there is one, moves the pushed JIT config into the
 * runner's private folder, writes the launcher and starts it detached, so the exec returns at once.
 * Exit 3: no runner user; NEEDS_RUNNER_APP: no runner application (and no tarball to unpack).
 */
export const START = `set -eu
uid=$(id -u runner 2>/dev/null) || { echo "the image has no user named runner" >&2; exit 3; }
gid=$(id -g runner)
if [ -f ${PUSHED_TARBALL} ]; then
  mkdir -p ${RUNNER_DIR}
  tar -xzf ${PUSHED_TARBALL} -C ${RUNNER_DIR}
  rm -f ${PUSHED_TARBALL}
  chown -R "$uid:$gid" ${RUNNER_DIR}
fi
[ -x ${RUNNER_DIR}/run.sh ] || { echo "no runner application at ${RUNNER_DIR}/run.sh" >&2; exit ${NEEDS_RUNNER_APP}; }
mkdir -p ${SECRET_DIR} "$(dirname ${LAUNCHER})"
chown "$uid:$gid" ${SECRET_DIR}
chmod 0700 ${SECRET_DIR}
mv ${JIT_DROP} ${JIT_FILE}
chown "$uid:$gid" ${JIT_FILE}
chmod 0400 ${JIT_FILE}
cat >${LAUNCHER} <<'GITHUB_RUNNER_LAUNCHER'
${LAUNCHER_SCRIPT}GITHUB_RUNNER_LAUNCHER
chmod 0755 ${LAUNCHER}
setsid ${LAUNCHER} </dev/null >/dev/null 2>&1 &
`;
