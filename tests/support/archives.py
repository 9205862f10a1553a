"""Image archives in each layout an engine writes, built here from an image's own config and
layer tars, for tests that load, delta or direct-push them.

- `docker25()`: what `docker save` writes since Docker 25, following moby's
  image/tarexport/save.go as released from v25.0.3 on (the OCI manifest lists the layers,
  moby#47068, in apply order, #47160; an untagged image still gets its index.json entry, #47232;
  the same layout v26 and v27 write): the OCI layout (`oci-layout`, `index.json`,
  `blobs/sha256/…` holding the layer tars named by their diff IDs, the image config, one legacy
  v1 config per layer and the OCI manifest) beside the `manifest.json` of older versions, whose
  Config and Layers point into blobs/, and `repositories`. The members come in the order moby's
  archive.Tar walks its temp folder: lexical, folders first.
- `legacy()`: Docker up to 24 (the same file of moby before v25): `<v1 id>/layer.tar`,
  `<v1 id>/json`, `<v1 id>/VERSION`, `<image id>.json`, `manifest.json`, `repositories`.
- `podman()`: podman's save stream (its /images/get answer, docker-archive), as
  containers/image's docker/internal/tarfile/writer.go writes it: each layer once at the top as
  `<diff id>.tar`, the config as `<image id>.json`, then per layer a `<v1 id>/` folder whose
  layer.tar is a symlink to `../<diff id>.tar`, then `manifest.json` (full names in RepoTags)
  and `repositories`.

`read_images()` reads an image back from any of them (or from a real engine's save), so an image
the engine holds can be written again in another layout.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from dockops.reference import parse_reference

_EPOCH = "1970-01-01T00:00:00Z"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
# The container.Config of an intermediate v1 config: Go marshals the zero struct whole.
_EMPTY_CONTAINER_CONFIG = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}  # fmt: skip
# image.V1Image's fields, in the order Go marshals them.
_V1_FIELDS = (
    "id", "parent", "comment", "created", "container", "container_config", "docker_version",
    "author", "config", "architecture", "variant", "os", "Size",
)  # fmt: skip


Writer = Callable[[Sequence["Image"]], bytes]


def go_json(value: Any) -> bytes:
    """`value` as Go's json.Marshal writes it: compact, non-ASCII as is, <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.encode()


def _sorted(repositories: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A Go map[string]map[string]string as json.Marshal writes it: keys in order."""
    return {name: dict(sorted(tags.items())) for name, tags in sorted(repositories.items())}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    """An image as an engine holds it: its config's bytes (their digest is the image ID) and
    its layers' uncompressed tars, in apply order; `tags` as the user names them (app:1)."""

    config: bytes
    layers: tuple[bytes, ...]
    tags: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return sha256(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return list(json.loads(self.config)["rootfs"]["diff_ids"])

    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.config))


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A layer: a tar of `files` (name: content), ended as Go's archive/tar ends one (two zero
    blocks, no padding to a 10 KiB record as Python's tarfile adds)."""
    tar = _Tar()
    for name, data in files.items():
        tar.file(name, data)
    return tar.bytes()


def on_top(base: Image, files: dict[str, bytes], tag: str, comment: str = "") -> Image:
    """A new image: `base` with one more layer holding `files`, tagged `tag`."""
    layer = layer_tar(files)
    doc = base.doc()
    doc["rootfs"] = {"type": "layers", "diff_ids": [*base.diff_ids, sha256(layer)]}
    created = "2024-02-01T00:00:00Z"
    doc["created"] = created
    entry = {"created": created, "created_by": f"tests/support/archives {comment or tag}"}
    doc["history"] = [*doc.get("history", []), entry]
    return Image(config=go_json(doc), layers=(*base.layers, layer), tags=(tag,))


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """layer.CreateChainID for each prefix of `diff_ids`."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else sha256(f"{chains[-1]} {diff_id}".encode()))
    return chains


def v1_configs(image: Image) -> list[tuple[str, bytes]]:
    """The legacy v1 config of each layer, (v1 ID, JSON), as moby's saveImage makes them
    with v1.CreateID: an empty one dated 1970 for each layer below the top, the image's own
    V1Image fields for the top one; the ID hashes it with the chain ID and the parent's ID."""
    doc = image.doc()
    found: list[tuple[str, bytes]] = []
    parent = ""
    chains = chain_ids(image.diff_ids)
    for index, chain in enumerate(chains):
        if index == len(chains) - 1:
            v1 = {key: doc[key] for key in _V1_FIELDS if doc.get(key) not in (None, "", 0)}
            v1["created"] = doc.get("created", _EPOCH)
            v1.setdefault("container_config", _EMPTY_CONTAINER_CONFIG)
        else:
            v1 = {"created": _EPOCH, "container_config": _EMPTY_CONTAINER_CONFIG}
        fields = dict(json.loads(go_json(v1)))
        fields["layer_id"] = chain
        if parent:
            fields["parent"] = parent
        v1_id = sha256(go_json(dict(sorted(fields.items()))))
        v1["id"] = v1_id[7:]
        if parent:
            v1["parent"] = parent[7:]
        v1["os"] = doc.get("os", "linux")
        ordered = {key: v1[key] for key in _V1_FIELDS if key in v1}
        found.append((v1_id[7:], go_json(ordered)))
        parent = v1_id
    return found


