"""The archive suite on Podman: save and load of the same >= 500 MB image (BENCH_ARCHIVE_MB,
BENCH_ARCHIVE_RUNS), on the harness's Podman service, against podman's own CLI and the raw
Docker-compatible API on its socket, measured as bench/archive.py measures them on Docker
(rounds interleaved ABBA, a sync before each run, wall time and peak RSS of each client) and
judged on the same goals, on the median of the per-round paired ratios.

`podman save -o` does not make its file durable (strace: no fsync, where `docker save -o`
fsyncs before its rename), so it runs twice: as it is, and followed by `sync FILE`, the bar
dockops (which syncs) and the raw stream are held to. The gzip rows are left out: their cost
is dockops's own, not the engine's, and the Docker suite measures it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from bench import podman as service
from bench.archive import (
    BIN,
    GOAL_RATIO,
    GOAL_VS_DOCKER_SAVE,
    IMAGE,
    _lines,
    _measure,
    _rss_verdict,
    _verdict,
    ensure_random_image,
)


def run() -> list[str]:
    podman = service.find()
    if isinstance(podman, str):
        return [f"## archive on Podman: skipped ({podman})"]
    dockops = str(BIN / "dockops")
    env = podman.env()
    ensure_random_image(host=podman.host)
    client = podman.client()
    url = f"http://x/images/get?names={IMAGE}"
    before = service.load_average()
    with tempfile.TemporaryDirectory(prefix="dockops-bench-", dir=os.environ.get("TMPDIR")) as d:
        out = Path(d)
        raw, synced, plain, durable, ours = (
            out / name
            for name in ("raw.tar", "synced.tar", "podman.tar", "podman-synced.tar", "dockops.tar")
        )

        def podman_save(target: Path) -> list[str]:
            return podman.command("save", "--format", "docker-archive", "-o", str(target), IMAGE)

        # sh -c SCRIPT FILE ARGV...: run ARGV, then fsync FILE (coreutils).
        then_sync = 'f=$0; "$@" && sync "$f"'
        # label: (the file it writes, its argv)
        contenders = {
            "raw API: curl /images/get": (raw, [
                "curl", "-sf", "--unix-socket", podman.socket, "-o", str(raw), url,
            ]),
            "raw API: curl, then sync FILE": (synced, [
                "sh", "-c", then_sync, str(synced),
                "curl", "-sf", "--unix-socket", podman.socket, "-o", str(synced), url,
            ]),
            "podman save -o": (plain, podman_save(plain)),
            "podman save -o, then sync FILE": (durable, [
                "sh", "-c", then_sync, str(durable), *podman_save(durable),
            ]),
            "dockops save -o": (ours, [dockops, "save", IMAGE, "-o", str(ours)]),
        }  # fmt: skip

        def fresh_target(label: str) -> None:
            # Each writes a new file: freeing the last run's 600 MB is nobody's time.
            contenders[label][0].unlink(missing_ok=True)

        save = _measure(
            {label: argv for label, (_, argv) in contenders.items()}, before=fresh_target, env=env
        )
        tar_mb = ours.stat().st_size / 1e6
        curl_sync, podman_plain, podman_synced, dockops_save = save[1:]
        lines = _lines("save on Podman", save, tar_mb)
        lines += _verdict(dockops_save, curl_sync, "dockops save vs curl + sync", GOAL_RATIO)
        lines += _verdict(
            dockops_save, podman_synced, "dockops save vs podman save + sync", GOAL_VS_DOCKER_SAVE
        )
        lines += _verdict(
            dockops_save, podman_plain, "dockops save vs podman save -o", GOAL_VS_DOCKER_SAVE
        )
        lines.append(_rss_verdict([dockops_save]))
        lines.append(f"  before: {before}; after: {service.load_average()}")
        before = service.load_average()

        def remove_image(_label: str) -> None:
            import docker

            with contextlib.suppress(docker.errors.ImageNotFound):
                client.api.remove_image(IMAGE, force=True)

        tar = str(ours)
        load = _measure(
            {
                "raw API: curl -T POST /images/load": [
                    "curl", "-sf", "--unix-socket", podman.socket, "-T", tar, "-X", "POST",
                    "-H", "Content-Type: application/x-tar",
                    "http://x/images/load?quiet=1",
                ],
                "podman load -i": podman.command("load", "-q", "-i", tar),
                "dockops load -i": [dockops, "load", "-i", tar, "--quiet"],
            },
            before=remove_image,
            env=env,
        )  # fmt: skip
        lines += _lines("load on Podman (image removed before each run)", load, tar_mb)
        lines += _verdict(load[2], load[1], "dockops load vs podman load -i", GOAL_RATIO)
        lines.append(f"  dockops load vs raw: x{load[2].wall / load[0].wall:.2f}")
        lines.append(_rss_verdict([load[2], load[1]]))
        lines.append(f"  before: {before}; after: {service.load_average()}")
    client.close()
    return lines
