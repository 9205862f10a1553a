#!/usr/bin/env bash
# make demo: the main job, offline, on the disposable engine (tests/harness, never the host's):
# a private registry with TLS and a login on loopback, a small image built by commit and
# pushed with its digest checked in the registry, then a few dangling images cleaned up the
# way cron would. Everything it writes stays in .build/ (the demo's config, logins and CA
# trust included); what it made on the engine is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${DOCKOPS_DEMO_INNER:-} ]]; then
  DOCKOPS_DEMO_INNER=1 exec bash scripts/with-engine.sh bash "$0"
fi
started=$SECONDS
export PATH="$PWD/.venv/bin:$PATH"
py() { .venv/bin/python - "$@"; }
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

demo=$PWD/.build/demo
rm -rf "$demo" && mkdir -p "$demo"
unset DOCKER_CONTEXT DOCKOPS_CONFIG DOCKOPS_REGISTRY
export XDG_CONFIG_HOME=$demo/config DOCKER_CONFIG=$demo/docker
# The engine reads registry CAs from its own certs.d, which the harness keeps under its root.
DOCKOPS_CERTS_D=$(py <<'PY'
from tests.harness.engine import default_root, engine_at, engine_from_env

print((engine_from_env() or engine_at(default_root())).certs_d or "")
PY
)
[[ -n $DOCKOPS_CERTS_D ]] || { echo "demo: set DOCKOPS_TEST_CERTS_D to that engine's certs.d" >&2; exit 2; }
export DOCKOPS_CERTS_D
read -r backend port < <(py <<'PY'
import socket

probes = [socket.socket() for _ in range(2)]
for probe in probes:
    probe.bind(("127.0.0.1", 0))
print(*(probe.getsockname()[1] for probe in probes))
PY
)
registry=127.0.0.1:$port
password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe())')

cleanup() {
  dockops registry down --name dockops-demo --purge >/dev/null 2>&1 || true
  rm -rf "${DOCKOPS_CERTS_D:?}/$registry"
  py <<'PY' || true
import contextlib

import docker

client = docker.from_env()
for name in ("demo-build", "demo-holder"):
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
for image in client.images.list(filters={"label": "dockops.demo"}):
    with contextlib.suppress(docker.errors.NotFound):
        client.images.remove(image.id, force=True)
PY
}
trap cleanup EXIT

# A container from busybox writes one file; `dockops commit` makes the image (the label lets
# the clean-up find every image the demo made, tagged or dangling).
build() {  # build REF CONTENT
  py "$2" <<'PY'
import sys

import docker

client = docker.from_env()
write = ["sh", "-c", 'echo "$0" > /hello.txt', sys.argv[1]]
box = client.containers.run(
    "busybox:latest", write, name="demo-build", network_mode="none", detach=True
)
box.wait()
PY
  dockops commit demo-build "$1" -m "dockops demo" -c 'LABEL dockops.demo=1' \
    -c 'CMD ["cat", "/hello.txt"]' >/dev/null
  py <<'PY'
import docker

docker.from_env().containers.get("demo-build").remove()
PY
}

step "dockops doctor"
dockops doctor

step "a registry on loopback: registry:2 on $backend, TLS and a login on $port"
dockops registry up --name dockops-demo --network host --bind 127.0.0.1 --port "$backend"
printf '%s\n' "$password" | dockops registry secure --name dockops-demo --host 127.0.0.1 \
  --port "$port" --user demo --password-stdin --certs-d "$DOCKOPS_CERTS_D"
printf '%s\n' "$password" | dockops login "$registry" -u demo --password-stdin
dockops registry status --name dockops-demo

step "build demo/hello:1.0 by commit, and push-private it"
build demo/hello:1.0 "hello from dockops"
dockops images demo/hello
dockops push-private demo/hello:1.0 | tee "$demo/push.txt"
digest=$(grep -o 'sha256:[0-9a-f]*' "$demo/push.txt")

step "four builds of demo/app:dev leave three dangling images; a container uses one"
build demo/app:dev "build 1"
build demo/app:dev "build 2"
py <<'PY'
import docker

docker.from_env().containers.create("demo/app:dev", name="demo-holder", network_mode="none")
PY
build demo/app:dev "build 3"
build demo/app:dev "build 4"
dockops dangling

step "dockops prune-dangling --dry-run: the plan"
dockops prune-dangling --dry-run

step "dockops prune-dangling: exactly that plan, with metrics for node_exporter"
dockops prune-dangling --lock-file "$demo/prune.lock" --metrics-file "$demo/dockops.prom"
grep -v '^#' "$demo/dockops.prom"

metric() { awk -v name="$1" '$1 == name { printf "%d", $2 }' "$demo/dockops.prom"; }
step "summary"
printf '%-9s https://%s (TLS, CA trusted through %s/%s/ca.crt, login demo)\n' \
  registry "$registry" "$DOCKOPS_CERTS_D" "$registry"
printf '%-9s %s/demo/hello:1.0 %s (digest verified in the registry)\n' pushed "$registry" "$digest"
printf '%-9s %s dangling image(s) removed, %s bytes reclaimed; the one in use kept\n' pruned \
  "$(metric dockops_prune_removed_images)" "$(metric dockops_prune_reclaimed_bytes)"
printf '%-9s %ss (engine start and base images not counted); all of it is removed on exit\n' \
  took "$((SECONDS - started))"
