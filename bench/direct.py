"""push-private --via direct vs `docker tag && docker push` vs `skopeo copy docker-daemon:`,
each run into a fresh registry:2, on two images: a 300 MiB layer of real files (compressible)
and one of random bytes. Wall time (median, order rotated each round) and peak RSS."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.archive import ensure_built, ensure_random_image, wall_and_rss
from bench.registry import fresh_registry, untag

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_DIRECT_RUNS", "3"))
SIZE_MB = int(os.environ.get("BENCH_DIRECT_MB", "300"))
RANDOM_IMAGE = "dockops-bench/direct-random:latest"
FILES_IMAGE = "dockops-bench/direct-files:latest"
# The figures, on the random layer (nothing to gain from compression there).
GOAL_VS_DOCKER = 0.5
GOAL_VS_SKOPEO = 0.9


def ensure_files_image() -> int:
    """A layer of real files: the host's /usr, read-only in a busybox container, copied in up
    to SIZE_MB (binaries, libraries, text: it compresses as real images do)."""
    script = (
        f"tar -C /src -cf - lib share bin | head -c {SIZE_MB * 1048576} > /tmp/usr.tar; "
        "mkdir /data && tar -C /data -xf /tmp/usr.tar 2>/dev/null; rm /tmp/usr.tar; true"
    )
    volumes = {"/usr": {"bind": "/src", "mode": "ro"}}
    return ensure_built(FILES_IMAGE, script, f"files-{SIZE_MB}", volumes=volumes)


def _contenders(image: str, cache: str) -> dict[str, Callable[[str], tuple[float, int]]]:
    docker_cli = shutil.which("docker") or "/usr/bin/docker"
    skopeo = shutil.which("skopeo") or "skopeo"
    host = os.environ["DOCKER_HOST"]

    def docker_push(address: str) -> tuple[float, int]:
        target = f"{address}/bench/direct:latest"
        script = f'"$0" tag {image} {target} && "$0" push {target}'
        try:
            return wall_and_rss(["sh", "-c", script, docker_cli])
        finally:
            untag(target)

    def skopeo_copy(address: str) -> tuple[float, int]:
        return wall_and_rss(
            [
                skopeo, "copy", "--quiet", "--src-daemon-host", host, "--dest-tls-verify=false",
                f"docker-daemon:{image}", f"docker://{address}/bench/direct:latest",
            ]
        )  # fmt: skip

    def dockops_direct(address: str) -> tuple[float, int]:
        shutil.rmtree(cache, ignore_errors=True)  # nothing known: every layer is uploaded
        return wall_and_rss(
            [
                "env", f"XDG_CACHE_HOME={cache}", str(BIN / "dockops"), "push-private", image,
                "--registry", address, "--as", "bench/direct", "--via", "direct", "--quiet",
            ]
        )  # fmt: skip

    return {
        "docker tag && docker push": docker_push,
        "skopeo copy docker-daemon:": skopeo_copy,
        "dockops push-private --via direct": dockops_direct,
    }


def _measure(image: str, title: str, size_mb: float) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="dockops-bench-") as tmp:
        contenders = _contenders(image, str(Path(tmp) / "cache"))
        walls: dict[str, list[float]] = {label: [] for label in contenders}
        rss: dict[str, list[int]] = {label: [] for label in contenders}
        labels = list(contenders)
        for i in range(RUNS):
            for label in labels[i % 3 :] + labels[: i % 3]:
                with fresh_registry() as address:
                    wall, peak = contenders[label](address)
                walls[label].append(wall)
                rss[label].append(peak)
    base = statistics.median(walls["docker tag && docker push"])
    lines = [f"## push {title} ({size_mb:.0f} MB image; median of {RUNS}; fresh registry each)"]
    for label in labels:
        wall = statistics.median(walls[label])
        lines.append(
            f"  {label:<36} {wall:7.2f} s  x{wall / base:5.2f}  peak RSS "
            f"{max(rss[label]) / 1024:6.1f} MiB   runs: "
            + ", ".join(f"{w:.2f}" for w in walls[label])
        )
    ours = walls["dockops push-private --via direct"]
    for theirs, goal in (("docker tag && docker push", GOAL_VS_DOCKER),
                         ("skopeo copy docker-daemon:", GOAL_VS_SKOPEO)):  # fmt: skip
        # A round's runs follow each other, so they share the machine's load of the moment.
        paired = [a / b for a, b in zip(ours, walls[theirs], strict=True)]
        ratio = statistics.median(paired)
        lines.append(
            f"  goal direct vs {theirs.rstrip(':')}: median paired ratio x{ratio:.3f} <= {goal}"
            f" (per round {', '.join(f'x{r:.2f}' for r in paired)}): "
            f"{'met' if ratio <= goal else 'MISSED'}"
        )
    return lines


def run() -> list[str]:
    if not os.environ.get("DOCKER_HOST", "").startswith("unix://"):
        return ["## direct push: skipped (DOCKER_HOST must name a unix socket; run `make bench`)"]
    if shutil.which("skopeo") is None:  # the harness installs it (tests/harness PACKAGES)
        return ["## direct push: skipped (skopeo missing; run `make bench`)"]
    files = ensure_files_image() / 1e6
    random = ensure_random_image(RANDOM_IMAGE, SIZE_MB) / 1e6
    return [
        *_measure(FILES_IMAGE, "real files", files),
        *_measure(RANDOM_IMAGE, "random bytes", random),
    ]
