"""UnixConnection and EngineHTTP against a canned-answer server on a real unix socket: how
bodies end (Content-Length, chunked, close), keep-alive, and an engine that hangs up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from dockops.engine.http import BadAnswer, EngineHTTP, HungUp, UnixConnection
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput


class Canned:
    """Answers each request read on a connection with the next canned answer; an answer of
    None closes the connection without a word. Records the request lines it read."""

    def __init__(self, path: Path, answers: list[bytes | None]) -> None:
        self.answers, self.requests, self.connections = list(answers), [], 0
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    self.requests.append(head.split(b"\r\n", 1)[0].decode())
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "engine.sock"


def _json(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_bodies_by_length_chunked_and_close_on_one_kept_alive_connection(sock: Path) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\n[1, \r\n2;x=y\r\n2]\r\n0\r\n\r\n"
    )
    closing = b"HTTP/1.0 200 OK\r\n\r\nthe rest"
    server = Canned(
        sock, [_json(b'{"a": 1}'), chunked, b"HTTP/1.1 204 No Content\r\n\r\n", closing]
    )
    conn = UnixConnection(str(sock), 5)
    assert conn.request("GET", "/a") == (200, b'{"a": 1}')
    assert conn.request("GET", "/b") == (200, b"[1, 2]")
    assert conn.request("DELETE", "/c") == (204, b"")
    assert conn.request("GET", "/d") == (200, b"the rest")
    assert server.requests == [
        "GET /a HTTP/1.1",
        "GET /b HTTP/1.1",
        "DELETE /c HTTP/1.1",
        "GET /d HTTP/1.1",
    ]
    assert server.connections == 1
    server.close()


def test_a_hang_up_before_the_status_line_is_hungup_and_garbage_is_badanswer(sock: Path) -> None:
    server = Canned(sock, [None, b"SSH-2.0-OpenSSH\r\n\r\n", _json(b"short", "200 OK")[:-2]])
    conn = UnixConnection(str(sock), 5)
    with pytest.raises(HungUp):
        conn.request("GET", "/x")
    with pytest.raises(BadAnswer, match="not an HTTP answer"):
        conn.request("GET", "/y")
    server.close()


def test_enginehttp_reconnects_once_when_the_kept_alive_connection_went_stale(
    sock: Path,
) -> None:
    version = _json(b'{"ApiVersion": "1.41"}')
    server = Canned(sock, [version, None, _json(b"{}")])
    engine = EngineHTTP(str(sock), "")
    assert engine.get_json("/version") == {"ApiVersion": "1.41"}
    engine.api_version = "1.41"
    # The engine closed the first connection: the request goes again on a new one.
    assert engine.inspect_image("sha256:abc") == {}
    assert server.requests[-1] == "GET /v1.41/images/sha256:abc/json HTTP/1.1"
    assert server.connections == 2
    server.close()


def test_enginehttp_refusals_and_missing_images(sock: Path) -> None:
    refused = _json(b'{"message": "conflict:\\n  image is being used"}', "409 Conflict")
    server = Canned(sock, [_json(b'{"message": "No such image"}', "404 Not Found"), refused])
    engine = EngineHTTP(str(sock), "1.41")
    assert engine.inspect_image("gone") is None
    with pytest.raises(EngineRefused, match=r"^conflict: image is being used$"):
        engine.remove_image("busy", force=False, noprune=True)
    server.close()


def test_enginehttp_on_a_socket_nobody_serves_is_unreachable(sock: Path) -> None:
    with pytest.raises(EngineUnreachable, match="no such file or directory"):
        EngineHTTP(str(sock), "1.41").get_json("/version")


def test_a_named_image_the_engine_lacks_is_bad_input_in_the_engines_words(sock: Path) -> None:
    doubled = b'{"message": "no such image: x:v1: No such image: x:v1"}'
    server = Canned(
        sock,
        [
            _json(b'{"Id": "sha256:aa"}'),
            _json(doubled, "404 Not Found"),
            _json(b'{"message": "boom"}', "500 Internal Server Error"),
        ],
    )
    engine = EngineHTTP(str(sock), "1.41")
    assert engine.image("library/x:v1", "save library/x:v1") == {"Id": "sha256:aa"}
    # As docker-py quotes it: the slash and colon stay.
    assert server.requests[0] == "GET /v1.41/images/library/x:v1/json HTTP/1.1"
    with pytest.raises(InvalidInput, match=r"^save x:v1: No such image: x:v1$"):
        engine.image("x:v1", "save x:v1")
    with pytest.raises(EngineRefused, match=r"^save y: boom$"):
        engine.image("y", "save y")
    server.close()


def test_answers_is_a_ping_on_its_own_connection(sock: Path) -> None:
    assert EngineHTTP(str(sock), "1.41").answers() is False  # nobody serves the socket
    server = Canned(sock, [_json(b"OK"), _json(b"OK")])
    engine = EngineHTTP(str(sock), "1.41")
    assert engine.answers() is True
    assert server.requests == ["GET /_ping HTTP/1.1"]
    server.close()


def _one_connection(path: Path, serve: Callable[[socket.socket], None]) -> socket.socket:
    """A server on `path` that hands its first connection to `serve`, then closes it."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            serve(conn)

    threading.Thread(target=run, daemon=True).start()
    return server


