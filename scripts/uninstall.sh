#!/usr/bin/env bash
# Remove hostnet: first everything hostnetd made (`hostnet system reset --force`:
# compartments it owns, switches, nft tables, tc programs, DHCP clients, its state), then
# the service, the commands, the CNI plugin, completion and the virtual environment.
# Run as root. The same HOSTNET_* variables as install.sh say where things are; when
# hostnetd is not running, it is started once (with HOSTNETD_ARGS, without the default
# network) to do the reset. --keep-state leaves the networks and the state alone.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
for arg in "$@"; do
  case $arg in
    --keep-state) keep=1 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "uninstall.sh: run it as root" >&2; exit 1; }
prefix=${HOSTNET_PREFIX:-/opt/hostnet}
bin_dir=${HOSTNET_BIN_DIR:-/usr/local/bin}
completion_dir=${HOSTNET_COMPLETION_DIR:-/usr/share/bash-completion/completions}
unit_dir=${HOSTNET_SYSTEMD_DIR:-/etc/systemd/system}
socket=${HOSTNET_SOCKET:-/run/hostnet/hostnet.sock}
pidfile=/run/hostnet/hostnetd.pid
logfile=${HOSTNET_LOG:-/var/log/hostnetd.log}
hostnet=$prefix/bin/hostnet

if ((!keep)) && [[ -x $hostnet ]]; then
  if ! HOSTNET_SOCKET=$socket "$hostnet" network ls >/dev/null 2>&1; then
    echo "== starting hostnetd once for the reset"
    # shellcheck disable=SC2086
    "$prefix/bin/hostnetd" --socket "$socket" -b none ${HOSTNETD_ARGS:-} >>"$logfile" 2>&1 &
    tmp_pid=$!
    for _ in $(seq 300); do
      HOSTNET_SOCKET=$socket "$hostnet" network ls >/dev/null 2>&1 && break
      kill -0 $tmp_pid 2>/dev/null || { echo "hostnetd did not start; see $logfile" >&2; exit 1; }
      sleep 0.1
    done
  fi
  echo "== hostnet system reset --force"
  HOSTNET_SOCKET=$socket "$hostnet" system reset --force
  for _ in $(seq 100); do [[ -S $socket ]] || break; sleep 0.1; done
  for pid in ${tmp_pid:-} $(cat $pidfile 2>/dev/null); do # the daemon ends after the reset
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
fi

if [[ -f $unit_dir/hostnetd.service ]]; then
  if [[ -d /run/systemd/system ]] && [[ $unit_dir == /etc/systemd/system ]]; then
    systemctl disable --now hostnetd.service 2>/dev/null || true
  fi
  rm -f "$unit_dir/hostnetd.service"
  [[ -d /run/systemd/system ]] && systemctl daemon-reload 2>/dev/null || true
fi
if [[ -f $pidfile ]]; then
  pid=$(cat $pidfile)
  if kill -0 "$pid" 2>/dev/null && grep -q hostnetd "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
  fi
  rm -f $pidfile
fi
for cmd in hostnet hostnetd; do
  [[ $(readlink "$bin_dir/$cmd" 2>/dev/null) == "$prefix/bin/$cmd" ]] && rm -f "$bin_dir/$cmd"
done
for dir in ${HOSTNET_CNI_DIRS:-/opt/cni/bin /usr/lib/cni}; do
  rm -f "$dir/hostnet" "$dir/hostnet-cni"
done
rm -f "$completion_dir/hostnet"
rm -rf "$prefix"
rmdir /run/hostnet 2>/dev/null || true
((keep)) && echo "hostnet removed (its networks and state kept)" || echo "hostnet removed"
