#!/bin/bash
# Idempotent LXD test-host setup for Debian 12 (bookworm) WITHOUT systemd.
#   - installs LXD 5.0.2 from Debian (lxd, lxd-client) + nftables (needed for lxdbr0 firewall/NAT)
#   - starts lxcfs (optional) and the LXD daemon in the background (no systemd)
#   - creates storage pool "default" (dir), bridge "lxdbr0" (falls back to no network), default profile devices
#   - builds + imports a tiny busybox image (alias: probe) from Debian's busybox-static .deb
#   - optional: LXD_WITH_DEBIAN=1 also debootstraps a bookworm minbase+systemd+udev image (alias: probe-debian)
#   - prints LXD_SOCKET=<path> as the last line
# Usage:  setup.sh          # set up (safe to re-run)
#         setup.sh stop     # stop the lxd/lxcfs processes THIS script started (by recorded PID)
# Env:    LXD_DIR (default /var/lib/lxd), LXD_SETUP_WORK (default: lxd-test-host under the system temp dir),
#         LXD_BRIDGE_CIDR (default 10.200.77.1/24), LXD_NO_NETWORK=1, LXD_WITH_DEBIAN=1,
#         LXD_IMAGE_ALIAS (default github-runner-test), DEBIAN_MIRROR (default: first URI in /etc/apt/sources.list.d/debian.sources)
set -euo pipefail

export LXD_DIR="${LXD_DIR:-/var/lib/lxd}"
WORK="${LXD_SETUP_WORK:-${TMPDIR:-/tmp}/lxd-test-host}"
BRIDGE="lxdbr0"
BRIDGE_CIDR="${LXD_BRIDGE_CIDR:-10.200.77.1/24}"
ALIAS="${LXD_IMAGE_ALIAS:-github-runner-test}"
SOCK="$LXD_DIR/unix.socket"
mkdir -p "$WORK"
log() { echo "[setup $(date -u +%T)] $*" >&2; }

