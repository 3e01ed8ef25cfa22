#!/usr/bin/env bash
# Install the hostnet CNI plugin as `hostnet` and `hostnet-cni` in /opt/cni/bin and
# /usr/lib/cni. It is a forwarder to hostnetd: compiled from cni/hostnet-cni.c when a
# C compiler is there (about 1 ms per exec), else a Python launcher that runs without
# `site` (which costs tens of milliseconds per exec) and finds hostnet's source itself.
# PYTHON: the Python hostnet is installed in (default python3); HOSTNET_CNI_DIRS: where
# the plugin goes (default "/opt/cni/bin /usr/lib/cni").
set -euo pipefail
cd "$(dirname "$0")/.."
py=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
src=$("$py" -c 'import hostnet, os; print(os.path.dirname(os.path.dirname(hostnet.__file__)))')
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
compiled=""
if command -v cc >/dev/null && cc -O2 -Wall -Werror -o "$build/hostnet-cni" cni/hostnet-cni.c; then
  compiled="$build/hostnet-cni"
fi
for dir in ${HOSTNET_CNI_DIRS:-/opt/cni/bin /usr/lib/cni}; do
  mkdir -p "$dir"
  rm -f "$dir/hostnet-cni" "$dir/hostnet"
  if [[ -n $compiled ]]; then
    install -m 755 "$compiled" "$dir/hostnet-cni"
    ln -sf hostnet-cni "$dir/hostnet"
    continue
  fi
  cat >"$dir/hostnet-cni" <<LAUNCHER
#!$py -IS
import sys
sys.path.insert(0, "$src")
from hostnet.cni.plugin import main
main()
LAUNCHER
  chmod 755 "$dir/hostnet-cni"
  ln -sf hostnet-cni "$dir/hostnet"
done
