#!/bin/sh
# The runner image recipe: turns a fresh Ubuntu or Debian container into a runner image.
# `github-runner image build` runs it as root inside a builder container, then publishes that container.
# POSIX sh; every step is idempotent, so it can also be re-run by hand (`sh runner-image.sh`) to debug.
#
# Settings (environment; `image build` passes them as `env NAME=value` arguments):
#   RUNNER_TARBALL    the verified runner application (actions-runner-linux-*.tar.gz), already in the container;
#                     unpacked into /home/runner/actions-runner, so spawns need no push
#   WITH_DOCKER       1 (default): install docker.io when the distribution has it; 0: skip docker
#   DOCKERHUB_MIRROR  an https URL written to /etc/docker/daemon.json as a registry mirror (optional)
#   USER_SCRIPT       the operator's image-script, run last, as root (optional)
# The proxy reaches apt and docker through http_proxy/https_proxy/no_proxy (either case) in the environment:
# the builder carries them as LXD environment.* keys.
set -eu

RUNNER_DIR=/home/runner/actions-runner
WITH_DOCKER=${WITH_DOCKER:-1}
DOCKERHUB_MIRROR=${DOCKERHUB_MIRROR:-}
RUNNER_TARBALL=${RUNNER_TARBALL:-}
USER_SCRIPT=${USER_SCRIPT:-}
export DEBIAN_FRONTEND=noninteractive

log() { echo "[runner-image $(date -u +%T)] $*"; }
die() { echo "runner-image: $*" >&2; exit 1; }

# Bounded apt: retries on flaky mirrors, a timeout per connection, and a wait for the dpkg lock instead of failing
# at once (a first boot may still be running apt's own jobs).
APT_OPTS="-q -y -o Acquire::Retries=5 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
  -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
apt_get() {
  # shellcheck disable=SC2086 # APT_OPTS is a list of words on purpose
  timeout 900 apt-get $APT_OPTS "$@"
}
apt_update() {
  for attempt in 1 2 3; do
    apt_get update && return 0
    log "apt-get update failed (attempt $attempt of 3)"
    sleep $((attempt * 5))
  done
  die "apt-get update failed 3 times: is the distribution's mirror (or the proxy) reachable?"
}
# The first of the named packages that the distribution offers (names differ between Ubuntu and Debian releases).
first_available() {
  for p in "$@"; do
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then echo "$p"; return 0; fi
  done
  return 1
}
# The newest libicuNN on offer (Debian 12: libicu72, Ubuntu 24.04: libicu74).
newest_libicu() {
  apt-cache pkgnames libicu 2>/dev/null | grep -E '^libicu[0-9]+(t64)?$' | sort -V | tail -n 1
}

# ---- network: the container's DHCP may still be on its way -------------------------------------------------
i=0
until ip route show default 2>/dev/null | grep -q .; do
  i=$((i + 1))
  [ "$i" -le 60 ] || die "no default route after 60 s: the builder has no network"
  sleep 1
done

# ---- no background apt: unattended upgrades held the dpkg lock and failed jobs ------------------------------
if command -v systemctl >/dev/null 2>&1; then
  for unit in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
    unattended-upgrades.service; do
    systemctl stop "$unit" >/dev/null 2>&1 || true
    systemctl mask "$unit" >/dev/null 2>&1 || true
  done
fi
mkdir -p /etc/apt/apt.conf.d
printf 'APT::Periodic::Update-Package-Lists "0";\nAPT::Periodic::Unattended-Upgrade "0";\n' \
  >/etc/apt/apt.conf.d/20auto-upgrades

# ---- packages ----------------------------------------------------------------------------------------------
log "apt-get update"
apt_update
if dpkg-query -W -f='${Status}' unattended-upgrades 2>/dev/null | grep -q "ok installed"; then
  apt_get purge unattended-upgrades
fi
# What the runner application needs (actions/runner's installdependencies.sh), and what jobs take for granted.
icu=$(newest_libicu) || true
[ -n "$icu" ] || die "no libicu package found"
lttng=$(first_available liblttng-ust1t64 liblttng-ust1 liblttng-ust0) || die "no liblttng-ust package found"
ssl=$(first_available libssl3t64 libssl3 libssl1.1) || die "no libssl package found"
log "installing the base packages ($icu, $lttng, $ssl)"
apt_get install --no-install-recommends ca-certificates curl git jq tar unzip sudo gzip \
  "$icu" libkrb5-3 "$lttng" "$ssl" zlib1g

