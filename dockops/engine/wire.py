"""What a transport does for the Engine: three kinds of exchange, and how each one fails.

An Engine (engine/api.py) writes every request dockops makes once, over a Transport. A
transport only moves bytes: it sends a request and hands back the status and body, never
judging them (the Engine maps statuses to errors, engine/errors.py). Two implement it:
engine/unix.py for a local socket, engine/dockerpy.py for tcp, TLS and ssh engines.

A transport raises Lost when the engine cannot be reached or the connection fails; a body
being read raises StreamBroken when it is cut off. No other exception leaves a transport.

json_lines reads the engine's JSON-lines bodies (pull, push, events) for the Engine and
engine/daemon_lines.py alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

Params = dict[str, Any]


class Lost(Exception):
    """The engine could not be reached, or the connection failed before an answer.

    `timed_out`: it was silent for the transport's read timeout (not refused, not closed).
    """

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class StreamBroken(Lost):
    """A streamed body was cut off after its answer began."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    # Names in lower case; only what connect reads from /_ping is needed, and only there.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Body:
    """A streamed answer: its status, and its body as pieces. A piece may be a view into a
    reused buffer, valid only until the next one is asked for. Reading raises StreamBroken."""

    status: int
    pieces: Iterator[bytes | memoryview]
    # Unframed (HTTP/1.0): the engine closing the connection early looks like the body's end,
    # so the reader has to tell a whole body by its content (a tar's end marker).
    ends_at_close: bool

    def read_all(self) -> bytes:
        return b"".join(bytes(piece) for piece in self.pieces)


class Transport(Protocol):
    """Moves requests and answers between dockops and one engine."""

    address: str  # as the user would name it: unix:///var/run/docker.sock, tcp://...
    api_version: str  # negotiated with the engine as the docker CLI does (engine/negotiate.py)
    server: dict[str, Any] | None  # the engine's /version document once read
    podman: bool | None  # Podman's compat service? From /_ping's headers; None: not known yet

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request with a small answer, read whole."""
        ...

    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> AbstractContextManager[Body]:
        """One request whose answer is read as it comes (save, export, pull, push). `timeout`
        bounds each read of the body (a stall), else the transport's own."""
        ...

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> Answer:
        """POST a body streamed from `pieces`, never joined (load, import)."""
        ...

    def answers(self) -> bool:
        """True when the engine answers /_ping within 5 s, on a connection of its own."""
        ...

    def close(self) -> None: ...


def json_request(
    json_body: Any, headers: dict[str, str] | None
) -> tuple[bytes | None, dict[str, str]]:
    """The body and headers a transport sends for `json_body` (None: no body)."""
    headers = dict(headers or {})
    if json_body is None:
        return None, headers
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(json_body).encode(), headers


def json_lines(pieces: Iterable[bytes | memoryview]) -> Iterator[dict[str, Any]]:
    """The JSON documents of a stream of lines cut into pieces anywhere (a line may span
    pieces; a piece may be a view valid only until the next is read, so it is copied).

    Raises:
        ValueError: a line that is not a JSON object (its start is the message).
    """
    pending = bytearray()
    for piece in pieces:
        pending += piece
        end = pending.rfind(b"\n")
        if end < 0:
            continue
        complete = bytes(pending[:end])
        del pending[: end + 1]
        for line in complete.split(b"\n"):
            if line.strip():
                yield _document(line)
    if pending.strip():
        yield _document(bytes(pending))


def _document(line: bytes) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ValueError(repr(line[:200]))
    return document