def _dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return out
        out, rest = out + rest[:size], rest[size:]
        assert rest[:2] == b"\r\n"
        rest = rest[2:]


def test_an_upload_is_sent_chunked_whole_even_when_the_socket_takes_a_little_at_a_time(
    sock: Path,
) -> None:
    # A slow reader keeps the socket buffer full, so every sendmsg is a partial send.
    received: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            data += conn.recv(4096)
        received.append(data)
        conn.sendall(_json(b'{"stream": "Loaded image: a:1"}'))

    server = _one_connection(sock, serve)
    pieces = [bytes([n]) * size for n, size in enumerate([3, 1 << 20, 0, 700_001])]
    conn = UnixConnection(str(sock), 10)
    status, body = conn.upload("/v1.41/images/load?quiet=1", iter(pieces), "application/x-tar")
    conn.close()
    assert (status, body) == (200, b'{"stream": "Loaded image: a:1"}')
    head, _, sent = received[0].partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v1.41/images/load?quiet=1 HTTP/1.1"
    assert b"Transfer-Encoding: chunked" in head
    assert _dechunk(sent) == b"".join(pieces)
    server.close()


def test_an_engine_that_refuses_mid_upload_is_heard_out(sock: Path) -> None:
    def serve(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(_json(b'{"message": "no space left on device"}', "500 Internal Server Error"))
        # The connection closes without the rest of the body being read.

    server = _one_connection(sock, serve)
    pieces = (b"x" * (1 << 20) for _ in range(64))  # far more than the socket buffers
    engine = EngineHTTP(str(sock), "1.41", 10)
    with pytest.raises(EngineRefused, match=r"^load a.tar: no space left on device$"):
        engine.post_tar("/images/load", {"quiet": "1"}, pieces, "load a.tar")
    server.close()


def test_a_stream_the_engine_never_answers_says_so_after_its_what(sock: Path) -> None:
    # The words every EngineHTTP request uses (one mapping): a timeout is "did not answer in
    # time", any other socket failure "lost the Docker engine".
    lost = r"^save x: lost the Docker engine at unix://"
    with pytest.raises(EngineUnreachable, match=lost), _opened(EngineHTTP(str(sock), "1.41")):
        pass
    server = _one_connection(sock, lambda conn: conn.recv(65536) and time.sleep(1))
    late = r"^save x: the Docker engine at .* in time$"
    with pytest.raises(EngineUnreachable, match=late), _opened(EngineHTTP(str(sock), "1.41", 0.2)):
        pass
    server.close()


def _opened(engine: EngineHTTP) -> AbstractContextManager[object]:
    return engine.stream("/images/get", None, "save x")