def _full(tag: str) -> tuple[str, str, str]:
    """A tag's (familiar name:tag, full name:tag, tag) as distribution/reference says them."""
    ref = parse_reference(tag)
    name = ref.tag or "latest"
    familiar = ref.familiar()
    return f"{familiar.repository}:{name}", f"{ref.canonical().repository}:{name}", name


class _Tar:
    """Members written as Go's archive/tar writes moby's and containers/image's headers:
    ustar, no user or group names; `bytes()` is the whole archive."""

    def __init__(self) -> None:
        self._out = io.BytesIO()

    def _add(self, info: tarfile.TarInfo, data: bytes = b"") -> None:
        info.size = len(data)
        self._out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        self._out.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))

    def file(self, name: str, data: bytes, mode: int = 0o644, mtime: float = 0) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime = mode, int(mtime)
        self._add(info, data)

    def folder(self, name: str, mtime: float = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(mtime)
        self._add(info)

    def symlink(self, name: str, target: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self._add(info)

    def bytes(self) -> bytes:
        return self._out.getvalue() + b"\0" * (2 * tarfile.BLOCKSIZE)


def _created(image: Image) -> float:
    text = str(image.doc().get("created") or _EPOCH)
    return datetime.fromisoformat(text[:19] + "+00:00").timestamp()


def docker25(images: Sequence[Image]) -> bytes:
    """The archive `docker save` of Docker 25 and later writes for `images` (see the module)."""
    blobs: dict[str, tuple[bytes, float]] = {}
    manifest: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        created = _created(image)
        for (_, v1), layer in zip(v1_configs(image), image.layers, strict=True):
            blobs.setdefault(sha256(v1)[7:], (v1, created))
            blobs.setdefault(sha256(layer)[7:], (layer, created))
        blobs[image.id[7:]] = (image.config, created)
        layers = [
            {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
            for layer in image.layers
        ]
        config = {"mediaType": OCI_CONFIG, "digest": image.id, "size": len(image.config)}
        oci = go_json(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
        )
        blobs[sha256(oci)[7:]] = (oci, 0)
        untagged = {"mediaType": OCI_MANIFEST, "digest": sha256(oci), "size": len(oci)}
        repo_tags = []
        for tag in image.tags:
            familiar, full, name = _full(tag)
            repositories.setdefault(familiar.rsplit(":", 1)[0], {})[name] = image.diff_ids[-1][7:]
            repo_tags.append(familiar)
            annotations = {
                "io.containerd.image.name": full,
                "org.opencontainers.image.ref.name": name,
            }
            index.append({**untagged, "annotations": annotations})
        if not index:  # moby checks the whole list, not this image's entries
            index.append(untagged)
        sources = {
            diff_id: {"mediaType": OCI_LAYER, "size": len(layer), "digest": diff_id}
            for diff_id, layer in sorted(zip(image.diff_ids, image.layers, strict=True))
        }
        manifest.append(
            {
                "Config": f"blobs/sha256/{image.id[7:]}",
                "RepoTags": repo_tags or None,
                "Layers": [f"blobs/sha256/{d[7:]}" for d in image.diff_ids],
                "LayerSources": sources,
            }
        )
    tar = _Tar()
    now = time.time()
    tar.folder("blobs", now)
    tar.folder("blobs/sha256", now)
    for name in sorted(blobs):
        data, mtime = blobs[name]
        tar.file(f"blobs/sha256/{name}", data, mtime=mtime)
    index_json = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    tar.file("index.json", go_json(index_json), mtime=now)  # moby leaves its time as is
    tar.file("manifest.json", go_json(manifest) + b"\n")
    tar.file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    if repositories:
        tar.file("repositories", go_json(_sorted(repositories)) + b"\n")
    return tar.bytes()


def legacy(images: Sequence[Image]) -> bytes:
    """The archive `docker save` of Docker 24 and earlier writes for `images`: a layer met again
    under another v1 ID (the top of one image, below the top of another) is a symlink to the
    first file of it, as saveLayer makes it."""
    files: dict[str, tuple[bytes, float]] = {}
    links: dict[str, str] = {}
    first: dict[str, str] = {}  # diff ID -> the v1 folder holding its file
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        created = _created(image)
        paths = []
        for (v1_id, v1), layer in zip(v1_configs(image), image.layers, strict=True):
            files.setdefault(f"{v1_id}/VERSION", (b"1.0", created))
            files.setdefault(f"{v1_id}/json", (v1, created))
            holder = first.setdefault(sha256(layer), v1_id)
            if holder == v1_id:
                files[f"{v1_id}/layer.tar"] = (layer, created)
            else:
                links[f"{v1_id}/layer.tar"] = f"../{holder}/layer.tar"
            paths.append(f"{v1_id}/layer.tar")
        files[f"{image.id[7:]}.json"] = (image.config, created)
        tags = []
        for tag in image.tags:
            familiar, _, name = _full(tag)
            repositories.setdefault(familiar.rsplit(":", 1)[0], {})[name] = paths[-1][:64]
            tags.append(familiar)
        entry = {"Config": f"{image.id[7:]}.json", "RepoTags": tags or None, "Layers": paths}
        manifest.append(entry)
    tar = _Tar()
    folders: set[str] = set()
    for name in sorted({*files, *links}):
        data, mtime = files.get(name, (b"", 0))
        if "/" in name and (folder := name.split("/")[0]) not in folders:
            folders.add(folder)
            tar.folder(folder, mtime)
        if name in links:
            tar.symlink(name, links[name])
        else:
            tar.file(name, data, mtime=mtime)
    tar.file("manifest.json", go_json(manifest) + b"\n")
    if repositories:
        tar.file("repositories", go_json(_sorted(repositories)) + b"\n")
    return tar.bytes()


def podman(images: Sequence[Image]) -> bytes:
    """Podman's save stream for `images` (containers/image's docker-archive writer)."""
    tar = _Tar()
    sent: set[str] = set()
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        for diff_id, layer in zip(image.diff_ids, image.layers, strict=True):
            if diff_id not in sent:
                sent.add(diff_id)
                tar.file(f"{diff_id[7:]}.tar", layer, mode=0o444)
        tar.file(f"{image.id[7:]}.json", image.config, mode=0o444)
        last = ""
        for (v1_id, v1), diff_id in zip(_podman_v1(image), image.diff_ids, strict=True):
            if v1_id not in sent:
                sent.add(v1_id)
                tar.symlink(f"{v1_id}/layer.tar", f"../{diff_id[7:]}.tar")
                tar.file(f"{v1_id}/VERSION", b"1.0", mode=0o444)
                tar.file(f"{v1_id}/json", v1, mode=0o444)
            last = v1_id
        tags = []
        for tag in image.tags:
            _, full, name = _full(tag)
            repositories.setdefault(full.rsplit(":", 1)[0], {})[name] = last
            tags.append(full)
        layers = [f"{d[7:]}.tar" for d in image.diff_ids]
        manifest.append({"Config": f"{image.id[7:]}.json", "RepoTags": tags, "Layers": layers})
    tar.file("manifest.json", go_json(manifest), mode=0o444)
    tar.file("repositories", go_json(_sorted(repositories)), mode=0o444)
    return tar.bytes()


def _podman_v1(image: Image) -> list[tuple[str, bytes]]:
    """writeLegacyMetadataLocked's per-layer configs: {"parent"} below the top, seven of the
    config's fields on it; the ID hashes that with "layer_id" (the chain ID) added."""
    doc = image.doc()
    found: list[tuple[str, bytes]] = []
    last = ""
    chains = chain_ids(image.diff_ids)
    for index, chain in enumerate(chains):
        layer: dict[str, Any] = {"parent": last} if last else {}
        if index == len(chains) - 1:
            for key in ("architecture", "config", "container", "container_config", "created",
                        "docker_version", "os"):  # fmt: skip
                layer[key] = doc.get(key)
        hashed = {**layer, "layer_id": chain}
        v1_id = hashlib.sha256(go_json(dict(sorted(hashed.items())))).hexdigest()
        layer["id"] = v1_id
        found.append((v1_id, go_json(dict(sorted(layer.items())))))
        last = v1_id
    return found


def read_images(archive: bytes) -> list[Image]:
    """The images of a save-format archive in any layout (symlinked layers followed), with
    the tags its manifest.json gives them, in their familiar form."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            member = members[name]
            while member.issym():
                name = _normal(f"{PurePosixPath(name).parent}/{member.linkname}")
                member = members[name]
            handle = tar.extractfile(member)
            assert handle is not None, name
            return handle.read()

        images = []
        for entry in json.loads(read("manifest.json")):
            tags = tuple(_full(t)[0] for t in entry.get("RepoTags") or ())
            layers = tuple(read(path) for path in entry["Layers"])
            images.append(Image(config=read(entry["Config"]), layers=layers, tags=tags))
    return images


def _normal(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def retagged(image: Image, *tags: str) -> Image:
    return replace(image, tags=tags)


def converting(layout: Writer) -> Callable[[bytes], bytes]:
    """A save answer for tests/support/saving_engine.py: the real save stream's images,
    written in `layout` (docker25, legacy, podman)."""
    return lambda real: layout(read_images(real))
