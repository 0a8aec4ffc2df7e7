#!/bin/sh
# A fake GitHub Actions runner for tests, in POSIX sh for busybox (sh, wget over http, base64, sed, timeout).
# It behaves like `run.sh --jitconfig ...` of actions/runner for one ephemeral job, against the fake GitHub's
# "broker" (tests/fakes/github_broker.ts) instead of broker.actions.githubusercontent.com:
#   decode the JIT config -> connect (runner goes online) -> long-poll for a job -> started (busy) -> sleep the job's
#   seconds, renewing the job lease -> done (GitHub removes an ephemeral runner after its job) -> exit 0.
# Like the real runner it waits for a job indefinitely; every request is bounded by `timeout`
# (busybox `wget -T` crashes). It never prints the JIT config or the broker secret.
#
# Environment:
#   ACTIONS_RUNNER_INPUT_JITCONFIG  the encoded JIT config (actions/runner reads every option from
#                                   ACTIONS_RUNNER_INPUT_<NAME>; this keeps the secret out of argv)
#   RUNNER_ALLOW_RUNASROOT          as in actions/runner: without it, root is refused
#   FAKE_RUNNER_REQUEST_TIMEOUT     seconds per broker request, default 30 (the broker holds a poll <= 10 s)
#   FAKE_RUNNER_CONNECT_ATTEMPTS    connect attempts before giving up, default 150
#   FAKE_RUNNER_RETRY_SECONDS       pause between attempts, default 0.2: a container's DHCP lease often arrives
#                                   just after the runner starts, and a whole second there would be the fake's
#                                   own delay in every spawn-to-online figure, not the manager's
set -u
umask 077
DIR=$(cd "$(dirname "$0")" && pwd)
VERSION=$("$DIR/bin/Runner.Listener" --version)
REQUEST_TIMEOUT=${FAKE_RUNNER_REQUEST_TIMEOUT:-30}
CONNECT_ATTEMPTS=${FAKE_RUNNER_CONNECT_ATTEMPTS:-150}
RETRY_SECONDS=${FAKE_RUNNER_RETRY_SECONDS:-0.2}
RENEW_EVERY=5

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%SZ'): $*"; }

# actions/runner refuses root unless RUNNER_ALLOW_RUNASROOT is set (config.sh, Runner.Listener).
if [ "$(id -u)" = 0 ] && [ -z "${RUNNER_ALLOW_RUNASROOT:-}" ]; then
  echo "Must not run with sudo" >&2
  exit 1
fi

jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}
unset ACTIONS_RUNNER_INPUT_JITCONFIG # jobs must not inherit it
while [ $# -gt 0 ]; do
  case $1 in
    --jitconfig)
      [ $# -ge 2 ] || { echo "--jitconfig needs a value" >&2; exit 1; }
      jit=$2
      shift 2 ;;
    --jitconfig=*) jit=${1#--jitconfig=}; shift ;;
    --version) echo "$VERSION"; exit 0 ;;
    *) echo "Unknown option '$1'" >&2; exit 1 ;;
  esac
done
if [ -z "$jit" ]; then
  echo "Runner is not configured: pass --jitconfig or set ACTIONS_RUNNER_INPUT_JITCONFIG" >&2
  exit 1
fi

STATE="$DIR/.fake-runner"
rm -rf "$STATE" && mkdir "$STATE" || exit 1
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { rm -rf "$STATE" "$DIR/.runner" "$DIR/.credentials" "$DIR/.credentials_rsaparams"; }
trap cleanup EXIT
trap 'exit 143' TERM INT

# The JIT config is base64 of a JSON object {"<file name>": "<base64 of the file>"}; like actions/runner, write
# each file into the runner's root directory.
json=$(printf '%s' "$jit" | base64 -d 2>/dev/null | tr -d '\n\r')
jit=
for f in .runner .credentials .credentials_rsaparams; do
  value=$(printf '%s' "$json" | sed -n "s|.*\"\\$f\" *: *\"\\([A-Za-z0-9+/=]*\\)\".*|\\1|p")
  if [ -z "$value" ]; then
    echo "The JIT config is not valid: it has no $f" >&2
    exit 1
  fi
  printf '%s' "$value" | base64 -d >"$DIR/$f" || exit 1
done
json=

