"""The prune suite on Podman: dockops prune-dangling against `podman image prune -f` (the
podman CLI as a client of the harness's service), on as many dangling images as the Docker
suite makes (BENCH_PRUNE_IMAGES), loaded the same way before every run, measured and judged as
bench/prune.py does on Docker."""

from __future__ import annotations

from bench import podman as service
from bench import prune


def run() -> list[str]:
    podman = service.find()
    if isinstance(podman, str):
        return [f"## prune-dangling on Podman: skipped ({podman})"]
    client = podman.client()
    before = service.load_average()
    try:
        lines = prune.measure(
            client,
            ("podman image prune -f", podman.command("image", "prune", "-f")),
            title="prune-dangling on Podman",
            env=podman.env(),
        )
    finally:
        client.close()
    return [*lines, f"  before: {before}", f"  after: {service.load_average()}"]