stop_pid() { # $1 = pidfile; only kills the PID we recorded, and only if it is the expected binary
  local f="$1" bin="$2" p
  [ -f "$f" ] || return 0
  p="$(cat "$f")"
  if [ -n "$p" ] && [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$bin" ]; then
    log "stopping $bin pid $p"; kill -TERM "$p"
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$f"
}

if [ "${1:-}" = "stop" ]; then
  # graceful: 'lxd shutdown' stops running instances, then the daemon exits (only if we started it)
  if [ -f "$WORK/lxd.pid" ] && [ "$(readlink "/proc/$(cat "$WORK/lxd.pid")/exe" 2>/dev/null)" = /usr/bin/lxd ]; then
    timeout 90 lxd shutdown --timeout=60 >/dev/null 2>&1 || true
  fi
  stop_pid "$WORK/lxd.pid" /usr/bin/lxd
  # LXD leaves its per-bridge dnsmasq, the bridge and its nft table behind on exit; remove them
  for f in "$LXD_DIR"/networks/*/dnsmasq.pid; do
    [ -f "$f" ] || continue
    p="$(awk '/^pid:/{print $2}' "$f")"
    [ -n "$p" ] && [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/sbin/dnsmasq ] && { log "stopping dnsmasq pid $p"; kill -TERM "$p"; }
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  nft delete table inet lxd 2>/dev/null || true
  stop_pid "$WORK/lxcfs.pid" /usr/bin/lxcfs
  mountpoint -q /var/lib/lxcfs 2>/dev/null && { fusermount -u /var/lib/lxcfs 2>/dev/null || umount -l /var/lib/lxcfs || true; }
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

# ---- 1. packages -------------------------------------------------------------------------
PKGS="lxd lxd-client nftables"
[ "${LXD_WITH_DEBIAN:-0}" = 1 ] && PKGS="$PKGS debootstrap"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "apt-get install:$missing"
  # policy-rc.d / missing systemd just make the postinst 'start' no-ops; that's fine
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >"$WORK/apt.log" 2>&1 || {
    apt-get update -q >>"$WORK/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >>"$WORK/apt.log" 2>&1; }
fi

# ---- 2. lxcfs (optional, makes /proc/meminfo etc. container-aware) ------------------------
# An lxcfs whose process died leaves its FUSE mount behind: every stat of it fails with
# "Transport endpoint is not connected", which breaks mkdir here and LXD's container starts. Unmount it.
if grep -q ' /var/lib/lxcfs fuse' /proc/mounts && ! stat /var/lib/lxcfs >/dev/null 2>&1; then
  log "unmounting a dead lxcfs mount at /var/lib/lxcfs"
  fusermount -u /var/lib/lxcfs 2>/dev/null || umount -l /var/lib/lxcfs
fi
if [ -e /dev/fuse ] && ! mountpoint -q /var/lib/lxcfs 2>/dev/null; then
  mkdir -p /var/lib/lxcfs
  setsid nohup /usr/bin/lxcfs /var/lib/lxcfs >"$WORK/lxcfs.log" 2>&1 </dev/null &
  echo $! >"$WORK/lxcfs.pid"
  for _ in $(seq 1 20); do mountpoint -q /var/lib/lxcfs && break; sleep 0.25; done
  mountpoint -q /var/lib/lxcfs && log "lxcfs started (pid $(cat "$WORK/lxcfs.pid"))" || log "WARN: lxcfs did not mount (continuing)"
fi

# ---- 3. daemon ---------------------------------------------------------------------------
# LXD's image publish looks up the group of shifted files (gid 100000+, in no /etc/group); glibc then asks
# nss-systemd, which aborts without systemd as PID 1 and takes the daemon down with SIGABRT mid-test (measured:
# "Assertion 'close_nointr(fd) != -EBADF' failed" in lxd.stdout). A test host without systemd has no use for that
# module: take it out of the passwd, group and shadow lines, before the daemon starts (glibc reads the file once).
if [ ! -d /run/systemd/system ] && grep -Eq '^(passwd|group|shadow):.*systemd' /etc/nsswitch.conf 2>/dev/null; then
  log "removing nss-systemd from /etc/nsswitch.conf (no systemd here; it aborts LXD's image publish)"
  sed -i -E '/^(passwd|group|shadow):/ s/[[:space:]]+systemd//' /etc/nsswitch.conf
  NSS_CHANGED=1
fi
# LXD 5.0.2 keeps a file descriptor per started container (its lxc.log) for as long as it runs: after about a thousand
# starts (benchmarks) it held 3445, and the first start of a container then failed its uid shift ("Failed to handle
# idmapped storage: Failed to change ownership of ...", "Failed readlink" in lxd.stdout). Start such a daemon afresh.
LXD_PID="$(pgrep -x lxd | head -1 || true)"
if [ -n "$LXD_PID" ] && [ "$(ls "/proc/$LXD_PID/fd" 2>/dev/null | wc -l)" -gt 1000 ]; then
  log "lxd holds $(ls "/proc/$LXD_PID/fd" | wc -l) file descriptors: restarting it"
  NSS_CHANGED=1
fi
if [ "${NSS_CHANGED:-0}" = 1 ] && lxd waitready --timeout=1 >/dev/null 2>&1; then
  # A daemon started before the change keeps the old module loaded (or holds too many fds): restart it.
  log "restarting lxd"
  timeout 90 lxd shutdown --timeout=60 >/dev/null 2>&1 || true
fi
if lxd waitready --timeout=1 >/dev/null 2>&1; then
  log "lxd already running on $SOCK"
else
  log "starting lxd (LXD_DIR=$LXD_DIR, log $WORK/lxd.log)"
  setsid nohup /usr/bin/lxd --group root --logfile "$WORK/lxd.log" >"$WORK/lxd.stdout" 2>&1 </dev/null &
  echo $! >"$WORK/lxd.pid"
  lxd waitready --timeout=60
  log "lxd ready (pid $(cat "$WORK/lxd.pid"))"
fi

# ---- 4. storage pool ---------------------------------------------------------------------
lxc storage show default >/dev/null 2>&1 || { log "creating storage pool default (dir)"; lxc storage create default dir >/dev/null; }
lxc profile device show default | grep -q '^root:' || lxc profile device add default root disk path=/ pool=default >/dev/null

# ---- 5. network (bridge; falls back to none) ---------------------------------------------
HAVE_NET=0
if [ "${LXD_NO_NETWORK:-0}" != 1 ]; then
  if lxc network show "$BRIDGE" >/dev/null 2>&1; then HAVE_NET=1
  elif lxc network create "$BRIDGE" ipv4.address="$BRIDGE_CIDR" ipv4.nat=true ipv6.address=none >"$WORK/net.log" 2>&1; then
    HAVE_NET=1; log "created bridge $BRIDGE ($BRIDGE_CIDR)"
  elif lxc network create "$BRIDGE" ipv4.address="$BRIDGE_CIDR" ipv4.nat=false ipv4.firewall=false ipv6.address=none >>"$WORK/net.log" 2>&1; then
    HAVE_NET=1; log "created bridge $BRIDGE without NAT/firewall (see $WORK/net.log)"
  else
    log "WARN: bridge creation failed, continuing WITHOUT network: $(tail -1 "$WORK/net.log")"
  fi
fi
if [ "$HAVE_NET" = 1 ] && ! lxc profile device show default | grep -q '^eth0:'; then
  lxc profile device add default eth0 nic network="$BRIDGE" name=eth0 >/dev/null
fi

# ---- 6. busybox image (alias $ALIAS) -----------------------------------------------------
if ! lxc image alias list --format csv 2>/dev/null | grep -q "^$ALIAS,"; then
  log "building busybox image"
  B="$WORK/busybox"; rm -rf "$B"; mkdir -p "$B/dl" "$B/img/rootfs" "$B/img/templates"
  (cd "$B/dl" && apt-get download -q busybox-static >/dev/null 2>&1) || { apt-get update -q >/dev/null 2>&1; (cd "$B/dl" && apt-get download -q busybox-static >/dev/null 2>&1); }
  dpkg-deb -x "$B"/dl/busybox-static_*.deb "$B/dl/x"
  R="$B/img/rootfs"
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,proc,sys,dev,tmp,root,run,var/log,usr/share/udhcpc}
  chmod 1777 "$R/tmp"
  cp "$B/dl/x/bin/busybox" "$R/bin/busybox"
  for a in $("$R/bin/busybox" --list-full); do [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"; done
  printf '::sysinit:/etc/init.d/rcS\n::shutdown:/bin/sync\n' >"$R/etc/inittab"
  cat >"$R/etc/init.d/rcS" <<'EOF'
#!/bin/sh
hostname -F /etc/hostname 2>/dev/null
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  udhcpc -b -i eth0 -t 5 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
fi
exit 0
EOF
  cat >"$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && { ip route del default 2>/dev/null; set -- $router; ip route add default via "$1" dev "$interface"; }
    : >/etc/resolv.conf; for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done ;;
esac
exit 0
EOF
  chmod +x "$R/etc/init.d/rcS" "$R/usr/share/udhcpc/default.script"
  # the unprivileged user that runs the runner application (as in the real runner image)
  mkdir -p "$R/home/runner" && chown 1001:1001 "$R/home/runner"
  printf 'root:x:0:0:root:/root:/bin/sh\nrunner:x:1001:1001:runner:/home/runner:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\nrunner:x:1001:\n' >"$R/etc/group"
  echo busybox >"$R/etc/hostname"; : >"$R/etc/resolv.conf"; echo '127.0.0.1 localhost' >"$R/etc/hosts"
  echo '{{ container.name }}' >"$B/img/templates/hostname.tpl"
  cat >"$B/img/metadata.yaml" <<EOF
architecture: x86_64
creation_date: $(date +%s)
properties:
  description: "busybox test image"
  os: busybox
  release: "1.35"
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
EOF
  (cd "$B/img" && tar --numeric-owner -czf "$WORK/busybox-image.tar.gz" metadata.yaml templates rootfs)
  lxc image import "$WORK/busybox-image.tar.gz" --alias "$ALIAS" >/dev/null
  log "imported image alias $ALIAS"
fi

# ---- 7. optional Debian minbase+systemd image (alias ${ALIAS}-debian) ----------------------
if [ "${LXD_WITH_DEBIAN:-0}" = 1 ] && ! lxc image alias list --format csv 2>/dev/null | grep -q "^${ALIAS}-debian,"; then
  MIRROR="${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
  D="$WORK/debian"; rm -rf "$D"; mkdir -p "$D/templates"
  log "debootstrap bookworm from $MIRROR (~45s)"
  debootstrap --variant=minbase --include=systemd-sysv,udev,iproute2 bookworm "$D/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
  mkdir -p "$D/rootfs/etc/systemd/network"
  printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$D/rootfs/etc/systemd/network/eth0.network"
  chroot "$D/rootfs" systemctl enable systemd-networkd >/dev/null 2>&1
  echo "nameserver ${BRIDGE_CIDR%/*}" >"$D/rootfs/etc/resolv.conf"
  chroot "$D/rootfs" apt-get clean; rm -rf "$D/rootfs/var/lib/apt/lists/"*
  echo '{{ container.name }}' >"$D/templates/hostname.tpl"
  printf 'architecture: x86_64\ncreation_date: %s\nproperties:\n  description: "Debian bookworm minbase+systemd"\n  os: debian\n  release: bookworm\ntemplates:\n  /etc/hostname:\n    when: [create, copy]\n    template: hostname.tpl\n' "$(date +%s)" >"$D/metadata.yaml"
  # uncompressed tar: the dir driver unpacks it per instance; xz would add ~4s per create
  (cd "$D" && tar --numeric-owner -cf "$WORK/debian-image.tar" metadata.yaml templates rootfs)
  lxc image import "$WORK/debian-image.tar" --alias "${ALIAS}-debian" >/dev/null
  log "imported image alias ${ALIAS}-debian"
fi

curl -sf --unix-socket "$SOCK" http://lxd/1.0 >/dev/null && log "API OK"
echo "LXD_SOCKET=$SOCK"
