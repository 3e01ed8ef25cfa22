#!/usr/bin/env bash
# Install hostnet and start hostnetd on its embedded default: SQLite under /var/lib/hostnet,
# the default `nat` network. Run as root (no sudo needed); running it again is harmless.
#
#   scripts/install.sh              install and start
#   scripts/install.sh --no-start   install only
#   scripts/install.sh --start-only start what is installed (no apt, no pip: works offline)
#
# hostnet goes into its own virtual environment (HOSTNET_PREFIX, default /opt/hostnet),
# made with the system's Python 3.11+ (Debian's refuses pip installs of its own: PEP 668).
# `hostnet` and `hostnetd` are linked into HOSTNET_BIN_DIR (/usr/local/bin), the CNI
# plugin into HOSTNET_CNI_DIRS (/opt/cni/bin /usr/lib/cni), bash completion into
# HOSTNET_COMPLETION_DIR. hostnetd serves HOSTNET_SOCKET (/run/hostnet/hostnet.sock).
# Where PID 1 is systemd and this is the default install (default prefix and socket), a
# hostnetd unit is installed, enabled and started (HOSTNET_SYSTEMD_DIR writes the unit
# there instead, without systemd); elsewhere hostnetd is started in the background with
# its pid beside its socket (/run/hostnet/hostnetd.pid) and its log in HOSTNET_LOG
# (/var/log/hostnetd.log). Extra daemon flags: HOSTNETD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=1 install=1
for arg in "$@"; do
  case $arg in
    --no-start) start=0 ;;
    --start-only) install=0 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "install.sh: run it as root" >&2; exit 1; }

prefix=${HOSTNET_PREFIX:-/opt/hostnet}
bin_dir=${HOSTNET_BIN_DIR:-/usr/local/bin}
completion_dir=${HOSTNET_COMPLETION_DIR:-/usr/share/bash-completion/completions}
socket=${HOSTNET_SOCKET:-/run/hostnet/hostnet.sock}
pidfile=$(dirname "$socket")/hostnetd.pid # beside the socket: one per install
logfile=${HOSTNET_LOG:-/var/log/hostnetd.log}
systemd=0
if [[ -n ${HOSTNET_SYSTEMD_DIR:-} ]]; then
  systemd=1
elif [[ -d /run/systemd/system ]]; then
  if [[ $prefix == /opt/hostnet && $socket == /run/hostnet/hostnet.sock ]]; then
    systemd=2 # the real thing: enable and start the unit
  else
    # hostnetd.service is the default install's; another install must not replace it
    echo "not the default install ($prefix, $socket): no systemd unit, hostnetd runs in the background"
  fi
fi
unit_dir=${HOSTNET_SYSTEMD_DIR:-/etc/systemd/system}

install_all() {
  # --- system packages -------------------------------------------------------------------
  need_apt=()
  for pkg in nftables libnftables1 iproute2 busybox-static python3 python3-venv; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
  if ((${#need_apt[@]})); then
    echo "== apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi

  # --- the virtual environment -----------------------------------------------------------
  echo "== hostnet into $prefix"
  # a copy, not an editable link (the clone may go away); the second call takes the clone's
  # code even when its version number did not change
  bash scripts/venv.sh "$prefix" "$repo"
  bash scripts/venv.sh "$prefix" --no-deps --force-reinstall "$repo"
  mkdir -p "$bin_dir" "$prefix/share/doc/hostnet"
  for cmd in hostnet hostnetd; do ln -sfn "$prefix/bin/$cmd" "$bin_dir/$cmd"; done
  install -m 644 README.md "$prefix/share/doc/hostnet/README.md"
  PYTHON="$prefix/bin/python" bash scripts/install-cni.sh
  if [[ -d $(dirname "$completion_dir") ]]; then
    mkdir -p "$completion_dir"
    "$prefix/bin/hostnet" completion bash >"$completion_dir/hostnet"
  fi
  echo "hostnet $("$prefix/bin/hostnet" --version | cut -d' ' -f2) installed in $prefix; commands in $bin_dir"

  # --- the service -----------------------------------------------------------------------
  if ((systemd)); then
    mkdir -p "$unit_dir"
    sed "s|@PREFIX@|$prefix|g" packaging/hostnetd.service.in >"$unit_dir/hostnetd.service"
    if [[ -n ${HOSTNETD_ARGS:-} && ! -e /etc/default/hostnetd ]] && ((systemd == 2)); then
      printf 'HOSTNETD_ARGS="%s"\n' "$HOSTNETD_ARGS" >/etc/default/hostnetd
    fi
    echo "unit $unit_dir/hostnetd.service"
  fi
}
if ((install)); then
  install_all
elif [[ ! -x $prefix/bin/hostnetd ]]; then
  echo "install.sh: no hostnet in $prefix to start; run install.sh without --start-only" >&2
  exit 1
fi
((start)) || exit 0

if ((systemd == 2)); then
  systemctl daemon-reload
  systemctl enable --now hostnetd.service
  systemctl --no-pager --lines=0 status hostnetd.service || true
  "$prefix/bin/hostnet" network ls
  exit 0
fi
mkdir -p "$(dirname "$socket")" "$(dirname "$logfile")"
running=$(cat "$pidfile" 2>/dev/null || true)
if [[ -n $running ]] && kill -0 "$running" 2>/dev/null && grep -q hostnetd "/proc/$running/cmdline" 2>/dev/null; then
  echo "hostnetd already running (pid $running, $pidfile); to run the new version: kill $running, then run this again"
  exit 0
fi
# shellcheck disable=SC2086
nohup "$prefix/bin/hostnetd" --socket "$socket" ${HOSTNETD_ARGS:-} >>"$logfile" 2>&1 &
pid=$!
echo $pid >"$pidfile"
for _ in $(seq 300); do # a start reconciles first: it can take a while
  [[ -S $socket ]] && "$prefix/bin/hostnet" --socket "$socket" network ls >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { tail -5 "$logfile" >&2; rm -f "$pidfile"; exit 1; }
  sleep 0.1
done
"$prefix/bin/hostnet" --socket "$socket" network ls
echo "hostnetd running (pid $pid) on $socket; pid file $pidfile; log $logfile; stop: kill \$(cat $pidfile)"
