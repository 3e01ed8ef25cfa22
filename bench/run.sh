#!/usr/bin/env bash
# Benchmarks: hostnet against the CNI reference plugins, netavark and Docker's bridge, and each
# driver's throughput against the host's own adapter, in one run.
# Everything happens inside network namespaces the scripts create and remove; dockerd
# (dockerrun) runs in a lab namespace with its own temp dirs and a private mount namespace.
# Writes bench/RESULTS.md; raw JSON summaries and logs go to bench/out/.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/run.sh: run as root (it builds network namespaces)" >&2
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# scripts/test.sh's .venv when there is one (hostnet and its tools), else PATH's python3
if [[ -z ${PYTHON:-} && -x $here/../.venv/bin/python ]]; then
    export PATH="$(cd "$here/.." && pwd)/.venv/bin:$PATH"
fi
py=${PYTHON:-python3}
export BENCH_OUT=${BENCH_OUT:-$here/out}
mkdir -p "$BENCH_OUT"
# BENCH_PARTS="dnsperf aclcost" re-runs some parts; the others' summaries stay for the report

for tool in nsenter prlimit iperf3 nft ss dnsperf dig etcd etcdctl "$py"; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing" >&2; exit 1; }
done
for f in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns; do
    [[ -x $f ]] || { echo "bench/run.sh: $f is missing (containernetworking-plugins, netavark)" >&2; exit 1; }
done
"$py" -c 'import hostnet' || { echo "bench/run.sh: hostnet is not importable by $py" >&2; exit 1; }

status=0
start=$SECONDS
for part in ${BENCH_PARTS:-attach cni portscale dataplane drivers dockerrun aclcost dnsperf overlay scale dualstack}; do
    echo "== $part ($(date -u +%H:%M:%S))"
    rm -f "$BENCH_OUT/$part.json" "$BENCH_OUT/$part.log"
    if ! "$py" "$here/$part.py" >"$BENCH_OUT/$part.log" 2>&1; then
        echo "   $part FAILED; tail of $BENCH_OUT/$part.log:" >&2
        tail -n 20 "$BENCH_OUT/$part.log" >&2
        status=1
    fi
done
"$py" "$here/report.py"
echo "== done in $((SECONDS - start)) s; see $here/RESULTS.md"

leaked=$(find /run/netns -maxdepth 1 -name 'hnb-*' -printf '%f\n' 2>/dev/null || true)
if [[ -n $leaked ]]; then
    echo "bench/run.sh: namespaces left behind: $leaked" >&2
    status=1
fi
# every daemon a part starts has its state under a hostnet-bench-* temp dir
strays=$(ps -eo pid=,args= | grep -E 'hostnet-bench-' | grep -v grep || true)
if [[ -n $strays ]]; then
    echo "bench/run.sh: processes left behind:" >&2
    echo "$strays" >&2
    status=1
fi
exit "$status"
