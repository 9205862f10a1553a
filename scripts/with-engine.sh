#!/usr/bin/env bash
# Runs a command with DOCKER_HOST set to the disposable engine, and stops that engine after
# (unless DOCKOPS_TEST_DOCKER_HOST named an engine that is not ours). WITH_PODMAN=1: the
# harness's Podman service too, named to the command in DOCKOPS_TEST_PODMAN_HOST (as one's own
# service is named to the tests) and stopped after by its pidfile; if it cannot start, the
# command runs without it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
line=$($py -m tests.harness up)
export "${line?}"
trap '$py -m tests.harness down' EXIT
if [ -n "${WITH_PODMAN:-}" ]; then
  # Only the command is told: the trap's `down` must not take the service for one of yours.
  trap '$py -m tests.harness down --engine podman; $py -m tests.harness down' EXIT
  if podman=$($py -m tests.harness up --engine podman); then
    DOCKOPS_TEST_PODMAN_HOST=${podman#DOCKER_HOST=} "$@"
    exit
  fi
  echo "with-engine: no Podman service; the command runs without it" >&2
fi
"$@"
