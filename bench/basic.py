"""Side-by-side benchmark suites: start-up and image listing figures; the rest need DOCKER_HOST."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench.timing import report, time_command

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_RUNS", "15"))


def startup() -> list[str]:
    baseline = time_command("python3 -c pass", [sys.executable, "-c", "pass"], RUNS)
    timings = [
        baseline,
        time_command("dockops --version", [str(BIN / "dockops"), "--version"], RUNS),
        time_command(
            "minimal Typer app --version",
            [sys.executable, str(Path(__file__).with_name("minimal_typer.py")), "--version"],
            RUNS,
        ),
        time_command("python -c 'import typer'", [sys.executable, "-c", "import typer"], RUNS),
        time_command("python -c 'import docker'", [sys.executable, "-c", "import docker"], RUNS),
    ]
    docker_cli = shutil.which("docker")
    if docker_cli:
        timings.append(time_command("docker --version (CLI)", [docker_cli, "--version"], RUNS))
    return report("start-up", timings, baseline)


def images() -> list[str]:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        return ["## images: skipped (DOCKER_HOST must name a unix socket; run `make bench`)"]
    socket_path = host.removeprefix("unix://")
    curl = ["curl", "-sf", "--unix-socket", socket_path]
    raw = time_command(
        "raw API: curl /images/json + /containers/json",
        [
            "sh",
            "-c",
            f"{' '.join(curl)} http://x/images/json >/dev/null && "
            f"{' '.join(curl)} 'http://x/containers/json?all=1' >/dev/null",
        ],
        RUNS,
    )
    timings = [raw]
    docker_cli = shutil.which("docker")
    if docker_cli:
        timings.append(time_command("docker images", [docker_cli, "images"], RUNS))
        timings.append(
            time_command(
                "docker images --format json",
                [docker_cli, "images", "--format", "{{json .}}"],
                RUNS,
            )
        )
    timings.append(time_command("dockops images", [str(BIN / "dockops"), "images"], RUNS))
    timings.append(
        time_command("dockops images --json", [str(BIN / "dockops"), "images", "--json"], RUNS)
    )
    return report("images listing", timings, raw)
