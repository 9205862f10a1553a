"""registry gc: `registry garbage-collect` for a registry that `dockops registry up` runs.

GC is stop-the-world: a push during the mark phase can lose blobs. So the registry container is
stopped, GC runs in a one-off container of the same image with the same storage and settings
(network none), and the registry is started again, which also clears its blob descriptor cache:
after GC a stale cache says "Layer already exists" to pushes of deleted blobs (distribution#1803,
#3254). A dry run only reads, so it runs beside the live registry. What was freed is measured
on the storage itself (a named volume through the engine's df, a --data folder directly).

--delete-untagged in registry:2 deletes the untagged images of a tagged index (a multi-arch
image), whose pull then fails (distribution#3178, fixed only in distribution v3): the images of
an index are pushed untagged, and the 2.x collector marks them as blobs of the index but still
deletes them as manifests. So the collector first runs as a dry run, and when the manifests it
would delete include one that a kept manifest references, dockops refuses, naming the indexes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockops.core.registry_server import deploy
from dockops.core.registry_server.container_body import ContainerSettings, create_body
from dockops.core.registry_server.deploy import owned
from dockops.core.registry_server.registry_container import ADDRESS, DATA, LABEL, ROLE
from dockops.engine.api import Engine
from dockops.errors import EngineRefused, InvalidInput

CONFIG = "/etc/docker/registry/config.yml"
_SUMMARY = re.compile(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion")
# Its log: a repository's name alone on a line, then "REPO: marking manifest D" for each
# manifest it keeps, each followed by "REPO: marking blob D" for what that manifest references
# (an index's images among them), and "manifest eligible for deletion: D" (2.x) or
# "...: {REPO D [tags]}" (3.x) for each it deletes.
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._/]|__|-+)[a-z0-9]+)*")
_MARKING = re.compile(r"(\S+): marking (manifest|blob) (\S+:[0-9a-f]+)\s*")
_ELIGIBLE = re.compile(r"manifest eligible for deletion: \{?(?:(\S+) )?(\S+:[0-9a-f]+).*")


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
    manifests_deleted: tuple[str, ...]  # REPO@DIGEST, as the collector listed them (untagged)


@dataclass(frozen=True)
class CollectorLog:
    deleted: list[tuple[str, str]]  # (repository, digest) of each manifest it deletes
    # (repository, image, index): a deleted manifest that a kept manifest references
    referenced: list[tuple[str, str, str]]


def read_log(output: str) -> CollectorLog:
    """What the collector's log says it deletes, and which of those a kept manifest (an index)
    references; pure: unit-tested."""
    repository = ""
    deleted: list[tuple[str, str]] = []
    parent: dict[tuple[str, str], str] = {}  # (repository, referenced digest) -> referrer
    referrer = ""
    for line in output.splitlines():
        if _REPOSITORY.fullmatch(line.strip()):
            repository = line.strip()
        elif marking := _MARKING.fullmatch(line):
            repo, kind, digest = marking.groups()
            if kind == "manifest":
                referrer = digest
            else:
                parent.setdefault((repo, digest), referrer)
        elif eligible := _ELIGIBLE.fullmatch(line):
            deleted.append((eligible.group(1) or repository, eligible.group(2)))
    referenced = [(repo, d, parent[repo, d]) for repo, d in deleted if (repo, d) in parent]
    return CollectorLog(deleted=deleted, referenced=referenced)


def _refusal(referenced: list[tuple[str, str, str]]) -> str:
    indexes = list(dict.fromkeys(f"{repo}@{index}" for repo, _, index in referenced))
    named = ", ".join(indexes[:3]) + (f" and {len(indexes) - 3} more" if len(indexes) > 3 else "")
    return (
        f"registry gc --delete-untagged would delete {len(referenced)} untagged images that "
        f"indexes (multi-arch images) reference, breaking {named} (registry:2's collector, "
        "distribution#3178); run registry gc without --delete-untagged: registry rm and "
        "prune delete an index together with its images"
    )


def _storage(found: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in found.get("Mounts") or [] if m["Destination"] == DATA), None)


def storage_bytes(engine: Engine, found: dict[str, Any]) -> int | None:
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
    volumes = engine.disk_usage().get("Volumes") or []
    for volume in volumes:
        if volume.get("Name") == mount.get("Name"):
            size = int((volume.get("UsageData") or {}).get("Size", -1))
            return size if size >= 0 else None
    return None


def garbage_collect(
    engine: Engine, name: str, *, dry_run: bool = False, delete_untagged: bool = False
) -> GcResult:
    """Run the registry's garbage collector with the registry stopped, then start it again.

    Raises:
        InvalidInput: no registry of that name.
        EngineRefused: not made by dockops, the collector failed (with its last log line), or
            with delete_untagged, it would delete images that an index references.
    """
    found = engine.find_container(name)
    if found is None:
        raise InvalidInput(
            f"no registry named {name}: dockops registry gc runs on its own registry"
        )
    owned(found, name, "registry")
    before = storage_bytes(engine, found)
    running = bool(found["State"]["Running"])
    stop = running and not dry_run
    what = f"registry gc {name}"
    if stop:
        engine.stop(found["Id"], timeout=30, what=what)
    try:
        output = _run(engine, found, dry_run=dry_run, delete_untagged=delete_untagged)
    finally:
        if stop:
            engine.start(found["Id"], what=what)
    if stop:
        labels = found["Config"].get("Labels") or {}
        deploy.wait_ready(engine, found["Id"], str(labels.get(ADDRESS)))
    log = read_log(output)
    if log.referenced:
        raise EngineRefused(_refusal(log.referenced))
    after = storage_bytes(engine, found) if not dry_run else before
    summary = _SUMMARY.search(output)
    counts = [int(n) for n in summary.groups()] if summary else [None, None, None]
    return GcResult(
        name=name,
        dry_run=dry_run,
        delete_untagged=delete_untagged,
        blobs_marked=counts[0],
        blobs_eligible=counts[1],
        manifests_eligible=counts[2],
        bytes_before=before,
        bytes_after=after,
        freed_bytes=before - after if before is not None and after is not None else None,
        registry_stopped=stop,
        manifests_deleted=tuple(f"{repo}@{digest}" for repo, digest in log.deleted),
    )


def _run(engine: Engine, found: dict[str, Any], *, dry_run: bool, delete_untagged: bool) -> str:
    """The collector's log. With --delete-untagged, a dry run first: when it would delete an
    image that an index references, that log is returned and the real run never happens."""
    if not delete_untagged:
        return _collect(engine, found, ["--dry-run"] if dry_run else [])
    planned = _collect(engine, found, ["--dry-run", "--delete-untagged"])
    if dry_run or read_log(planned).referenced:
        return planned
    return _collect(engine, found, ["--delete-untagged"])


def collector_settings(found: dict[str, Any], flags: list[str]) -> ContainerSettings:
    """The one-off `registry garbage-collect` container beside the registry `found` (pure)."""
    config = found["Config"]
    return ContainerSettings(
        image=config["Image"],
        env=dict(item.partition("=")[::2] for item in config.get("Env") or []),
        labels={LABEL: config["Labels"][LABEL], ROLE: "gc"},
        network_mode="none",
        entrypoint=("/bin/registry",),
        command=("garbage-collect", *flags, CONFIG),
        # volumes_from brings the storage, a named volume or a --data folder alike.
        volumes_from=(found["Id"],),
    )


def _collect(engine: Engine, found: dict[str, Any], flags: list[str]) -> str:
    """Run `registry garbage-collect` in a one-off container sharing the registry's storage."""
    what = f"registry gc {found['Config']['Labels'][LABEL]}"
    box = engine.create_container(create_body(collector_settings(found, flags)), what=what)
    try:
        engine.start(box, what=what)
        # The engine's long read timeout (an hour) bounds the run, as docker-py's wait did.
        status = engine.wait(box, what=what)
        output = engine.logs(box, what=what).decode(errors="replace")
    finally:
        engine.remove_container(box, force=True, what=what)
    if status.get("StatusCode") != 0:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise EngineRefused(f"registry garbage-collect failed: {last}")
    return output
