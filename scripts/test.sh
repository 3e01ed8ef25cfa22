#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the whole suite. Run as root.
# hostnet and the test tools go into a virtual environment of the clone's own (.venv,
# editable); namespace tests need root, build their own labs and remove them.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(nftables libnftables1 iproute2 iputils-ping iperf3 tcpdump socat containernetworking-plugins
  netavark podman busybox-static docker.io docker-compose gcc dnsmasq-base bind9-dnsutils dnsperf
  aardvark-dns etcd-server etcd-client prometheus python3 python3-venv graphviz)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  # services (dockerd) must not start on the host: tests start them inside lab namespaces
  policy=/usr/sbin/policy-rc.d
  [[ -e $policy ]] || { printf '#!/bin/sh\nexit 101\n' >$policy; chmod 755 $policy; trap 'rm -f $policy' EXIT; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/venv.sh .venv -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"
PYTHON=.venv/bin/python bash scripts/install-cni.sh

echo "== ruff"; ruff check src tests bench
echo "== mypy"; mypy
echo "== pytest"
# -rfEs: the summary lists failures, errors and every skip with its reason; a skip for
# want of a tool installed above fails instead (tests/conftest.py)
export HOSTNET_REQUIRE_TOOLS=1
python3 -m pytest -q -rfEs -p no:cacheprovider "$@" tests
