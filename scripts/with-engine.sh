#!/usr/bin/env bash
# Runs a command with DOCKER_HOST set to the disposable engine, and stops that engine after
# (unless DOCKOPS_TEST_DOCKER_HOST named an engine that is not ours).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
line=$($py -m tests.harness up)
export "${line?}"
trap '$py -m tests.harness down' EXIT
"$@"
