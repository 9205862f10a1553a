"""The direct push: layers read from the engine's save stream, compressed by isal and uploaded
by dockops, instead of the daemon's single-threaded gzip.

One pass per layer: the tar member is read in CHUNK pieces, hashed (its diff ID, checked against
the engine's), compressed (isal, level 1) and hashed again (the blob digest), and the compressed
bytes go straight into the upload's PATCH body, so memory stays flat and nothing is spilled to
disk. Layers the registry already has (by the blob cache) are skipped or mounted from another
repository; the save stream then passes over them unread. The stream may be in any engine's
layout (archive/layout.py). A failed attempt (reset, 5xx) is retried whole: what was uploaded is
found in the registry the next time and not sent again.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from dockops.core.archive import layout
from dockops.core.archive.files import CHUNK
from dockops.core.registry.blobs import (
    BlobCache,
    cancel_blob,
    finish_blob,
    has_blob,
    mount_blob,
    put_blob,
    stream_blob,
)
from dockops.core.registry.client import RegistryClient
from dockops.engine.api import Engine
from dockops.errors import EngineRefused, RegistryTransient
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    from dockops.retry import RetryPolicy

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LEVEL = 1  # measured: isal level 1 is several times faster than the daemon's gzip, same size class


@dataclass(frozen=True)
class LayerPush:
    diff_id: str
    digest: str
    size: int
    action: str  # "uploaded", "exists", "mounted"


@dataclass(frozen=True)
class DirectResult:
    reference: str  # REGISTRY/REPOSITORY:TAG
    digest: str  # the manifest's
    config: str  # the image ID
    layers: tuple[LayerPush, ...]  # one per distinct layer, in image order
    uploaded_bytes: int
    attempts: int


def _compressed(member: IO[bytes], diff: Any, blob: Any, sizes: list[int]) -> Iterator[bytes]:
    """The member's bytes gzip-compressed, hashing both sides on the way.

    Reading, hashing and compressing run on a thread ahead of the upload that consumes this
    generator (hashlib and isal release the GIL on big buffers), so the network send overlaps
    the next chunk's compression; at most DEPTH compressed chunks wait in between.
    """
    from isal import isal_zlib

    out: queue.Queue[bytes | BaseException | None] = queue.Queue(_Prefetch.DEPTH)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            packer = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, 31)  # 31: gzip wrapper
            while not stop.is_set() and (chunk := member.read(CHUNK)):
                diff.update(chunk)
                packed = packer.compress(chunk)
                if packed:
                    blob.update(packed)
                    sizes[0] += len(packed)
                    put(packed)
            packed = packer.flush()
            blob.update(packed)
            sizes[0] += len(packed)
            put(packed)
            put(None)
        except BaseException as exc:  # raised in the consuming thread
            put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # The tar stream must not be read by two threads: wait for the producer to let go.
        worker.join()


class _Prefetch(io.RawIOBase):
    """Reads the engine's stream on a thread, up to DEPTH chunks ahead, so the engine keeps
    sending while this thread hashes, compresses and uploads (the save stream is the floor of
    the whole push; reading it only between compressions made the push twice as long)."""

    DEPTH = 16  # chunks: bounds the memory at DEPTH x CHUNK

    def __init__(self, pieces: Iterator[bytes | memoryview]) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(self.DEPTH)
        self._stop = threading.Event()
        self._buffer = memoryview(b"")
        self._ended = False
        self._thread = threading.Thread(target=self._pump, args=(pieces,), daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _pump(self, pieces: Iterator[bytes | memoryview]) -> None:
        try:
            for piece in pieces:
                if self._stop.is_set():
                    return
                if piece:
                    # A view is valid only until the next piece is asked for: queued, it is
                    # read later, so it is copied.
                    self._put(bytes(piece) if isinstance(piece, memoryview) else piece)
            self._put(b"")
        except BaseException as exc:  # handed to the reading thread, raised there
            self._put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            if self._ended:
                return 0
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                self._ended = True
                return 0
            self._buffer = memoryview(item)
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        self._stop.set()
        super().close()


class _Push:
    """One attempt's state: what the registry has, what still has to go."""

    def __init__(
        self,
        engine: Engine,
        api: RegistryClient,
        repository: str,
        image: dict[str, Any],
        cache: BlobCache,
        on_progress: ProgressCallback,
    ) -> None:
        self.engine, self.api, self.repository = engine, api, repository
        self.image_id = str(image["Id"])
        self.diff_ids = list((image.get("RootFS") or {}).get("Layers") or [])
        self.cache, self.on_progress = cache, on_progress
        self.done: dict[str, LayerPush] = {}
        self.seen: dict[str, str] = {}  # tar member name -> diff ID, once read
        self.uploaded = 0

    def _label(self, diff_id: str) -> str:
        return diff_id.removeprefix("sha256:")[:12]

    def _known(self, diff_id: str) -> LayerPush | None:
        """The layer's blob is in (or mountable into) the repository already."""
        cached = self.cache.blob(diff_id)
        if cached is None:
            return None
        digest, size = cached
        if has_blob(self.api, self.repository, digest):
            return LayerPush(diff_id=diff_id, digest=digest, size=size, action="exists")
        for source in self.cache.repositories(diff_id, self.api.registry):
            if source != self.repository and mount_blob(self.api, self.repository, digest, source):
                return LayerPush(diff_id=diff_id, digest=digest, size=size, action="mounted")
        return None

    def run(self) -> bytes:
        for diff_id in dict.fromkeys(self.diff_ids):
            if diff_id not in self.done and (known := self._known(diff_id)):
                self.done[diff_id] = known
                self.on_progress(
                    ProgressEvent(item=self._label(diff_id), status=f"Layer {known.action}")
                )
        config = None if has_blob(self.api, self.repository, self.image_id) else b""
        if len(self.done) < len(set(self.diff_ids)) or config is not None:
            config = self._stream(need_config=config is not None)
        if config:
            put_blob(self.api, self.repository, self.image_id, config)
        for item in self.done.values():
            self.cache.record(
                item.diff_id, item.digest, item.size, self.api.registry, self.repository
            )
        return self._manifest(len(config or b""))

    def _stream(self, *, need_config: bool) -> bytes | None:
        """Walk the engine's save stream of the image; upload the layers still missing.

        A second walk is needed only when a layer was read to learn that it was not one the
        registry has after all (two layers of the same tar size: only Docker before 25 names a
        layer by anything but its diff ID, see archive/layout.py), and it never uploads twice.
        """
        config: bytes | None = None
        for _ in range(2):
            config = self._walk(need_config and config is None) or config
            if all(d in self.done for d in self.diff_ids):
                break
        missing = [d for d in self.diff_ids if d not in self.done]
        if missing:
            raise EngineRefused(f"the engine's save stream lacks layer {missing[0]}")
        if need_config and config is None:
            raise EngineRefused(f"the engine's save stream lacks the config of {self.image_id}")
        if config is not None and "sha256:" + hashlib.sha256(config).hexdigest() != self.image_id:
            raise EngineRefused("the engine's save stream holds another config than the image's")
        return config

    def _walk(self, need_config: bool) -> bytes | None:
        config: bytes | None = None
        what = f"read {self.image_id.removeprefix('sha256:')[:12]} from the engine"
        # A cut stream raises StreamBroken out of the pieces, which save's context maps to
        # EngineUnreachable; the prefetching thread hands it over to this one.
        with self.engine.save([self.image_id], what) as body:
            source = io.BufferedReader(_Prefetch(body.pieces), CHUNK)
            try:
                with tarfile.open(fileobj=source, mode="r|") as tar:
                    for member in tar:
                        if need_config and member.name in layout.config_names(self.image_id):
                            handle = tar.extractfile(member)
                            config = handle.read() if handle else None
                        elif member.isfile() and layout.may_be_layer(member.name):
                            self._layer(tar, member)
            finally:
                source.close()
        return config

    def _diff_id_of(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> str | None:
        """The member's diff ID when it can be known without compressing it: from its name
        (Docker 25+, Podman), from an earlier walk, or by hashing a member whose size is that
        of a layer the registry already has. None: it has to be compressed to be known."""
        named = layout.named_digest(member.name)
        if named is not None:
            return named
        if member.name in self.seen:
            return self.seen[member.name]
        done_sizes = {self.cache.tar_size(d) for d in self.done}
        if member.size not in done_sizes:
            return None
        handle = tar.extractfile(member)
        diff = hashlib.sha256()
        while handle is not None and (chunk := handle.read(CHUNK)):
            diff.update(chunk)
        self.seen[member.name] = "sha256:" + diff.hexdigest()
        return self.seen[member.name]

    def _layer(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        earlier = member.name in self.seen
        known = self._diff_id_of(tar, member)
        if known is not None and (known not in self.diff_ids or known in self.done):
            return  # not this image's, or the registry has it
        if known is not None and not earlier and layout.named_digest(member.name) is None:
            return  # hashed just now, so the stream moved past it: the next walk uploads it
        handle = tar.extractfile(member)
        if handle is None:
            return
        diff, blob, sizes = hashlib.sha256(), hashlib.sha256(), [0]
        label = layout.label(member.name)
        self.on_progress(ProgressEvent(item=label, status="Pushing", current=0, total=member.size))
        patched = stream_blob(self.api, self.repository, _compressed(handle, diff, blob, sizes))
        diff_id = "sha256:" + diff.hexdigest()
        self.seen[member.name] = diff_id
        digest = "sha256:" + blob.hexdigest()
        if diff_id not in self.diff_ids or diff_id in self.done:
            cancel_blob(self.api, patched)  # read to learn it was not needed
            return
        finish_blob(self.api, patched, digest)
        self.uploaded += sizes[0]
        self.done[diff_id] = LayerPush(
            diff_id=diff_id, digest=digest, size=sizes[0], action="uploaded"
        )
        self.cache.record(diff_id, digest, sizes[0], self.api.registry, self.repository)
        self.cache.set_tar_size(diff_id, member.size)
        self.cache.save()
        self.on_progress(
            ProgressEvent(item=label, status="Pushed", current=member.size, total=member.size)
        )

    def _manifest(self, config_size: int) -> bytes:
        if not config_size:
            config_size = int(
                self.api.request("HEAD", f"/v2/{self.repository}/blobs/{self.image_id}").headers[
                    "Content-Length"
                ]
            )
        layers = [
            {"mediaType": LAYER_GZIP, "size": self.done[d].size, "digest": self.done[d].digest}
            for d in self.diff_ids
        ]
        document = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_TYPE, "size": config_size, "digest": self.image_id},
            "layers": layers,
        }
        return json.dumps(document, indent=3).encode()


