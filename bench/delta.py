"""Delta archives: a 500 MB base and a 5 MB change on top. The delta's size against the full
archive's, and the save times of `dockops save --delta-from`, `dockops save` and `docker save`
(median, runs interleaved)."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.archive import ensure_built, ensure_random_image, wall_and_rss

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_DELTA_RUNS", "3"))
BASE_MB = int(os.environ.get("BENCH_DELTA_BASE_MB", "500"))
CHANGE_MB = 5
BASE = "dockops-bench/delta-base:latest"
NEW = "dockops-bench/delta-new:latest"


def _ensure_new() -> None:
    """The base plus one layer of CHANGE_MB random bytes (rebuilt when the base changes)."""
    import docker

    base_id = docker.from_env(version="auto").images.get(BASE).id
    script = f"dd if=/dev/urandom of=/change.bin bs=1048576 count={CHANGE_MB}"
    ensure_built(NEW, script, f"on-{base_id}", base=BASE)


def run() -> list[str]:
    if not os.environ.get("DOCKER_HOST", "").startswith("unix://"):
        return ["## delta: skipped (DOCKER_HOST must name a unix socket; run `make bench`)"]
    ensure_random_image(BASE, BASE_MB)
    _ensure_new()
    docker_cli = shutil.which("docker") or "/usr/bin/docker"
    dockops = str(BIN / "dockops")
    with tempfile.TemporaryDirectory(prefix="dockops-bench-", dir=os.environ.get("TMPDIR")) as d:
        out = Path(d)
        commands = {
            "docker save -o": [docker_cli, "save", "-o", str(out / "docker.tar"), NEW],
            "dockops save -o (full)": [dockops, "save", NEW, "-o", str(out / "full.tar")],
            "dockops save --delta-from base": [
                dockops, "save", NEW, "--delta-from", BASE, "-o", str(out / "delta.tar"),
            ],
        }  # fmt: skip
        walls: dict[str, list[float]] = {label: [] for label in commands}
        rss: dict[str, list[int]] = {label: [] for label in commands}
        labels = list(commands)
        for i in range(RUNS):
            for label in labels[i % 3 :] + labels[: i % 3]:
                wall, peak = wall_and_rss(commands[label])
                walls[label].append(wall)
                rss[label].append(peak)
        full = (out / "full.tar").stat().st_size
        delta = (out / "delta.tar").stat().st_size
    base = statistics.median(walls["docker save -o"])
    lines = [
        f"## delta archive ({BASE_MB} MB base + {CHANGE_MB} MB change; median of {RUNS})",
        f"  full archive {full / 1e6:8.1f} MB, delta {delta / 1e6:6.1f} MB: "
        f"delta/full = {delta / full:.4f}",
    ]
    for label in labels:
        wall = statistics.median(walls[label])
        peak = max(rss[label]) / 1024
        lines.append(f"  {label:<32} {wall:7.2f} s  x{wall / base:5.2f}  peak RSS {peak:6.1f} MiB")
    return lines
