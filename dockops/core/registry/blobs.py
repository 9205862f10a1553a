"""Blob uploads to a registry, and the local memory of what was uploaded where.

An upload streams: POST starts a session, one PATCH carries the body as it is produced (chunked
transfer encoding, so the digest need not be known first), PUT ?digest= closes it. Small blobs
go in the PUT itself. The cache maps a layer's diff ID (sha256 of the uncompressed tar, which
the engine knows) to the compressed blob dockops made of it, as the daemon's own v2 metadata
does: a second push asks the registry for that blob instead of compressing the layer again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from dockops.atomic import write_atomic
from dockops.core.registry.client import RegistryClient
from dockops.errors import EngineRefused


def _location(response: Any) -> str:
    location = response.headers.get("Location")
    if not location:
        raise EngineRefused(f"{response.url}: the registry gave no upload Location")
    return str(urljoin(response.url, location))


def has_blob(api: RegistryClient, repository: str, digest: str) -> bool:
    response = api.request("HEAD", f"/v2/{repository}/blobs/{digest}", allow=(404,))
    return response.status_code == 200


def mount_blob(api: RegistryClient, repository: str, digest: str, source: str) -> bool:
    """Cross-repository mount; False when the registry would rather have an upload (202)."""
    response = api.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        params={"mount": digest, "from": source},
    )
    if response.status_code == 201:
        return True
    # A 202 opened an upload session instead: cancel it rather than leave it to expire.
    with contextlib.suppress(Exception):
        api.request("DELETE", _location(response), allow=(404,))
    return False


def put_blob(api: RegistryClient, repository: str, digest: str, data: bytes) -> None:
    """A small blob in one request (POST, then PUT with the body)."""
    started = api.request("POST", f"/v2/{repository}/blobs/uploads/")
    api.request(
        "PUT",
        _location(started),
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def stream_blob(api: RegistryClient, repository: str, chunks: Iterable[bytes]) -> Any:
    """Upload `chunks` as one PATCH; returns the PATCH response (its Location finishes it)."""
    started = api.request("POST", f"/v2/{repository}/blobs/uploads/")
    return api.request(
        "PATCH",
        _location(started),
        data=iter(chunks),
        headers={"Content-Type": "application/octet-stream"},
    )


def finish_blob(api: RegistryClient, patched: Any, digest: str) -> None:
    api.request("PUT", _location(patched), params={"digest": digest})


def cancel_blob(api: RegistryClient, patched: Any) -> None:
    """Drop an upload session that turned out not to be needed (it would expire anyway)."""
    with contextlib.suppress(Exception):
        api.request("DELETE", _location(patched), allow=(404,))


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dockops" / "blobs.json"


@dataclass
class BlobCache:
    """diff ID → {"digest", "size", "repos": {registry: [repository, …]}}."""

    path: Path
    entries: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> BlobCache:
        path = path or cache_path()
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):  # no cache, or a damaged one: start afresh
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    def blob(self, diff_id: str) -> tuple[str, int] | None:
        entry = self.entries.get(diff_id)
        if not isinstance(entry, dict) or "digest" not in entry:
            return None
        return str(entry["digest"]), int(entry.get("size", 0))

    def repositories(self, diff_id: str, registry: str) -> list[str]:
        entry = self.entries.get(diff_id) or {}
        return list((entry.get("repos") or {}).get(registry) or [])

    def record(self, diff_id: str, digest: str, size: int, registry: str, repo: str) -> None:
        entry = self.entries.setdefault(diff_id, {})
        if entry.get("digest") != digest:
            entry.clear()
        entry.update(digest=digest, size=size)
        repos = entry.setdefault("repos", {}).setdefault(registry, [])
        if repo not in repos:
            repos.append(repo)

    def tar_size(self, diff_id: str) -> int | None:
        """The layer's uncompressed tar size, which lets a save stream's member be recognised
        before it is compressed."""
        size = (self.entries.get(diff_id) or {}).get("tar_size")
        return int(size) if size is not None else None

    def set_tar_size(self, diff_id: str, size: int) -> None:
        self.entries.setdefault(diff_id, {})["tar_size"] = size

    def save(self) -> None:
        # Best effort: a cache that cannot be written only costs a recompression next time.
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps(self.entries).encode(), mode=0o600)
