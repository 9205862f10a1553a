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
LIST_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


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

    def tag(
        self,
        repository: str,
        tag: str | None,
        created: datetime | None = None,
        architecture: str = "amd64",
    ) -> str:
        """Push repository:tag (the shared layer, its own config), or with tag None the same
        manifest by its digest only (untagged, as an index's images are pushed); returns the
        manifest digest."""
        when = (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        config = json.dumps(
            {
                "architecture": architecture,
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
        return self._put_manifest(repository, tag, manifest, MANIFEST_TYPE)

    def _put_manifest(
        self, repository: str, tag: str | None, document: bytes, media_type: str
    ) -> str:
        put = requests.put(
            f"{self.url}/v2/{repository}/manifests/{tag or _digest(document)}",
            data=document,
            headers={"Content-Type": media_type},
            timeout=30,
        )
        assert put.status_code == 201, put.text
        return str(put.headers["Docker-Content-Digest"])

    def index(
        self, repository: str, tag: str, children: list[str], media_type: str = LIST_TYPE
    ) -> str:
        """Push repository:tag as an index (a docker manifest list, or an OCI index) of the
        manifests `children` names, already in the repository; returns the index's digest."""
        entries = []
        for child in children:
            got = requests.get(
                f"{self.url}/v2/{repository}/manifests/{child}",
                headers={"Accept": MANIFEST_TYPE},
                timeout=30,
            )
            assert got.status_code == 200, got.text
            config = json.loads(got.content)["config"]["digest"]
            arch = requests.get(f"{self.url}/v2/{repository}/blobs/{config}", timeout=30).json()[
                "architecture"
            ]
            entries.append(
                {
                    "mediaType": MANIFEST_TYPE,
                    "size": len(got.content),
                    "digest": got.headers["Docker-Content-Digest"],
                    "platform": {"os": "linux", "architecture": arch},
                }
            )
        document = json.dumps(
            {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        ).encode()
        return self._put_manifest(repository, tag, document, media_type)

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
