#!/usr/bin/env bash
# scripts/venv.sh DIR PIP-ARGS...: make (once) a virtual environment in DIR with the
# system's Python 3.11+ (Debian's own refuses pip installs: PEP 668), then pip install
# PIP-ARGS into it. Used by install.sh (the service) and test.sh (the suite).
set -euo pipefail
dir=$1
shift
quiet() { grep -v -e "^WARNING: Running pip as" -e "is ignored: it is neither" -e "^\[notice\]" || true; }
pick_python() { # the system's Python first (every Debian has it), else PATH's
  local py
  for py in /usr/bin/python3 "$(command -v python3 || true)"; do
    [[ -x $py ]] && "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
      2>/dev/null && { echo "$py"; return; }
  done
  echo "venv.sh: hostnet needs Python 3.11 or later with venv (Debian: python3-venv)" >&2
  exit 1
}
if ! "$dir/bin/python" -c 'import sys' 2>/dev/null; then
  py=$(pick_python)
  echo "== venv $dir ($("$py" --version))"
  "$py" -m venv --clear "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | quiet
fi
if (($#)); then
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | quiet
fi
