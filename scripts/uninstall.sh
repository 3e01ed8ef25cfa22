#!/usr/bin/env bash
# Remove hostnet: first everything hostnetd made (`hostnet system reset --force`:
# compartments it owns, switches, nft tables, tc programs, DHCP clients, its state), then
# the service, the commands, the CNI plugin, completion and the virtual environment.
# Run as root. The same HOSTNET_* variables as install.sh say which install; only that one
# is touched: the daemon stopped is the one answering on HOSTNET_SOCKET (by the pid it
# reports), the pid file removed the one beside that socket. When no hostnetd answers
# there, one is started once (with HOSTNETD_ARGS, without the default network) to do the
# reset. --keep-state leaves the networks and the state alone (the daemon still stops).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
for arg in "$@"; do
  case $arg in
    --keep-state) keep=1 ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "uninstall.sh: run it as root" >&2; exit 1; }
prefix=${HOSTNET_PREFIX:-/opt/hostnet}
bin_dir=${HOSTNET_BIN_DIR:-/usr/local/bin}
socket=${HOSTNET_SOCKET:-/run/hostnet/hostnet.sock}
run_dir=$(dirname "$socket")
pidfile=$run_dir/hostnetd.pid # install.sh keeps it beside the socket
logfile=${HOSTNET_LOG:-/var/log/hostnetd.log}
hostnet=$prefix/bin/hostnet
default=0 # the default install owns what is shared: the real systemd unit, default dirs
[[ $prefix == /opt/hostnet && $socket == /run/hostnet/hostnet.sock ]] && default=1

answers() { HOSTNET_SOCKET=$socket "$hostnet" network ls >/dev/null 2>&1; }
reported_pid() { # the pid the hostnetd answering on $socket reports (empty: none answers)
  HOSTNET_SOCKET=$socket "$hostnet" system info --format json 2>/dev/null |
    "$prefix/bin/python" -c 'import json, sys; print(json.load(sys.stdin).get("Pid", ""))' \
      2>/dev/null || true
}
is_hostnetd() { [[ -n $1 ]] && grep -q hostnetd "/proc/$1/cmdline" 2>/dev/null; }
running() { # a zombie has ended (its parent, maybe an init that does not reap, has not waited)
  [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) =~ ^[^ZX]$ ]]
}
wait_gone() { for _ in $(seq 200); do running "$1" || return 0; sleep 0.1; done; return 1; }

pid="" how=""
if [[ -x $hostnet ]]; then
  pid=$(reported_pid)
  if [[ -z $pid ]] && answers; then
    echo "uninstall.sh: the hostnetd on $socket does not say its pid (an older version): it is not stopped by pid" >&2
  fi
elif ((!keep)); then
  echo "uninstall.sh: no $hostnet: no reset (nothing asked which hostnetd answers on $socket)" >&2
fi

if ((!keep)) && [[ -x $hostnet ]]; then
  if [[ -z $pid ]] && ! answers; then
    echo "== starting hostnetd once for the reset"
    # shellcheck disable=SC2086
    "$prefix/bin/hostnetd" --socket "$socket" -b none ${HOSTNETD_ARGS:-} >>"$logfile" 2>&1 &
    pid=$! how=", started for the reset"
    for _ in $(seq 300); do
      answers && break
      running "$pid" || { echo "hostnetd did not start; see $logfile" >&2; exit 1; }
      sleep 0.1
    done
  fi
  echo "== hostnet system reset --force"
  HOSTNET_SOCKET=$socket "$hostnet" system reset --force # the daemon ends after it
  for _ in $(seq 100); do [[ -S $socket ]] || break; sleep 0.1; done
fi

# the unit: only the default install's, only systemd's own directory (or the one named)
unit=""
if [[ -n ${HOSTNET_SYSTEMD_DIR:-} ]]; then
  unit=$HOSTNET_SYSTEMD_DIR/hostnetd.service
elif ((default)); then
  unit=/etc/systemd/system/hostnetd.service
  if [[ -f $unit && -d /run/systemd/system ]]; then
    systemctl disable --now hostnetd.service 2>/dev/null || true
  fi
fi
if [[ -n $unit && -f $unit ]]; then
  rm -f "$unit"
  [[ -z ${HOSTNET_SYSTEMD_DIR:-} && -d /run/systemd/system ]] && systemctl daemon-reload 2>/dev/null || true
fi

if is_hostnetd "$pid"; then
  kill "$pid"
fi
if [[ -n $pid ]]; then
  wait_gone "$pid" || { echo "uninstall.sh: hostnetd (pid $pid) on $socket did not stop" >&2; exit 1; }
  echo "stopped hostnetd (pid $pid$how) on $socket"
fi
if [[ -f $pidfile ]]; then
  named=$(cat "$pidfile")
  if [[ $named == "$pid" ]] || ! running "$named"; then
    rm -f "$pidfile"
  else
    echo "kept $pidfile: it names pid $named, which runs and is not the hostnetd on $socket"
  fi
fi

for cmd in hostnet hostnetd; do
  [[ $(readlink "$bin_dir/$cmd" 2>/dev/null) == "$prefix/bin/$cmd" ]] && rm -f "$bin_dir/$cmd"
done
# the CNI plugin and completion in the default directories serve every install: another
# install removes them only where its variables name them (or a launcher names its prefix)
for dir in ${HOSTNET_CNI_DIRS:-/opt/cni/bin /usr/lib/cni}; do
  if ((default)) || [[ -n ${HOSTNET_CNI_DIRS:-} ]] || grep -qsF "$prefix/" "$dir/hostnet-cni"; then
    rm -f "$dir/hostnet" "$dir/hostnet-cni"
  fi
done
if ((default)) || [[ -n ${HOSTNET_COMPLETION_DIR:-} ]]; then
  rm -f "${HOSTNET_COMPLETION_DIR:-/usr/share/bash-completion/completions}/hostnet"
fi
rm -rf "$prefix"
# the socket's directory goes only when it is hostnet's own and empty
[[ $(basename "$run_dir") == hostnet ]] && rmdir "$run_dir" 2>/dev/null || true
((keep)) && echo "hostnet removed (its networks and state kept)" || echo "hostnet removed"