# ---- docker (optional): nesting is set on the builder and the runners --------------------------------------
docker_installed=0
if [ "$WITH_DOCKER" = 1 ]; then
  if first_available docker.io >/dev/null; then
    log "installing docker.io"
    # The proxy reaches dockerd through a drop-in: the daemon does not read the builder's exec environment.
    mkdir -p /etc/systemd/system/docker.service.d
    proxy_env=""
    for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
      eval "value=\${$name:-}"
      # shellcheck disable=SC2154 # value is set by the eval
      if [ -n "$value" ]; then
        proxy_env="${proxy_env}Environment=\"$name=$(printf '%s' "$value" | sed 's/%/%%/g')\"
"
      fi
    done
    if [ -n "$proxy_env" ]; then
      printf '[Service]\n%s' "$proxy_env" >/etc/systemd/system/docker.service.d/http-proxy.conf
    fi
    mkdir -p /etc/docker
    if [ -n "$DOCKERHUB_MIRROR" ]; then
      printf '{\n  "registry-mirrors": ["%s"]\n}\n' "$DOCKERHUB_MIRROR" >/etc/docker/daemon.json
    else
      printf '{}\n' >/etc/docker/daemon.json
    fi
    # Docker sets the FORWARD policy to DROP, which cuts off traffic the runner's network forwards; the
    # DOCKER-USER accept rule undoes that, and this unit puts it back every time docker (re)starts.
    cat >/etc/systemd/system/github-runner-docker-user.service <<'EOF'
[Unit]
Description=Accept forwarded traffic in DOCKER-USER (docker sets the FORWARD policy to DROP)
After=docker.service
BindsTo=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'iptables -C DOCKER-USER -j ACCEPT 2>/dev/null || iptables -I DOCKER-USER -j ACCEPT'

[Install]
WantedBy=docker.service
EOF
    apt_get install --no-install-recommends docker.io iptables
    systemctl enable github-runner-docker-user.service >/dev/null 2>&1 || true
    docker_installed=1
  else
    log "docker.io is not offered by this distribution: skipped"
  fi
fi

# ---- the runner user: unprivileged, no sudo unless the image-script grants it ------------------------------
if ! id runner >/dev/null 2>&1; then
  if getent passwd 1001 >/dev/null || getent group 1001 >/dev/null; then
    useradd --create-home --shell /bin/bash runner
  else
    groupadd --gid 1001 runner
    useradd --create-home --shell /bin/bash --uid 1001 --gid 1001 runner
  fi
fi
if [ "$docker_installed" = 1 ]; then usermod -aG docker runner; fi
# To grant passwordless sudo, an image-script can write: echo 'runner ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/runner

# ---- the runner application, baked in ----------------------------------------------------------------------
if [ -n "$RUNNER_TARBALL" ]; then
  [ -f "$RUNNER_TARBALL" ] || die "the runner application $RUNNER_TARBALL is missing"
  log "unpacking the runner application into $RUNNER_DIR"
  rm -rf "$RUNNER_DIR"
  mkdir -p "$RUNNER_DIR"
  tar -xzf "$RUNNER_TARBALL" -C "$RUNNER_DIR"
  chown -R runner:runner /home/runner
  rm -f "$RUNNER_TARBALL"
  [ -x "$RUNNER_DIR/run.sh" ] || die "the runner application has no run.sh"
fi

# ---- the operator's additions --------------------------------------------------------------------------------
if [ -n "$USER_SCRIPT" ]; then
  log "running the image-script"
  chmod 0755 "$USER_SCRIPT"
  "$USER_SCRIPT" || die "the image-script failed with exit code $?"
  rm -f "$USER_SCRIPT"
fi

# ---- clean: a smaller image, and no identity shared by every instance made from it -----------------------
log "cleaning up"
apt_get clean
rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/*
# An empty machine-id is generated afresh at each boot; a shared one would give every runner the same DHCP
# client id (and address) on the bridge.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
find /var/log -type f -exec truncate -s 0 {} + 2>/dev/null || true
log "done"
