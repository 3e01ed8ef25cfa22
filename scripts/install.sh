#!/usr/bin/env bash
# Install hostnet and start hostnetd on its embedded default: SQLite under /var/lib/hostnet,
# the default `nat` network. Run as root (no sudo needed); running it again is harmless.
#
#   scripts/install.sh              install and start
#   scripts/install.sh --no-start   install only
#
# hostnet goes into its own virtual environment (HOSTNET_PREFIX, default /opt/hostnet),
# made with the system's Python 3.11+ (Debian's refuses pip installs of its own: PEP 668).
# `hostnet` and `hostnetd` are linked into HOSTNET_BIN_DIR (/usr/local/bin), the CNI
# plugin into /opt/cni/bin and /usr/lib/cni, bash completion into
# HOSTNET_COMPLETION_DIR. Where PID 1 is systemd, a hostnetd unit is installed, enabled
# and started (HOSTNET_SYSTEMD_DIR, default /etc/systemd/system; set it to write the unit
# elsewhere without systemd); elsewhere hostnetd is started in the background with its
# pid in /run/hostnet/hostnetd.pid. Extra daemon flags: HOSTNETD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=1
for arg in "$@"; do
  case $arg in
    --no-start) start=0 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "install.sh: run it as root" >&2; exit 1; }

prefix=${HOSTNET_PREFIX:-/opt/hostnet}
bin_dir=${HOSTNET_BIN_DIR:-/usr/local/bin}
completion_dir=${HOSTNET_COMPLETION_DIR:-/usr/share/bash-completion/completions}
systemd=0
if [[ -n ${HOSTNET_SYSTEMD_DIR:-} ]]; then
  systemd=1
elif [[ -d /run/systemd/system ]]; then
  systemd=2 # the real thing: enable and start the unit
fi
unit_dir=${HOSTNET_SYSTEMD_DIR:-/etc/systemd/system}

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
((start)) || exit 0

if ((systemd == 2)); then
  systemctl daemon-reload
  systemctl enable --now hostnetd.service
  systemctl --no-pager --lines=0 status hostnetd.service || true
  "$bin_dir/hostnet" network ls
  exit 0
fi
mkdir -p /run/hostnet /var/log
pidfile=/run/hostnet/hostnetd.pid
if [[ -f $pidfile ]] && kill -0 "$(cat $pidfile)" 2>/dev/null; then
  echo "hostnetd already running (pid $(cat $pidfile)); to run the new version: kill $(cat $pidfile), then run this again"
  exit 0
fi
# shellcheck disable=SC2086
nohup "$prefix/bin/hostnetd" ${HOSTNETD_ARGS:-} >>/var/log/hostnetd.log 2>&1 &
echo $! >$pidfile
for _ in $(seq 100); do
  [[ -S /run/hostnet/hostnet.sock ]] && "$bin_dir/hostnet" network ls >/dev/null 2>&1 && break
  kill -0 "$(cat $pidfile)" 2>/dev/null || { tail -5 /var/log/hostnetd.log >&2; exit 1; }
  sleep 0.1
done
"$bin_dir/hostnet" network ls
echo "hostnetd running (pid $(cat $pidfile)); log /var/log/hostnetd.log; stop: kill \$(cat $pidfile)"
