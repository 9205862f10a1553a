#!/usr/bin/env bash
# make demo: the main job on the disposable engine. For now: the engine and the offline base
# images come up, `dockops doctor` checks them, a container runs and is committed, and
# `dockops images` lists the result with the container holding it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${DOCKOPS_DEMO_INNER:-} ]]; then
  DOCKOPS_DEMO_INNER=1 exec bash scripts/with-engine.sh bash "$0"
fi
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
py() { .venv/bin/python - "$@"; }

step "dockops doctor"
dockops doctor

step "a container runs on the engine, and is committed as demo/hello:v1"
py <<'PY'
import docker
client = docker.from_env()
box = client.containers.run("busybox:latest", ["sh", "-c", "echo hello > /greeting"],
                            network_mode="none", detach=True)
box.wait()
box.commit(repository="demo/hello", tag="v1", message="dockops demo")
box.remove()
client.containers.create("demo/hello:v1", ["cat", "/greeting"], name="demo-holder",
                         network_mode="none")
print("committed demo/hello:v1; created container demo-holder from it")
PY

step "dockops images"
dockops images

step "dockops images demo/hello --json"
dockops images demo/hello --json

step "clean up the demo's container and image"
py <<'PY'
import docker
client = docker.from_env()
client.containers.get("demo-holder").remove(force=True)
client.images.remove("demo/hello:v1")
print("removed demo-holder and demo/hello:v1")
PY
