"""Side-by-side benchmark suites: start-up, and the short listing commands (images, dangling,
history, layers) against the docker CLI's equivalents on an engine holding >= 40 images."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.timing import pair_lines, report, time_command, time_pair

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
# The figures: `dockops --version` no slower, against `python3 -c pass`, than the x6
# measured before it; each short listing command within x3 of docker's own.
GOAL_VERSION = 6.0
GOAL_SHORT = 3.0
LISTED = int(os.environ.get("BENCH_IMAGES", "40"))
DANGLING = 10
SUBJECT = "nginx:latest"  # built by the harness: several layers, a history of its own


def startup() -> list[str]:
    baseline = time_command("python3 -c pass", [sys.executable, "-c", "pass"], RUNS)
    timings = [
        baseline,
        time_command("dockops --version", [str(BIN / "dockops"), "--version"], RUNS),
        time_command("dockops images --help", [str(BIN / "dockops"), "images", "--help"], RUNS),
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
    # The goal is judged on runs taken in alternation: this machine's load moves both alike.
    pair = time_pair(
        ("dockops --version", [str(BIN / "dockops"), "--version"]),
        ("python3 -c pass", [sys.executable, "-c", "pass"]),
        RUNS,
    )
    return [
        *report("start-up", timings, baseline),
        f"  goal dockops --version vs python3 -c pass: median paired ratio x{pair.ratio:.2f} "
        f"<= {GOAL_VERSION:.2f}: {'met' if pair.ratio <= GOAL_VERSION else 'MISSED'}",
    ]


@contextmanager
def _engine_with_images() -> Iterator[int]:
    """At least LISTED images listed (fake ones, 1 KiB each, added to make up the count) and
    DANGLING dangling ones, all removed afterwards: the engine tests count dangling images.
    Yields how many images `docker images` lists."""
    import docker

    from tests.support.imagefactory import FakeImage, load_images

    client = docker.from_env(version="auto", timeout=600)
    listed = len(client.api.images())
    dangling = [FakeImage(seed=f"bench-dangling-{n}") for n in range(DANGLING)]
    tagged = [
        FakeImage(seed=f"bench-list-{n}", tags=(f"dockops-bench/list:{n}",))
        for n in range(max(0, LISTED - listed - DANGLING))
    ]
    ids = load_images(client, [*dangling, *tagged])
    try:
        yield len(client.api.images())
    finally:
        for image in tagged:
            client.api.remove_image(image.tags[0], force=True)
        for image_id in ids[:DANGLING]:
            client.api.remove_image(image_id, force=True)
        client.close()


def images() -> list[str]:
    host = os.environ.get("DOCKER_HOST", "")
    docker_cli = shutil.which("docker")
    if not host.startswith("unix://") or docker_cli is None:
        return ["## images: skipped (needs DOCKER_HOST on a unix socket and the docker CLI)"]
    socket_path = host.removeprefix("unix://")
    dockops = str(BIN / "dockops")
    curl = f"curl -sf --unix-socket {socket_path}"
    cases = [
        (["images"], ["images"], GOAL_SHORT),
        (["images", "--json"], ["images", "--format", "{{json .}}"], None),
        (["dangling"], ["images", "--filter", "dangling=true"], GOAL_SHORT),
        (["history", SUBJECT], ["history", SUBJECT], GOAL_SHORT),
        (["layers", SUBJECT], ["image", "inspect", SUBJECT], GOAL_SHORT),
    ]
    with _engine_with_images() as count:
        raw = time_command(
            "raw API: curl /images/json + /containers/json",
            ["sh", "-c", f"{curl} http://x/images/json >/dev/null && "
             f"{curl} 'http://x/containers/json?all=1' >/dev/null"],
            RUNS,
        )  # fmt: skip
        lines = [f"## images: the engine's floor ({count} images; median of {RUNS} runs)"]
        lines += report("", [raw], raw)[1:]
        for ours, theirs, goal in cases:
            pair = time_pair(
                (f"dockops {' '.join(ours)}", [dockops, *ours]),
                (f"docker {' '.join(theirs)}", [docker_cli, *theirs]),
                RUNS,
            )
            lines.append(
                f"## {pair.ours.label} vs {pair.theirs.label} ({count} images, {DANGLING} "
                f"dangling; median of {RUNS} paired runs)"
            )
            lines += pair_lines(pair, goal)
    return lines
