#!/usr/bin/env bash
# Install hostnet (system packages + the Python package) and start hostnetd on
# its embedded default: SQLite under /var/lib/hostnet, the default `nat` network.
#   sudo scripts/install.sh            install and start
#   sudo scripts/install.sh --no-start install only
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in nftables libnftables1 iproute2 busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v -e "^WARNING: Running pip as" -e "is ignored: it is neither" || true

bash scripts/install-cni.sh

[[ "${1:-}" == "--no-start" ]] && exit 0

mkdir -p /run/hostnet /var/log
pidfile=/run/hostnet/hostnetd.pid
if [[ -f $pidfile ]] && kill -0 "$(cat $pidfile)" 2>/dev/null; then
  echo "hostnetd already running (pid $(cat $pidfile))"
  exit 0
fi
# shellcheck disable=SC2086
nohup hostnetd ${HOSTNETD_ARGS:-} >>/var/log/hostnetd.log 2>&1 &
echo $! >$pidfile
for _ in $(seq 50); do
  [[ -S /run/hostnet/hostnet.sock ]] && hostnet network ls >/dev/null 2>&1 && break
  sleep 0.1
done
hostnet network ls
echo "hostnetd running (pid $(cat $pidfile)); log /var/log/hostnetd.log; stop: kill \$(cat $pidfile)"
