"""A unix-socket relay in front of an engine that can hold a request or an answer at a chosen
point, so a test can stop the engine (or do anything else) exactly mid-operation, then let
the rest through. Unlike test_archive_interrupt's relay it passes what follows, the engine's
hang-up included, once resumed."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    marked: bool = False  # its request named the marker
    sent: dict[str, int] = field(default_factory=lambda: {"request": 0, "answer": 0})


class PausingRelay:
    """Forwards `path` to `engine_socket`. It pauses (holds all further data of the paused
    direction) when one of these happens, and sets `reached`:

    - `direction` "answer" or "request" with `limit`: a connection whose request holds
      `marker` has passed `limit` bytes that way;
    - `direction` "count" with `count`: `marker` has gone to the engine `count` times, over all
      connections (a request pauses right after the one that made the count).

    `resume()` lets everything through again, up to the end of each connection.
    """

    def __init__(
        self,
        path: Path,
        engine_socket: str,
        *,
        marker: bytes,
        direction: str,
        limit: int = 0,
        count: int = 0,
    ) -> None:
        self.path, self.engine_socket = path, engine_socket
        self.marker, self.direction, self.limit, self.count = marker, direction, limit, count
        self.reached = threading.Event()
        self._resumed = threading.Event()
        self._seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        self._server.listen(16)
        self._server.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def resume(self) -> None:
        self._resumed.set()

    def close(self) -> None:
        self._stop.set()
        self._resumed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.engine_socket)
            except OSError:  # the engine is gone: hang up, as a dead socket would
                client.close()
                upstream.close()
                continue
            conn = _Connection(client, upstream)
            for name in ("request", "answer"):
                threading.Thread(target=self._pump, args=(conn, name), daemon=True).start()

    def _hold(self) -> None:
        self.reached.set()
        self._resumed.wait()

    def _pump(self, conn: _Connection, name: str) -> None:
        source, sink = (
            (conn.client, conn.upstream) if name == "request" else (conn.upstream, conn.client)
        )
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if name == "request" and self.marker in data:
                    conn.marked = True
                if self.reached.is_set() and not self._resumed.is_set():
                    self._hold()  # paused everywhere once reached
                data = self._until_pause(conn, name, data, sink)
                sink.sendall(data)
                if name == "request" and self.direction == "count":
                    with self._lock:
                        self._seen += data.count(self.marker)
                        if self._seen >= self.count:
                            self.reached.set()
        # End of one side: pass the hang-up on, so the other side sees it too.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        if name == "answer":
            for end in (conn.client, conn.upstream):
                with contextlib.suppress(OSError):
                    end.close()

    def _until_pause(self, conn: _Connection, name: str, data: bytes, sink: socket.socket) -> bytes:
        """Send what fits under the limit, hold, and return what is left to send."""
        if name != self.direction or not conn.marked or self._resumed.is_set():
            return data
        room = self.limit - conn.sent[name]
        conn.sent[name] += len(data)
        if room >= len(data):
            return data
        sink.sendall(data[: max(room, 0)])
        self._hold()
        return data[max(room, 0) :]
