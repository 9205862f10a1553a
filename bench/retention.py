"""prune-images' figures (issue 20), Docker engine only.

retention-plan: planning (`--dry-run --keep-last 3 --json`) on an engine holding 200 and then
2,000 tagged images (10 tags in each of 20, then 200 repositories, each tag its own image with
a tiny layer of its own), beside the raw Engine API's cost of the same reads; the growth from
200 to 2,000 raw, and after taking off the fixed cost (start-up, connecting, the usage record:
the same command on the engine before the images came, holding the harness's few).

retention-remove: removing 300 tagged images against `docker rmi` of the same 300 references
in one call; the images are loaded afresh (and synced to disk) before every timed run, the
runs interleaved (the order swapped every round), judged on the median of the paired ratios.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from dockops.core.cleanup.tagged import INSPECTS
from tests.support.imagefactory import FakeImage, ago, write_save_tar

DOCKOPS = str(Path(sys.executable).parent / "dockops")
TAGS_PER_REPO = 10
# Repositories: 200, 1,000 and 2,000 images; the middle one tells linear growth (the same cost
# for each image added, before and after it) from a fixed cost that happens to be large.
SIZES = (20, 100, 200)
PLAN_RUNS = max(3, int(os.environ.get("BENCH_RETENTION_RUNS", "5")))
REMOVE_IMAGES = int(os.environ.get("BENCH_RETENTION_IMAGES", "300"))
# The issue asks for the median of at least 5 paired runs; an even count balances ABBA.
REMOVE_RUNS = max(5, int(os.environ.get("BENCH_RETENTION_REMOVE_RUNS", "6")))
GOAL_REMOVE = 1.25
# Linear growth: 10x the images costs at most about 10x, once the fixed cost is taken off.
GOAL_GROWTH = 10.0
# ...and each image added costs no more at 1,000-2,000 than at 200-1,000 (quadratic: x2.5).
GOAL_STEP = 1.5
NOISE_S = 0.025
PLAN_REPO = "benchplan/r{repo:03d}"
REMOVE_REPO = "benchrm/app"
REMOVE_GLOB = "benchrm/*"
# The load tags every image now (LastTagTime, a use to prune-images): --unused-for 1s needs the
# tags to be older than that when the run starts.
TAG_AGE_S = 1.2


def _skip(suite: str) -> list[str] | None:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://") or shutil.which("docker") is None:
        return [f"## {suite}: skipped (needs DOCKER_HOST on a unix socket and the docker CLI)"]
    return None


def _usage_file(workdir: Path) -> list[str]:
    """A usage record of the run's own, once prune-images keeps one: never the user's."""
    argv = [DOCKOPS, "prune-images", "--help"]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return ["--usage-file", str(workdir / "usage.json")] if "--usage-file" in done.stdout else []


def _load_average() -> str:
    return (
        ", ".join(f"{n:.2f}" for n in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"
    )


def _client() -> Any:
    import docker

    return docker.from_env(version="auto", timeout=600)


def _load(client: Any, tar: Path) -> None:
    with tar.open("rb") as source:
        for line in client.api.load_image(source):
            if "errorDetail" in line or "error" in line:
                raise RuntimeError(f"docker load failed: {line}")


def _state(client: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Every image on the engine with its tags: what a run must leave as it found it."""
    return {(i["Id"], tuple(sorted(i.get("RepoTags") or ()))) for i in client.api.images(all=True)}


