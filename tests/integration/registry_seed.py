"""Fill a plain-HTTP registry:2 with many small repositories fast, through its own v2 API.

One layer blob is uploaded once; every other repository mounts it across repositories
(`POST …/blobs/uploads/?mount=&from=`) and gets its own tiny config (with the `created` time a
test asks for) and manifest: three or four small requests per tag, run on a thread pool.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import requests

BASE = "seed/base"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Seeder:
    url: str  # http://127.0.0.1:PORT
    layer: bytes
    diff_id: str

    @classmethod
    def start(cls, address: str) -> Seeder:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("seed.txt")
            payload = b"dockops seed\n"
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        seeder = cls(f"http://{address}", layer, _digest(raw.getvalue()))
        seeder._upload(BASE, layer)
        return seeder

    def _upload(self, repository: str, blob: bytes, mount_from: str | None = None) -> str:
        digest = _digest(blob)
        params = {"mount": digest, "from": mount_from} if mount_from else None
        started = requests.post(
            f"{self.url}/v2/{repository}/blobs/uploads/", params=params, timeout=30
        )
        if started.status_code == 201:  # mounted: nothing to send
            return digest
        assert started.status_code == 202, started.text
        location = requests.compat.urljoin(self.url, started.headers["Location"])
        done = requests.put(location, params={"digest": digest}, data=blob, timeout=30)
        assert done.status_code == 201, done.text
        return digest

    def tag(self, repository: str, tag: str, created: datetime | None = None) -> str:
        """Push repository:tag (the shared layer, its own config); returns the manifest digest."""
        when = (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": when,
                "config": {"Labels": {"seed": f"{repository}:{tag}"}},
                "rootfs": {"type": "layers", "diff_ids": [self.diff_id]},
            },
            sort_keys=True,
        ).encode()
        layer_digest = self._upload(repository, self.layer, mount_from=BASE)
        config_digest = self._upload(repository, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
                "layers": [
                    {"mediaType": LAYER_TYPE, "size": len(self.layer), "digest": layer_digest}
                ],
            }
        ).encode()
        put = requests.put(
            f"{self.url}/v2/{repository}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": MANIFEST_TYPE},
            timeout=30,
        )
        assert put.status_code == 201, put.text
        return put.headers["Docker-Content-Digest"]

    def same_digest(self, repository: str, source_tag: str, tag: str) -> None:
        """Point another tag at the manifest source_tag names (same digest)."""
        got = requests.get(
            f"{self.url}/v2/{repository}/manifests/{source_tag}",
            headers={"Accept": MANIFEST_TYPE},
            timeout=30,
        )
        put = requests.put(
            f"{self.url}/v2/{repository}/manifests/{tag}",
            data=got.content,
            headers={"Content-Type": MANIFEST_TYPE},
            timeout=30,
        )
        assert put.status_code == 201, put.text

    def many(self, names: list[str], workers: int = 16) -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda name: self.tag(name, "v1"), names))
