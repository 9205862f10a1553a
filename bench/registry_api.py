"""`dockops registry ls` vs a shell loop of curl following the Link header, on the same
registry:2 holding >= 1,000 repositories; wall time (median, interleaved) and requests made
(counted from the registry's own access log). The plain curl loop takes the registry's
default page (100); a second one asks n=1000 as dockops does, so page size is not the
difference measured."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.registry_seed import Seeder
from tests.support.registry_server import registry

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_LS_RUNS", "7"))
REPOS = int(os.environ.get("BENCH_LS_REPOS", "1200"))
GOAL_RATIO = 1.2

# What people write: follow rel="next" until there is none, appending each page.
CURL_LOOP = r"""
url="http://$1/v2/_catalog$3"
: > "$2"
while [ -n "$url" ]; do
  next=$(curl -sf -D - -o "$2.page" "$url" | tr -d '\r' \
         | sed -n 's/^[Ll]ink: <\([^>]*\)>; rel="next".*/\1/p')
  cat "$2.page" >> "$2"
  if [ -n "$next" ]; then url="http://$1$next"; else url=""; fi
done
"""


def _wall(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _catalog_requests(client: object, container_id: str) -> int:
    """Catalog requests the registry has answered so far, from its access log."""
    logs = client.api.logs(container_id).decode(errors="replace")  # type: ignore[attr-defined]
    return logs.count('"GET /v2/_catalog')


def _case(client: object, maxentries: int | None, tmp: Path) -> list[str]:
    env = {"REGISTRY_CATALOG_MAXENTRIES": str(maxentries)} if maxentries else None
    with registry(client, env) as reg:  # type: ignore[arg-type]
        seeder = Seeder.start(reg.address)
        seeder.many([f"bench/repo{i:05d}" for i in range(REPOS)])
        out = tmp / "catalog.json"

        def dockops(address: str) -> list[str]:
            return [str(BIN / "dockops"), "registry", "ls", "--registry", address, "--json"]

        commands = {
            "curl loop": ["sh", "-c", CURL_LOOP, "curl-loop", reg.address, str(out), ""],
            "dockops registry ls": dockops(reg.address),
        }
        if maxentries is None:  # n=1000 is refused where maxentries is lower
            commands["curl loop, n=1000"] = [*commands["curl loop"][:-1], "?n=1000"]

        listed = subprocess.run(dockops(reg.address), check=True, capture_output=True, text=True)
        count = len(json.loads(listed.stdout))
        walls: dict[str, list[float]] = {label: [] for label in commands}
        for i in range(RUNS + 1):
            for label in list(commands)[i % len(commands) :] + list(commands)[: i % len(commands)]:
                wall = _wall(commands[label])
                if i:  # the first round warms the registry's and the page cache
                    walls[label].append(wall)
        requests: dict[str, int] = {}
        for label, argv in commands.items():
            before = _catalog_requests(client, reg.container_id)
            _wall(argv)
            requests[label] = _catalog_requests(client, reg.container_id) - before
        startup = statistics.median(_wall([str(BIN / "dockops"), "--version"]) for _ in range(5))
    base = statistics.median(walls["curl loop"])
    best_curl = min(statistics.median(w) for label, w in walls.items() if label.startswith("curl"))
    page = f"maxentries {maxentries}" if maxentries else "default page size"
    lines = [f"## registry ls ({count} repositories, {page}; median of {RUNS} runs)"]
    for label, samples in walls.items():
        wall = statistics.median(samples)
        lines.append(
            f"  {label:<22} {wall * 1000:8.1f} ms  x{wall / base:5.2f}  "
            f"{requests[label]} catalog requests"
        )
    ratio = statistics.median(walls["dockops registry ls"]) / best_curl
    lines.append(
        f"  goal vs the faster curl loop x{ratio:.2f} <= {GOAL_RATIO}: "
        f"{'met' if ratio <= GOAL_RATIO else 'MISSED'}"
        f" (dockops --version alone: {startup * 1000:.0f} ms of start-up)"
    )
    return lines


def run() -> list[str]:
    if not os.environ.get("DOCKER_HOST", "").startswith("unix://"):
        return ["## registry ls: skipped (DOCKER_HOST must name a unix socket; run `make bench`)"]
    import tempfile

    import docker

    client = docker.from_env(version="auto", timeout=600)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dockops-bench-") as tmp:
        for maxentries in (None, 100):
            lines += _case(client, maxentries, Path(tmp))
    client.close()
    return lines
