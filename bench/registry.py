"""push-private vs `docker tag && docker push` of a >= 300 MB image, each run into a fresh
registry:2 (host network, 127.0.0.1, a free port), runs interleaved so drift hits both alike.

A fresh registry per run matters: into one that already has the layers, a push only sends the
manifest ("Layer already exists"), and the figure would say nothing about moving the bytes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.archive import ensure_random_image
from tests.support.registry_server import free_port, wait_for_port

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_REGISTRY_RUNS", "3"))
SIZE_MB = int(os.environ.get("BENCH_REGISTRY_MB", "320"))
IMAGE = "dockops-bench/push:latest"
GOAL_RATIO = 1.15


@contextmanager
def fresh_registry() -> Iterator[str]:
    """A registry:2 container with empty storage; removed (with its volume) afterwards."""
    import docker

    client = docker.from_env(version="auto", timeout=600)
    port = free_port()
    box = client.containers.run(
        "registry:2",
        network_mode="host",
        environment={"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}"},
        detach=True,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        box.remove(force=True, v=True)
        client.close()


def _timed(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode().strip()[-300:]}")
    return wall


def untag(reference: str) -> None:
    import docker

    client = docker.from_env(version="auto")
    try:
        client.api.remove_image(reference, noprune=True)
    except docker.errors.ImageNotFound:
        pass
    finally:
        client.close()


def run() -> list[str]:
    if not os.environ.get("DOCKER_HOST", "").startswith("unix://"):
        return ["## registry: skipped (DOCKER_HOST must name a unix socket; run `make bench`)"]
    docker_cli = shutil.which("docker") or "/usr/bin/docker"
    dockops = str(BIN / "dockops")
    size = ensure_random_image(IMAGE, SIZE_MB) / 1e6
    cache = tempfile.mkdtemp(prefix="dockops-bench-cache-")

    def docker_push(address: str) -> float:
        target = f"{address}/bench/push:latest"
        script = f'"$0" tag {IMAGE} {target} && "$0" push {target}'
        try:
            return _timed(["sh", "-c", script, docker_cli])
        finally:
            untag(target)

    def dockops_push(via: str) -> Callable[[str], float]:
        def push(address: str) -> float:
            shutil.rmtree(cache, ignore_errors=True)  # direct: nothing known, all uploaded
            argv = [dockops, "push-private", IMAGE, "--registry", address, "--as", "bench/push"]
            return _timed(["env", f"XDG_CACHE_HOME={cache}", *argv, "--via", via, "--quiet"])

        return push

    contenders: dict[str, Callable[[str], float]] = {
        "docker tag && docker push": docker_push,
        "dockops push-private --via daemon": dockops_push("daemon"),
        "dockops push-private (auto: direct)": dockops_push("auto"),
    }
    walls: dict[str, list[float]] = {label: [] for label in contenders}
    for i in range(RUNS):
        labels = list(contenders)
        order = labels[i % len(labels) :] + labels[: i % len(labels)]
        for label in order:
            with fresh_registry() as address:
                walls[label].append(contenders[label](address))
    base = statistics.median(walls["docker tag && docker push"])
    lines = [f"## registry push (median of {RUNS} runs; {size:.0f} MB image; fresh registry each)"]
    for label, samples in walls.items():
        wall = statistics.median(samples)
        spread = ", ".join(f"{s:.2f}" for s in samples)
        lines.append(f"  {label:<36} {wall:7.2f} s  x{wall / base:5.2f}   runs: {spread}")
    ratio = statistics.median(walls["dockops push-private --via daemon"]) / base
    verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
    lines.append(
        f"  goal push-private --via daemon vs docker: x{ratio:.2f} <= {GOAL_RATIO:.2f}: {verdict}"
    )
    return lines
