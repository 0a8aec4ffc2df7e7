#!/bin/sh
# Stub of actions/runner's config.sh. The real one registers a runner with a registration token; this fake supports
# only just-in-time runners (`./run.sh --jitconfig ...`, or ACTIONS_RUNNER_INPUT_JITCONFIG), which need no config.sh.
# `config.sh remove` succeeds and removes local configuration, as the real one does for an unregistered runner.
if [ "$(id -u)" = 0 ] && [ -z "${RUNNER_ALLOW_RUNASROOT:-}" ]; then
  echo "Must not run with sudo" >&2
  exit 1
fi
DIR=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = remove ]; then
  rm -f "$DIR/.runner" "$DIR/.credentials" "$DIR/.credentials_rsaparams"
  echo "Removed local runner configuration."
  exit 0
fi
echo "The fake runner supports only just-in-time configuration: ./run.sh --jitconfig <encoded_jit_config>" >&2
exit 1
