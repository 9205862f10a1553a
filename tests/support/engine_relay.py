"""Relays in front of an engine's unix socket, to break an operation exactly mid-way.

`Relay` cuts or stalls the answer to a chosen request after a chosen byte, and can go away as an
engine that stopped would (the engine contract tests, interrupted saves and exports).
`PausingRelay` holds a request or an answer at a chosen point, so a test can stop the engine (or
do anything else) exactly mid-operation, then lets the rest through: unlike `Relay`, it passes
what follows, the engine's hang-up included, once resumed."""

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


class Relay:
    """Forwards a unix socket or a 127.0.0.1 port (`host` is the DOCKER_HOST that reaches the
    engine through it) to the engine's socket; break_answer() says which answer to cut or stall;
    close() goes away as an engine that stopped would."""

    def __init__(self, engine_socket: str, *, path: Path | None = None) -> None:
        self.engine_socket = engine_socket
        self.markers: tuple[bytes, ...] = ()
        self.connections = 0  # accepted so far
        self.limit = 0
        self.stall = False  # else cut
        self.reached = threading.Event()
        self._release = threading.Event()
        self._open: list[socket.socket] = []
        if path is None:  # a tcp DOCKER_HOST is what docker-py's transport serves
            self._server = socket.socket(socket.AF_INET)
            self._server.bind(("127.0.0.1", 0))
            self.host = f"tcp://127.0.0.1:{self._server.getsockname()[1]}"
        else:
            self._server = socket.socket(socket.AF_UNIX)
            self._server.bind(str(path))
            self.host = f"unix://{path}"
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def break_answer(self, marker: bytes | tuple[bytes, ...], limit: int, *, stall: bool) -> None:
        """Cut (or, `stall`, hold) the answer to the next request naming `marker` (or any of
        several) after `limit` bytes of it (its HTTP head included)."""
        self.markers = marker if isinstance(marker, tuple) else (marker,)
        self.limit, self.stall = limit, stall
        self.reached.clear()

    def close(self) -> None:
        """Go away: refuse new connections and drop every one in flight."""
        self._release.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting on it
        self._server.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine_socket)
            self._open += [client, upstream]
            marked = threading.Event()
            threading.Thread(
                target=self._requests, args=(client, upstream, marked), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(client, upstream, marked), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, marked: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if any(marker in data for marker in self.markers):
                    marked.set()
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _answers(
        self, client: socket.socket, upstream: socket.socket, marked: threading.Event
    ) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if marked.is_set() and sent + len(data) > self.limit:
                    client.sendall(data[: self.limit - sent])
                    self.reached.set()
                    if self.stall:
                        self._release.wait(60)
                    break
                sent += len(data) if marked.is_set() else 0
                client.sendall(data)
        for end in (client, upstream):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
