"""The direct push's reading of the engine's save stream: pieces handed over from the
prefetching thread whole, a stream cut off mid-way is the engine lost (exit 3), and the layers
of every engine's layout (tests/support/archives.py) uploaded off one walk of the stream."""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockops.core.archive.files import CHUNK
from dockops.core.push_private import direct
from dockops.core.push_private.direct import _Prefetch, _Push
from dockops.core.registry.blobs import BlobCache
from dockops.engine.api import Engine
from dockops.engine.wire import Body, StreamBroken
from dockops.errors import EngineUnreachable
from tests.support.fake_engine import Pieces, fake_engine, transport
from tests.support.tarfuzz import chunked
from tests.unit.core.archive.test_layout import WRITERS, two_images


def _reused(data: bytes, size: int) -> Iterator[memoryview]:
    """`data` in views of one buffer, overwritten for each piece (as the unix transport
    reads into one buffer): a view is valid only until the next is asked for."""
    buffer = bytearray(size)
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        buffer[: len(piece)] = piece
        yield memoryview(buffer)[: len(piece)]


def test_prefetched_views_arrive_as_they_were_sent() -> None:
    data = bytes(range(256)) * 5000  # many pieces: the thread reads ahead of the reader
    reader = io.BufferedReader(_Prefetch(_reused(data, 1000)), CHUNK)
    try:
        assert reader.read() == data
    finally:
        reader.close()


class _CutSave:
    """A transport whose save stream ends in a cut after the first piece of a tar."""

    address = "unix:///test.sock"
    api_version = "1.41"
    server = None
    podman = None

    def __init__(self) -> None:
        self.paths: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Body]:
        self.paths.append((path, kwargs.get("params")))
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            member = tarfile.TarInfo("0123/layer.tar")
            member.size = 100_000
            tar.addfile(member, io.BytesIO(b"x" * member.size))

        def pieces() -> Iterator[bytes]:
            yield archive.getvalue()[:2048]
            raise StreamBroken("Connection reset by peer")

        yield Body(200, pieces(), ends_at_close=False)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was asked: {name}")


def test_a_cut_save_stream_is_the_engine_lost() -> None:
    transport = _CutSave()
    image = {"Id": "sha256:" + "ab" * 32, "RootFS": {"Layers": ["sha256:" + "cd" * 32]}}
    push = _Push(Engine(transport), None, "app", image, None, lambda event: None)  # type: ignore[arg-type]
    push._known = lambda diff_id: None  # type: ignore[method-assign]
    push._layer = lambda tar, member: tar.extractfile(member).read()  # type: ignore[method-assign,union-attr]
    with pytest.raises(EngineUnreachable, match=r"read ababababab.*lost the Docker engine.*reset"):
        push._walk(need_config=True)
    assert transport.paths == [("/images/get", {"names": ["sha256:" + "ab" * 32]})]


# --- every engine's layout, read off one walk of the save stream -------------------------------


class _Api:
    registry = "127.0.0.1:5000"


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_layout_is_pushed_off_one_walk_of_the_stream(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = two_images()
    image = images[1]
    data = WRITERS[kind](images)  # both images: the other's config and layers pass by too
    engine = fake_engine({"GET /images/get": (200, Pieces(chunked(data, 1000)))})
    uploads: list[bytes] = []
    finished: list[str] = []

    def stream_blob(api: object, repository: str, chunks: Iterator[bytes]) -> int:
        uploads.append(b"".join(chunks))
        return len(uploads) - 1

    monkeypatch.setattr(direct, "stream_blob", stream_blob)
    monkeypatch.setattr(direct, "finish_blob", lambda api, n, digest: finished.append(digest))
    monkeypatch.setattr(direct, "cancel_blob", lambda api, n: finished.append(f"cancel {n}"))
    inspect = {"Id": image.id, "RootFS": {"Layers": image.diff_ids}}
    cache = BlobCache(tmp_path / "blobs.json")
    push = _Push(engine, _Api(), "app", inspect, cache, lambda event: None)  # type: ignore[arg-type]
    push._known = lambda diff_id: None  # type: ignore[method-assign]

    assert push._stream(need_config=True) == image.config
    assert transport(engine).paths() == ["GET /images/get"]  # one walk, whatever the layout
    layers = [zlib.decompress(blob, 31) for blob in uploads]
    assert sorted(layers) == sorted(image.layers)  # each once, in the stream's order
    assert finished == ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in uploads]
    assert set(push.done) == set(image.diff_ids)
