"""The direct push's reading of the engine's save stream: pieces handed over from the
prefetching thread whole, and a stream cut off mid-way is the engine lost (exit 3)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from dockops.core.archive.files import CHUNK
from dockops.core.push_private.direct import _Prefetch, _Push
from dockops.engine.api import Engine
from dockops.engine.wire import Body, StreamBroken
from dockops.errors import EngineUnreachable


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
