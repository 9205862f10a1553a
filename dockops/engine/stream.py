"""A large streamed answer (save, export) read straight off the engine's unix socket.

Through requests and urllib3, each of the engine's ~32 KiB chunks costs Python-level work
(http.client's chunk reader, readline, joins) and fresh allocations: measured on a 631 MB save,
that took the client ~1 s of CPU on a 2-core machine where the engine needs the other core to
produce the stream. Here one reused buffer is filled with recv_into, so each piece handed on
is a view into that buffer (valid until the next one).

The request says HTTP/1.0, so the engine sends the body unframed and closes the connection at
its end: each piece is then one whole read (~250 KiB on average, measured) instead of one of
the ~32 KiB chunks an HTTP/1.1 answer comes in, and nothing has to be cut out of the bytes.
Such a body cannot tell a finished stream from a cut one (`ends_at_close`); for a tar its own
end-of-archive marker does (archive.stream_tar). A chunked answer is still decoded.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from dockops.engine.http import BadAnswer, HungUp, refusal_text
from dockops.errors import EngineRefused

BUFFER = 1024 * 1024
_HEAD_MAX = 65536


@dataclass
class Body:
    """A streamed answer's body, as pieces, and what its transport raises when it breaks
    (ImageEngine.stream, over either transport)."""

    pieces: Iterator[bytes | memoryview]
    broken: tuple[type[BaseException], ...]
    ends_at_close: bool  # unframed: a connection cut early looks like the body's end


class EngineStream:
    """The body of one streamed GET, on a connection of its own (closed at the end)."""

    def __init__(self, sock: socket.socket, leftover: bytes, chunked: bool) -> None:
        self._sock, self._leftover, self._chunked = sock, leftover, chunked
        # No framing: the engine closing the connection early looks like the body's end.
        self.ends_at_close = not chunked
        self._buffer = bytearray(BUFFER)
        self._view = memoryview(self._buffer)

    def close(self) -> None:
        self._sock.close()

    def pieces(self) -> Iterator[memoryview]:
        """The body's bytes in pieces; each is only valid until the next is asked for.

        Raises:
            OSError: the socket failed; BadAnswer("connection closed") when the engine closed
                it before the end of a chunked body (an unframed one ends at any close).
        """
        if not self._chunked:
            for size in self._reads():
                yield self._view[:size]
            return
        remaining = 0  # bytes of the current chunk not yet passed on
        header = b""  # a chunk-size line split across two reads
        for size in self._reads():
            position = 0
            while position < size:
                if remaining:
                    step = min(remaining, size - position)
                    yield self._view[position : position + step]
                    position += step
                    remaining -= step
                    continue
                end = self._buffer.find(b"\n", position, size)
                if end < 0:
                    header += self._buffer[position:size]
                    if len(header) > _HEAD_MAX:
                        raise BadAnswer("chunk header too long")
                    break
                line = (header + self._buffer[position:end]).strip()
                header, position = b"", end + 1
                if not line:
                    continue  # the CRLF that closes each chunk's data
                try:
                    remaining = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise BadAnswer(f"bad chunk header {line[:40]!r}") from None
                if remaining == 0:
                    return  # trailers, if any, are not read: the connection is closed
        raise BadAnswer("connection closed")

    def _reads(self) -> Iterator[int]:
        """Fill the buffer again and again; yield how much each time, until the engine closes."""
        if self._leftover:
            self._view[: len(self._leftover)] = self._leftover
            yield len(self._leftover)
            self._leftover = b""
        while size := self._sock.recv_into(self._view):
            yield size


def open_stream(
    socket_path: str, api_version: str, path: str, params: dict[str, object] | None, timeout: float
) -> EngineStream:
    """GET `path` with `params` (lists repeat the key, as requests sends them).

    Raises:
        OSError: no engine at the socket; HungUp when it closed without an answer.
        EngineRefused: the engine answered with an error status (its message).
    """
    query = urlencode(params or {}, doseq=True)
    target = f"/v{api_version}{path}" + (f"?{query}" if query else "")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            piece = sock.recv(65536)
            if not piece:
                raise HungUp("connection closed without an answer")
            head += piece
            if len(head) > _HEAD_MAX and b"\r\n\r\n" not in head:
                raise BadAnswer("answer headers too long")
        head, _, leftover = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(None, 2)[1])
        except (IndexError, ValueError):
            raise BadAnswer(f"not an HTTP answer ({lines[0][:40]!r})") from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        stream = EngineStream(sock, leftover, headers.get("transfer-encoding") == "chunked")
        if status >= 400:
            body = b"".join(bytes(piece) for piece in stream.pieces())
            raise EngineRefused(refusal_text(body, status))
        return stream
    except BaseException:
        sock.close()
        raise