def _walls(contenders: dict[str, list[str]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Every command `warmup + runs` times, interleaved, the order reversed every round (ABBA)
    so that the shared machine's load weighs on each alike; each must succeed."""
    walls: dict[str, list[float]] = {label: [] for label in contenders}
    order = list(contenders.items())
    for round_ in range(warmup + runs):
        for label, argv in order if round_ % 2 == 0 else reversed(order):
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if round_ >= warmup:
                walls[label].append(time.perf_counter() - start)
    return walls


def _row(label: str, seconds: float, ratio: float, notes: str = "") -> str:
    return f"  {label:<58} {seconds * 1000:9.1f} ms   x{ratio:5.2f}   {notes}".rstrip()


# --- retention-plan ------------------------------------------------------------------------


def _plan_images(repos: range) -> list[FakeImage]:
    """10 tags in each repository, each on an image of its own, created at distinct times (an
    order keep-last could rank by, were the load not tagging them all now)."""
    start = ago(days=30)
    return [
        FakeImage(
            created=start - timedelta(hours=repo, minutes=(tag * 7) % TAGS_PER_REPO),
            seed=f"bench-plan-{repo}-{tag}",
            layer_bytes=64,
            tags=(f"{PLAN_REPO.format(repo=repo)}:t{tag}",),
        )
        for repo in repos
        for tag in range(TAGS_PER_REPO)
    ]


def _plan_contenders(socket_path: str, ids: Sequence[str], config: Path) -> dict[str, list[str]]:
    curl = ["curl", "-sf", "--unix-socket", socket_path]
    # One curl, one connection: the listing, then every image's inspect (LastTagTime lives
    # only there), what a client that reads each image one by one cannot do for less.
    urls = ["http://x/images/json", *(f"http://x/images/{i}/json" for i in ids)]
    config.write_text("".join(f'url = "{u}"\n' for u in urls))
    docker_cli = shutil.which("docker") or "docker"
    contenders = {
        "raw API: curl /images/json": [*curl, "http://x/images/json"],
        "raw API: curl /images/json, /containers/json, /system/df": [
            *curl,
            "http://x/images/json",
            "http://x/containers/json?all=1",
            "http://x/system/df",
        ],
        "raw API: curl /images/json + each image's inspect, in turn": [
            *curl,
            "-K",
            str(config),
        ],
        # What dockops asks for, as it asks: the listing, then INSPECTS inspects at once.
        f"raw API: curl /images/json + each image's inspect, {INSPECTS} at once": [
            *curl,
            "--parallel",
            "--parallel-max",
            str(INSPECTS),
            "-K",
            str(config),
        ],
        "docker images": [docker_cli, "images"],
    }
    if ids:  # docker asks for one name at least
        contenders["docker image inspect (every image, one call)"] = [
            docker_cli,
            "image",
            "inspect",
            *ids,
        ]
    return contenders


def _dockops_plan(workdir: Path, *extra: str) -> list[str]:
    return [
        DOCKOPS,
        "prune-images",
        "--dry-run",
        "--keep-last",
        "3",
        *extra,
        "--lock-file",
        str(workdir / "lock"),
        *_usage_file(workdir),
    ]


PLAN = "dockops prune-images --dry-run --keep-last 3 --json"
NOMATCH = "dockops prune-images --dry-run --keep-last 3 --reference nomatch"


def plan() -> list[str]:
    skipped = _skip("retention-plan")
    if skipped:
        return skipped
    socket_path = os.environ["DOCKER_HOST"].removeprefix("unix://")
    client = _client()
    workdir = Path(tempfile.mkdtemp(prefix="dockops-bench-plan-"))
    ours = {
        PLAN: _dockops_plan(workdir, "--json"),
        NOMATCH: _dockops_plan(workdir, "--reference", "nomatch"),
    }
    before = _state(client)
    loaded: list[str] = []
    lines: list[str] = []
    try:
        # The fixed cost: the same commands on the engine as the harness left it.
        floor = {**_plan_contenders(socket_path, [], workdir / "urls"), **ours}
        fixed = {k: statistics.median(v) for k, v in _walls(floor, PLAN_RUNS).items()}
        lines.append(
            f"## retention-plan: fixed cost, {len(before)} images (the harness's; median of "
            f"{PLAN_RUNS} rounds)"
        )
        lines += [_row(label, s, s / fixed[PLAN]) for label, s in fixed.items()]
        lines.append(f"  load average at the start: {_load_average()}")
        medians: dict[int, dict[str, float]] = {}
        done = 0
        for repos in SIZES:
            tar = workdir / f"plan-{repos}.tar"
            with tar.open("wb") as out:
                loaded += write_save_tar(out, _plan_images(range(done, repos)))
            _load(client, tar)
            tar.unlink()
            done = repos
            os.sync()
            count = repos * TAGS_PER_REPO
            _check_plan(ours[PLAN], count, repos)
            contenders = {**_plan_contenders(socket_path, loaded, workdir / "urls"), **ours}
            walls = _walls(contenders, PLAN_RUNS)
            medians[count] = {k: statistics.median(v) for k, v in walls.items()}
            base = medians[count][PLAN]
            lines.append(
                f"## retention-plan: {count} tagged images in {repos} repositories, "
                f"{len(before) + count} in all (median of {PLAN_RUNS} rounds; ratio to {PLAN})"
            )
            lines += [_row(label, s, s / base) for label, s in medians[count].items()]
        lines += _growth(medians, fixed)
        lines.append(f"  load average at the end: {_load_average()}")
    finally:
        _remove_all(loaded)
        shutil.rmtree(workdir, ignore_errors=True)
        after = _state(client)
        client.close()
    if after != before:
        raise AssertionError(f"retention-plan left the engine changed: {after ^ before}")
    return lines


def _check_plan(argv: list[str], count: int, repos: int) -> None:
    """The timed plan is the real one: 7 of every repository's 10 tags planned to go."""
    import json

    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    report = json.loads(done.stdout)
    planned = [e for e in report["removed"] if str(e["tags"][0]).startswith("benchplan/")]
    want = repos * (TAGS_PER_REPO - 3)
    if len(planned) != want:
        raise AssertionError(f"plan over {count} images removes {len(planned)}, not {want}")


def _net(at_large: float, at_small: float, fixed: float) -> float | None:
    """The growth with the fixed cost taken off both times; None when the time at the small
    size is within noise of the fixed cost (the ratio of two small differences means nothing:
    this shared machine moves a 300 ms run by tens of ms)."""
    if at_small - fixed < max(NOISE_S, 0.1 * at_small):
        return None
    return (at_large - fixed) / (at_small - fixed)


def _growth(medians: dict[int, dict[str, float]], fixed: dict[str, float]) -> list[str]:
    sizes = sorted(medians)
    small, large = sizes[0], sizes[-1]
    lines = [
        f"## retention-plan growth, {small} to {large} images (time at {large}; ratio "
        f"{large}/{small}; linear is x{large // small} at most)"
    ]
    for label, at_large in medians[large].items():
        at_small = medians[small][label]
        notes = f"at {small}: {at_small * 1000:.1f} ms"
        if label in fixed:
            net = _net(at_large, at_small, fixed[label])
            said = "within noise of it" if net is None else f"x{net:.2f}"
            notes += f"; less the fixed {fixed[label] * 1000:.1f} ms: {said}"
        steps = [
            f"{(medians[b][label] - medians[a][label]) / (b - a) * 1000:.2f}"
            for a, b in pairwise(sizes)
        ]
        notes += f"; ms per image added {' then '.join(steps)}"
        lines.append(_row(label, at_large, at_large / at_small, notes))
    net = _net(medians[large][PLAN], medians[small][PLAN], fixed[PLAN])
    if net is None:
        lines.append(
            f"  goal {PLAN} growth less the fixed cost: not measured (at {small} images it "
            "takes the fixed cost within noise); see the cost of each image added"
        )
    else:
        verdict = "met" if net <= GOAL_GROWTH else "MISSED"
        lines.append(
            f"  goal {PLAN} growth less the fixed cost x{net:.2f} <= {GOAL_GROWTH:.0f}: {verdict}"
        )
    if len(sizes) > 2:
        # Linear: each image added costs the same at any size; quadratic: the later ones more
        # (x2.5 from 200-1,000 to 1,000-2,000).
        first, *_, last = (
            (medians[b][PLAN] - medians[a][PLAN]) / (b - a) for a, b in pairwise(sizes)
        )
        verdict = "met" if last <= GOAL_STEP * first else "MISSED"
        lines.append(
            f"  goal linear: an image added from {sizes[-2]} to {large} costs x{last / first:.2f} "
            f"what one added from {small} to {sizes[1]} did <= {GOAL_STEP:.2f}: {verdict}"
        )
    return lines


def _remove_all(ids: Sequence[str]) -> None:
    docker_cli = shutil.which("docker") or "docker"
    for start in range(0, len(ids), 500):
        subprocess.run(
            [docker_cli, "rmi", "-f", *ids[start : start + 500]],
            check=False,
            capture_output=True,
        )


# --- retention-remove ----------------------------------------------------------------------


def remove() -> list[str]:
    skipped = _skip("retention-remove")
    if skipped:
        return skipped
    client = _client()
    docker_cli = shutil.which("docker") or "docker"
    workdir = Path(tempfile.mkdtemp(prefix="dockops-bench-rm-"))
    tags = [f"{REMOVE_REPO}:{n}" for n in range(REMOVE_IMAGES)]
    baseline = f"docker rmi ({REMOVE_IMAGES} references, one call)"
    ours = f"dockops prune-images --reference '{REMOVE_GLOB}' --unused-for 1s"
    contenders = {
        baseline: [docker_cli, "rmi", *tags],
        ours: [
            DOCKOPS,
            "prune-images",
            "--reference",
            REMOVE_GLOB,
            "--unused-for",
            "1s",
            "--quiet",
            "--lock-file",
            str(workdir / "lock"),
            *_usage_file(workdir),
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    before = _state(client)
    try:
        tar = workdir / "images.tar"
        with tar.open("wb") as out:
            ids = write_save_tar(
                out,
                [
                    FakeImage(
                        created=ago(days=2), seed=f"bench-rm-{n}", layer_bytes=1024, tags=(t,)
                    )
                    for n, t in enumerate(tags)
                ],
            )
        loaded = before | {(i, (t,)) for i, t in zip(ids, tags, strict=True)}
        for round_ in range(1 + REMOVE_RUNS):  # round 0 warms both up, untimed
            order = list(contenders.items())
            for name, argv in order if round_ % 2 == 0 else reversed(order):
                _load(client, tar)
                tagged_at = time.monotonic()
                if _state(client) != loaded:
                    raise AssertionError("the engine must start from the same state")
                os.sync()  # the load still being written back would slow the run
                time.sleep(max(0.0, TAG_AGE_S - (time.monotonic() - tagged_at)))
                start = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                wall = time.perf_counter() - start
                left = _state(client)
                if left != before:
                    raise AssertionError(
                        f"{name}: left {len(left - before)} images, removed "
                        f"{len(before - left)} it should not have"
                    )
                if round_:
                    times[name].append(wall)
    finally:
        _remove_all(tags)
        shutil.rmtree(workdir, ignore_errors=True)
        client.close()
    base = statistics.median(times[baseline])
    lines = [
        f"## retention-remove: {REMOVE_IMAGES} tagged images of 1 KiB each, one tag each "
        f"(median of {REMOVE_RUNS} rounds, ABBA; ratio to {baseline})"
    ]
    for name, samples in times.items():
        median = statistics.median(samples)
        runs = ", ".join(f"{t:.2f}" for t in samples)
        lines.append(_row(name, median, median / base, f"runs (s): {runs}"))
    paired = [a / b for a, b in zip(times[ours], times[baseline], strict=True)]
    ratio = statistics.median(paired)
    lines.append(f"  per round: {', '.join(f'x{r:.2f}' for r in paired)}")
    lines.append(f"  load average at the end: {_load_average()}")
    verdict = "met" if ratio <= GOAL_REMOVE else "MISSED"
    lines.append(f"  goal: median paired ratio x{ratio:.2f} <= {GOAL_REMOVE:.2f}: {verdict}")
    return lines
