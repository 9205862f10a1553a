"""A Transport answering canned (status, body) per request, so the real Engine code runs.

A route is "METHOD /path" (no query); its reply is (status, body): a body that is not bytes is
sent as JSON, an exception is raised; a streamed body may be Pieces (bytes, or an exception
raised when reached). A list of replies is answered in turn, the last one again and again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dockops.engine.api import Engine
from dockops.engine.wire import Answer, Body, Params

Reply = tuple[int, Any]


class Pieces(list[Any]):
    """A streamed body, piece by piece: bytes, or an exception raised when it is reached."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Params
    json_body: Any
    headers: dict[str, str]
    timeout: float | None


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


class FakeTransport:
    address = "unix:///fake/docker.sock"
    api_version = "1.41"
    server: dict[str, Any] | None = None
    podman: bool | None = None

    def __init__(
        self, routes: Mapping[str, Reply | list[Reply]], *, answering: bool = True
    ) -> None:
        self.routes = {key: list(r) if isinstance(r, list) else [r] for key, r in routes.items()}
        self.answering = answering
        self.requests: list[Request] = []
        self.uploaded = b""  # the body of the last upload

    def _reply(
        self,
        method: str,
        path: str,
        params: Params | None,
        json_body: Any,
        headers: dict[str, str] | None,
        timeout: float | None = None,
    ) -> Reply:
        self.requests.append(
            Request(method, path, dict(params or {}), json_body, dict(headers or {}), timeout)
        )
        replies = self.routes.get(f"{method} {path}")
        if not replies:
            return 404, {"message": f"no such route: {method} {path}"}
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        status, body = self._reply(method, path, params, json_body, headers)
        if isinstance(body, BaseException):
            raise body
        return Answer(status, _bytes(body))

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[Body]:
        status, body = self._reply(method, path, params, json_body, headers, timeout)
        if isinstance(body, BaseException):
            raise body
        pieces = body if isinstance(body, Pieces) else [_bytes(body)]
        yield Body(status, _pieces(pieces), ends_at_close=False)

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> Answer:
        status, body = self._reply("POST", path, params, None, {"Content-Type": content_type})
        # Read as a real transport reads it: the sender's own checks run on the way.
        self.uploaded = b"".join(bytes(piece) for piece in pieces)
        return Answer(status, _bytes(body))

    def answers(self) -> bool:
        return self.answering

    def close(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


def _pieces(pieces: list[Any]) -> Iterator[bytes | memoryview]:
    """Each piece as a view into one reused buffer, as a real transport hands them."""
    buffer = bytearray(max((len(p) for p in pieces if isinstance(p, bytes)), default=0))
    for piece in pieces:
        if isinstance(piece, BaseException):
            raise piece
        buffer[: len(piece)] = piece
        yield memoryview(buffer)[: len(piece)]
        buffer[: len(piece)] = b"\xff" * len(piece)  # a reader that kept the view sees junk


def fake_engine(routes: Mapping[str, Reply | list[Reply]], *, answering: bool = True) -> Engine:
    return Engine(FakeTransport(routes, answering=answering))


def transport(engine: Engine) -> FakeTransport:
    assert isinstance(engine.transport, FakeTransport)
    return engine.transport