runner=$(tr -d '\n\r' <"$DIR/.runner")
field() { printf '%s' "$runner" | sed -n "s|.*\"$1\" *: *\"\\{0,1\\}\\([^\",}]*\\)\"\\{0,1\\}.*|\\1|p"; }
ID=$(field agentId)
NAME=$(field agentName)
BROKER=$(field serverUrlV2)
field fakeBrokerSecret >"$STATE/secret"
if [ -z "$ID" ] || [ -z "$BROKER" ] || [ ! -s "$STATE/secret" ]; then
  echo "The JIT config is not valid: .runner lacks agentId, serverUrlV2 or fakeBrokerSecret" >&2
  exit 1
fi
BROKER=${BROKER%/}

# POSTs the secret to the broker (in the body, from a file: never in argv). Prints the answer.
# Returns 0 on success, 2 when the broker refused (HTTP 4xx: final), 3 when this runner's own state is gone
# (another run.sh in the same folder, or the folder removed: final), 1 otherwise (transport, timeout, 5xx: retry).
call() {
  [ -s "$STATE/secret" ] || return 3
  if timeout "$REQUEST_TIMEOUT" wget -q -O "$STATE/answer" --post-file "$STATE/secret" "$BROKER$1" 2>"$STATE/error"; then
    cat "$STATE/answer"
    return 0
  fi
  grep -q 'server returned error: HTTP/1\.[01] 4' "$STATE/error" && return 2
  return 1
}

# Reports a job step, retrying transport failures (bounded); a refusal (4xx) or lost state is final.
report() {
  attempt=1
  until call "$1" >/dev/null; do
    if [ $? -ge 2 ] || [ "$attempt" -ge "$CONNECT_ATTEMPTS" ]; then return 1; fi
    attempt=$((attempt + 1))
    sleep "$RETRY_SECONDS"
  done
}

log "Current runner version: '$VERSION'"
log "Runner '$NAME' (id $ID)"
attempt=1
lost=0
while :; do
  call "/runners/$ID/connect?version=$VERSION" >/dev/null
  rc=$?
  [ $rc -eq 0 ] && break
  [ $rc -eq 3 ] && { echo "The runner's local state is gone." >&2; exit 1; }
  # An earlier attempt whose answer was lost (timeout, reset) may have connected: the broker then refuses the
  # single-use JIT configuration with 409, and the session it opened is ours.
  if [ $rc -eq 2 ] && [ "$lost" = 1 ] && grep -q ' 409 ' "$STATE/error"; then break; fi
  [ $rc -eq 1 ] && lost=1
  if [ $rc -eq 2 ]; then
    echo "Failed to create a session: the broker refused the connection ($(sed -n 's/.*HTTP/HTTP/p' "$STATE/error"))." >&2
    grep -q ' 409 ' "$STATE/error" && echo "A JIT configuration can be used only once." >&2
    exit 1
  fi
  if [ "$attempt" -ge "$CONNECT_ATTEMPTS" ]; then
    echo "Failed to connect to the broker after $attempt attempts." >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep "$RETRY_SECONDS"
done
log "√ Connected to GitHub"
log "Listening for Jobs"

job=
while [ -z "$job" ]; do
  answer=$(call "/runners/$ID/poll")
  rc=$?
  case $rc in
    0)
      # The broker answers "job <id> <seconds>" or "none" (the long poll ran out).
      # shellcheck disable=SC2086 # split on purpose into its three words
      set -- $answer
      if [ "${1:-}" = job ]; then job=$2; seconds=$3; fi ;;
    2)
      log "The runner registration was removed; exiting."
      exit 1 ;;
    3)
      log "The runner's local state is gone; exiting."
      exit 1 ;;
    *) sleep "$RETRY_SECONDS" ;;
  esac
done

if ! report "/runners/$ID/jobs/$job/started"; then
  log "Could not acquire job $job; exiting."
  exit 1
fi
log "Running job: fake-job-$job"
elapsed=0
while [ "$elapsed" -lt "$seconds" ]; do
  sleep 1
  elapsed=$((elapsed + 1))
  if [ $((elapsed % RENEW_EVERY)) -eq 0 ]; then call "/runners/$ID/jobs/$job/renew" >/dev/null; fi
done

if ! report "/runners/$ID/jobs/$job/done"; then
  log "Could not report job $job as done."
  exit 1
fi
log "Job fake-job-$job completed with result: Succeeded"
exit 0
