#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build the venv (python3-venv). The engine and
# the packages the base images come from are installed by the harness when it first needs them.
set -euo pipefail
python=${1:-python3}
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing python3-venv" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
  else
    echo "bootstrap: $python cannot make a venv; install python3-venv" >&2
    exit 1
  fi
fi
