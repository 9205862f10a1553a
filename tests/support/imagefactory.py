"""Images made to order without building anything: a save-format tar written here and handed to
`docker load`. The engine keeps the config's `created`, labels and (absent) tags, so this makes
old, labelled, dangling images — hundreds in a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import docker


@dataclass(frozen=True)
class FakeImage:
    created: datetime = datetime(2020, 1, 1, tzinfo=timezone.utc)
    labels: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    layer_bytes: int = 1024
    seed: str = ""


def tar_of(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of `members` (name: content), in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _layer(image: FakeImage, index: int) -> bytes:
    # Unique content per image so that no two fake images share a layer.
    unit = hashlib.sha256(f"{image.seed}/{index}".encode()).digest()
    payload = (unit * (image.layer_bytes // len(unit) + 1))[: image.layer_bytes]
    return tar_of({f"data-{index}": payload})


def write_save_tar(out: IO[bytes], images: Sequence[FakeImage]) -> list[str]:
    """Write a `docker save`-format tar holding `images`; return their image IDs."""
    manifest = []
    ids = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for index, image in enumerate(images):
            layer = _layer(image, index)
            diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
            created = image.created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": created,
                    "config": {"Labels": image.labels or None, "Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                    "history": [{"created": created, "created_by": "tests/imagefactory"}],
                },
                sort_keys=True,
            ).encode()
            digest = hashlib.sha256(config).hexdigest()
            add(f"{digest}.json", config)
            add(f"{digest}/layer.tar", layer)
            manifest.append(
                {
                    "Config": f"{digest}.json",
                    "RepoTags": list(image.tags) or None,
                    "Layers": [f"{digest}/layer.tar"],
                }
            )
            ids.append(f"sha256:{digest}")
        add("manifest.json", json.dumps(manifest).encode())
    return ids


def load_images(client: docker.DockerClient, images: Sequence[FakeImage]) -> list[str]:
    """Load `images` into the engine through a temp file (streamed); return their IDs."""
    with tempfile.TemporaryFile() as tar:
        ids = write_save_tar(tar, images)
        tar.seek(0)
        for line in client.api.load_image(tar):
            if "errorDetail" in line or "error" in line:
                raise RuntimeError(f"docker load failed: {line}")
    return ids


def ago(**delta: float) -> datetime:
    from datetime import timedelta

    return datetime.now(timezone.utc) - timedelta(**delta)


__all__ = ["FakeImage", "ago", "load_images", "write_save_tar"]