def push_direct(
    engine: Engine,
    api: RegistryClient,
    image: dict[str, Any],
    repository: str,
    tag: str,
    *,
    on_progress: ProgressCallback = ignore,
    policy: RetryPolicy | None = None,
) -> DirectResult:
    """Push a local image to `api`'s registry as repository:tag without the daemon's push.

    Args:
        image: the image's inspect document (its ID and RootFS layers).

    Raises:
        RegistryUnreachable: down, TLS, auth, or transient faults outlasting the retries.
        EngineRefused: the registry refused the manifest, or the engine's stream is odd.
    """
    from dockops import retry

    policy = policy or retry.TRANSFER
    cache = BlobCache.load()
    total = 0
    state: _Push | None = None

    def tell(attempt: int, error: BaseException, wait: float) -> None:
        on_progress(
            ProgressEvent(
                item=repository,
                status=f"attempt {attempt}/{policy.attempts} failed ({error}); retrying",
            )
        )

    retrying = retry.retrying(policy, transient=RegistryTransient, on_retry=tell)
    for attempt in retrying:
        with attempt:
            state = _Push(engine, api, repository, image, cache, on_progress)
            try:
                manifest = state.run()
            finally:
                total += state.uploaded
                cache.save()
            response = api.request(
                "PUT",
                f"/v2/{repository}/manifests/{tag}",
                data=manifest,
                headers={"Content-Type": MANIFEST_V2},
            )
    assert state is not None
    digest = response.headers.get("Docker-Content-Digest") or (
        "sha256:" + hashlib.sha256(manifest).hexdigest()
    )
    attempts = retrying.attempts
    return DirectResult(
        reference=f"{api.registry}/{repository}:{tag}",
        digest=digest,
        config=state.image_id,
        layers=tuple(state.done[d] for d in dict.fromkeys(state.diff_ids)),
        uploaded_bytes=total,
        attempts=attempts,
    )
