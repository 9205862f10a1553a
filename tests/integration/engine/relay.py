"""A relay in front of the engine's socket, on a unix socket or a 127.0.0.1 port, that can
cut or stall the answer to a request naming a marker after `limit` bytes, and that can go
away (closing every connection it carries) as an engine that stopped would."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path


class Relay:
    def __init__(self, engine_socket: str, *, path: Path | None = None) -> None:
        self.engine_socket = engine_socket
        self.marker = b""
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

    def break_answer(self, marker: bytes, limit: int, *, stall: bool) -> None:
        """Cut (or, `stall`, hold) the answer to the next request naming `marker` after
        `limit` bytes of it (its HTTP head included)."""
        self.marker, self.limit, self.stall = marker, limit, stall
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
                if self.marker and self.marker in data:
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
