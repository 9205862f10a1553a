"""An engine socket that answers saves as another engine would have written them: in front of
a real engine, it answers every save (GET /images/get) with the real engine's own save stream
rewritten (tests/support/archives.py `converting`: Docker 25's layout, Podman's), and passes
every other request through untouched. So the core reads a Docker 25+ save stream off a 20.10
engine, with images the engine really holds."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path


class SavingEngine:
    """Serves `path`; a save is answered with `answer(the real engine's whole save stream)`,
    unframed (HTTP/1.0, closed at its end), as the engine answers a tar download."""

    def __init__(self, path: Path, engine_socket: str, answer: Callable[[bytes], bytes]) -> None:
        self.path, self.engine_socket, self.answer = path, engine_socket, answer
        self.saves = 0
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        self._server.listen(16)
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def __enter__(self) -> SavingEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _upstream(self) -> socket.socket:
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.engine_socket.removeprefix("unix://"))
        return upstream

    def _serve(self, client: socket.socket) -> None:
        head = b""
        with client:
            while b"\r\n\r\n" not in head:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            line = head.split(b"\r\n", 1)[0]
            if line.startswith(b"GET ") and b"/images/get?" in line:
                self.saves += 1
                path = line.split(b" ")[1]
                body = self.answer(self._real_save(path))
                client.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\n")
                client.sendall(body)
                return
            with self._upstream() as upstream:
                upstream.sendall(head)
                _pipe(client, upstream)

    def _real_save(self, path: bytes) -> bytes:
        with self._upstream() as upstream:
            upstream.sendall(b"GET " + path + b" HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while piece := upstream.recv(1 << 20):
                answer += piece
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"200", head
        if b"chunked" in head.lower():
            body = _unchunked(body)
        return body


def _unchunked(data: bytes) -> bytes:
    out = bytearray()
    position = 0
    while True:
        end = data.index(b"\r\n", position)
        size = int(data[position:end].split(b";")[0], 16)
        if not size:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        position = end + 2 + size + 2


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Both directions until either side closes."""

    def one_way(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    other = threading.Thread(target=one_way, args=(b, a), daemon=True)
    other.start()
    one_way(a, b)
    other.join(5)
