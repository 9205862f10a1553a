"""registry gc: `registry garbage-collect` for a registry that `dockops registry up` runs.

GC is stop-the-world: a push during the mark phase can lose blobs. So the registry container is
stopped, GC runs in a one-off container of the same image with the same storage and settings
(network none), and the registry is started again, which also clears its blob descriptor cache:
after GC a stale cache says "Layer already exists" to pushes of deleted blobs (distribution#1803,
#3254). A dry run only reads, so it runs beside the live registry. What was freed is measured
on the storage itself (a named volume through the engine's df, a --data folder directly).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockops.core.registry import deploy
from dockops.core.registry.deploy import find, owned
from dockops.engine import engine_errors
from dockops.errors import EngineRefused, InvalidInput

if TYPE_CHECKING:
    import docker

CONFIG = "/etc/docker/registry/config.yml"
_SUMMARY = re.compile(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion")


@dataclass(frozen=True)
class GcResult:
    name: str
    dry_run: bool
    delete_untagged: bool
    blobs_marked: int | None
    blobs_eligible: int | None
    manifests_eligible: int | None
    bytes_before: int | None  # None when the storage cannot be measured from here
    bytes_after: int | None
    freed_bytes: int | None
    registry_stopped: bool  # the registry was stopped for the run, and started again


def _storage(found: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in found.get("Mounts") or [] if m["Destination"] == deploy.DATA), None)


def storage_bytes(client: docker.DockerClient, found: dict[str, Any]) -> int | None:
    """Bytes under the registry's storage: a folder walked here, a volume from the engine's df."""
    mount = _storage(found)
    if mount is None:
        return None
    if mount["Type"] == "bind":
        root = Path(mount["Source"])
        if not root.is_dir():
            return None
        return sum(
            os.lstat(os.path.join(folder, name)).st_size
            for folder, _, files in os.walk(root)
            for name in files
        )
    with engine_errors("measure the registry volume"):
        volumes = client.api.df().get("Volumes") or []
    for volume in volumes:
        if volume.get("Name") == mount.get("Name"):
            size = int((volume.get("UsageData") or {}).get("Size", -1))
            return size if size >= 0 else None
    return None


def garbage_collect(
    client: docker.DockerClient, name: str, *, dry_run: bool = False, delete_untagged: bool = False
) -> GcResult:
    """Run the registry's garbage collector with the registry stopped, then start it again.

    Raises:
        InvalidInput: no registry of that name.
        EngineRefused: not made by dockops, or the collector failed (with its last log line).
    """
    found = find(client, name)
    if found is None:
        raise InvalidInput(
            f"no registry named {name}: dockops registry gc runs on its own registry"
        )
    owned(found, name, "registry")
    before = storage_bytes(client, found)
    running = bool(found["State"]["Running"])
    stop = running and not dry_run
    flags = (["--dry-run"] if dry_run else []) + (["--delete-untagged"] if delete_untagged else [])
    with engine_errors(f"registry gc {name}"):
        if stop:
            client.api.stop(found["Id"], timeout=30)
        try:
            output = _collect(client, found, flags)
        finally:
            if stop:
                client.api.start(found["Id"])
    if stop:
        labels = found["Config"].get("Labels") or {}
        deploy.wait_ready(client, found["Id"], str(labels.get(deploy.ADDRESS)))
    after = storage_bytes(client, found) if not dry_run else before
    summary = _SUMMARY.search(output)
    counts = [int(n) for n in summary.groups()] if summary else [None, None, None]
    return GcResult(
        name,
        dry_run,
        delete_untagged,
        counts[0],
        counts[1],
        counts[2],
        before,
        after,
        before - after if before is not None and after is not None else None,
        stop,
    )


def _collect(client: docker.DockerClient, found: dict[str, Any], flags: list[str]) -> str:
    """Run `registry garbage-collect` in a one-off container sharing the registry's storage."""
    # volumes_from brings the storage, a named volume or a --data folder alike.
    host_config = client.api.create_host_config(volumes_from=[found["Id"]], network_mode="none")
    box = client.api.create_container(
        image=found["Config"]["Image"],
        entrypoint=["/bin/registry"],
        command=["garbage-collect", *flags, CONFIG],
        environment=found["Config"].get("Env") or [],
        labels={deploy.LABEL: found["Config"]["Labels"][deploy.LABEL], deploy.ROLE: "gc"},
        host_config=host_config,
    )
    try:
        client.api.start(box["Id"])
        status = client.api.wait(box["Id"], timeout=3600)
        output = str(client.api.logs(box["Id"]).decode(errors="replace"))
    finally:
        client.api.remove_container(box["Id"], force=True)
    if status.get("StatusCode") != 0:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise EngineRefused(f"registry garbage-collect failed: {last}")
    return output
