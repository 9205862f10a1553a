"""UnixTransport against a canned-answer server on a real unix socket: how bodies end,
keep-alive and its one reconnect, the version negotiation, streams (an unframed tar in one
reused buffer, progress as it comes, a cut, a stall), chunked uploads and an early refusal."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockops.engine.unix import UnixTransport
from dockops.engine.wire import Lost, StreamBroken
from tests.conftest import Cli


class Canned:
    """Answers each request read on a connection with the next canned answer; an answer of
    None closes the connection without a word. Records the request heads it read."""

    def __init__(self, path: Path, answers: list[bytes | None]) -> None:
        self.answers, self.connections = list(answers), 0
        self.heads: list[str] = []
        self.requests: list[str] = []
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
                    self.heads.append(head.decode())
                    self.requests.append(head.split(b"\r\n", 1)[0].decode())
                    length = [h for h in head.split(b"\r\n") if h.startswith(b"Content-Length")]
                    if length:
                        reader.read(int(length[0].split(b":")[1]))
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


def _ping(api_version: str, *, podman: bool = False) -> bytes:
    """A /_ping answer as Docker 20.10+ gives it; with podman, as Podman 4.3's compat service."""
    extra = "Libpod-Api-Version: 4.3.1\r\n" if podman else ""
    return (
        f"HTTP/1.1 200 OK\r\nApi-Version: {api_version}\r\n{extra}Content-Length: 2\r\n\r\nOK"
    ).encode()


def test_bodies_by_length_chunked_and_close_on_one_kept_alive_connection(sock: Path) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\n[1, \r\n2;x=y\r\n2]\r\n0\r\n\r\n"
    )
    closing = b"HTTP/1.0 200 OK\r\n\r\nthe rest"
    server = Canned(
        sock, [_json(b'{"a": 1}'), chunked, b"HTTP/1.1 204 No Content\r\n\r\n", closing]
    )
    transport = UnixTransport(str(sock), "1.41", 5)
    assert transport.call("GET", "/a").body == b'{"a": 1}'
    assert transport.call("GET", "/b", params={"x": ["1", "2"], "skip": None}).body == b"[1, 2]"
    assert transport.call("DELETE", "/c").status == 204
    assert transport.call("POST", "/d", json_body={"k": 1}, headers={"X-A": "b"}).body == (
        b"the rest"
    )
    assert server.requests == [
        "GET /v1.41/a HTTP/1.1",
        "GET /v1.41/b?x=1&x=2 HTTP/1.1",
        "DELETE /v1.41/c HTTP/1.1",
        "POST /v1.41/d HTTP/1.1",
    ]
    assert "Content-Type: application/json" in server.heads[3] and "X-A: b" in server.heads[3]
    assert server.connections == 1
    transport.close()
    server.close()


def test_the_version_is_negotiated_as_the_docker_cli_does(sock: Path) -> None:
    server = Canned(sock, [_ping("1.44"), _json(b"[]")])
    transport = UnixTransport.connect(str(sock), 5)
    assert transport.api_version == "1.41" and transport.address == f"unix://{sock}"
    assert (transport.server, transport.podman) == (None, False)
    transport.call("GET", "/images/json")
    # /version is not asked: Podman runs runc, conmon and dpkg to answer it, 0.3-1 s.
    assert server.requests == ["GET /_ping HTTP/1.1", "GET /v1.41/images/json HTTP/1.1"]
    transport.close()
    server.close()


def test_podman_is_known_from_its_ping(sock: Path) -> None:
    server = Canned(sock, [_ping("1.41", podman=True)])
    transport = UnixTransport.connect(str(sock), 5)
    assert (transport.api_version, transport.podman) == ("1.41", True)
    assert server.requests == ["GET /_ping HTTP/1.1"]
    transport.close()
    server.close()


def test_a_ping_without_a_version_falls_back_to_version(sock: Path) -> None:
    docker_25 = b'{"Version": "25.0.3", "ApiVersion": "1.44", "MinAPIVersion": "1.24"}'
    server = Canned(sock, [_json(b"OK"), _json(docker_25), _json(b"[]")])
    transport = UnixTransport.connect(str(sock), 5)
    assert transport.api_version == "1.41" and transport.podman is None
    assert transport.server is not None and transport.server["ApiVersion"] == "1.44"
    transport.call("GET", "/images/json")
    assert server.requests == [
        "GET /_ping HTTP/1.1",
        "GET /version HTTP/1.1",
        "GET /v1.41/images/json HTTP/1.1",
    ]
    transport.close()
    server.close()


def test_an_engine_too_old_is_refused_in_one_line_exit_3_before_any_request(
    sock: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    old = b'{"Version": "19.03.15", "ApiVersion": "1.40", "MinAPIVersion": "1.12"}'
    server = Canned(sock, [_ping("1.40"), _json(b"OK"), _json(old)])
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    result = cli("images")
    assert (result.code, result.out) == (3, "")
    assert result.err == (
        f"dockops: error: the engine at unix://{sock} speaks Engine API 1.40 at "
        "most; dockops needs 1.41 or newer (Docker 20.10, Podman 4)\n"
    )
    result = cli("images")  # an engine whose ping names no version: /version says it
    assert result.err == (
        f"dockops: error: the engine at unix://{sock} (19.03.15) speaks Engine API 1.40 at "
        "most; dockops needs 1.41 or newer (Docker 20.10, Podman 4)\n"
    )
    assert server.requests == [
        "GET /_ping HTTP/1.1",
        "GET /_ping HTTP/1.1",
        "GET /version HTTP/1.1",
    ]
    server.close()


def test_something_not_an_engine_is_lost(sock: Path) -> None:
    with pytest.raises(Lost, match="no such file or directory"):
        UnixTransport.connect(str(sock), 5)
    html = _json(b"<html>", "404 Not Found")
    server = Canned(sock, [html, html, b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(Lost, match=r"no engine version in its answer \(HTTP 404\)"):
        UnixTransport.connect(str(sock), 5)
    with pytest.raises(Lost, match="not an HTTP answer"):
        UnixTransport.connect(str(sock), 5)
    server.close()


def test_a_stale_kept_alive_connection_is_reopened_once(sock: Path) -> None:
    server = Canned(sock, [_json(b"{}"), None, _json(b'{"Id": "x"}')])
    transport = UnixTransport(str(sock), "1.41", 5)
    assert transport.call("GET", "/a").status == 200
    # The engine closed the first connection: the request goes again on a new one.
    assert transport.call("GET", "/images/x/json").body == b'{"Id": "x"}'
    assert server.requests[-2:] == ["GET /v1.41/images/x/json HTTP/1.1"] * 2
    assert server.connections == 2
    transport.close()
    server.close()


def test_a_fresh_connection_the_engine_hangs_up_is_lost_not_retried(sock: Path) -> None:
    server = Canned(sock, [None, _json(b"{}")])
    with pytest.raises(Lost, match=r"^connection closed without an answer$"):
        UnixTransport(str(sock), "1.41", 5).call("GET", "/a")
    assert server.connections == 1
    server.close()


def _one_connection(path: Path, serve: Callable[[socket.socket], None]) -> socket.socket:
    """A server on `path` that hands its first connection to `serve`, then closes it."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def run() -> None:
        try:
            conn, _ = server.accept()
        except OSError:  # the test closed the server before anyone came
            return
        with conn:
            serve(conn)

    threading.Thread(target=run, daemon=True).start()
    return server


def _head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    return data


def _sleep(_: object, seconds: float) -> None:
    time.sleep(seconds)


def test_a_call_the_engine_leaves_silent_times_out(sock: Path) -> None:
    server = _one_connection(sock, lambda conn: _sleep(_head(conn), 1))
    with pytest.raises(Lost) as caught:
        UnixTransport(str(sock), "1.41", 0.2).call("GET", "/a")
    assert caught.value.timed_out
    server.close()


def test_a_tar_download_asks_http_1_0_and_reads_into_one_reused_buffer(sock: Path) -> None:
    heads: list[bytes] = []
    data = bytes(range(256)) * 12_000  # ~3 MiB, sent in small writes

    def serve(conn: socket.socket) -> None:
        heads.append(_head(conn))
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\n")
        for start in range(0, len(data), 50_000):
            conn.sendall(data[start : start + 50_000])

    server = _one_connection(sock, serve)
    transport = UnixTransport(str(sock), "1.41", 5)
    with transport.stream("GET", "/images/get", params={"names": ["a:1", "b:2"]}) as body:
        assert body.status == 200 and body.ends_at_close
        pieces = list(body.pieces)
    assert heads[0].split(b"\r\n")[0] == b"GET /v1.41/images/get?names=a%3A1&names=b%3A2 HTTP/1.0"
    assert all(isinstance(piece, memoryview) for piece in pieces)
    assert all(piece.obj is pieces[0].obj for piece in pieces)  # type: ignore[union-attr]
    # Each piece is one read of the socket, handed on as it comes: waiting to fill the whole
    # buffer would keep the engine and the disk taking turns.
    assert len(pieces[0]) < 1024 * 1024
    assert sum(len(piece) for piece in pieces) == len(data)
    server.close()


def test_progress_is_handed_on_as_it_comes(sock: Path) -> None:
    more = threading.Event()

    def serve(conn: socket.socket) -> None:
        _head(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b'12\r\n{"status": "one"}\n\r\n'
        )
        more.wait(5)  # the second line only once the first was read
        conn.sendall(b'12\r\n{"status": "two"}\n\r\n0\r\n\r\n')

    server = _one_connection(sock, serve)
    transport = UnixTransport(str(sock), "1.41", 5)
    with transport.stream("POST", "/images/create", params={"fromImage": "a"}) as body:
        assert not body.ends_at_close
        assert bytes(next(body.pieces)) == b'{"status": "one"}\n'
        more.set()
        assert body.read_all() == b'{"status": "two"}\n'
    server.close()


def test_a_chunked_stream_cut_short_is_broken(sock: Path) -> None:
    def serve(conn: socket.socket) -> None:
        _head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")

    server = _one_connection(sock, serve)
    transport = UnixTransport(str(sock), "1.41", 5)
    with transport.stream("GET", "/events") as body, pytest.raises(StreamBroken) as caught:
        body.read_all()
    assert caught.value.reason == "connection closed"
    assert not caught.value.timed_out
    server.close()


def test_a_stalled_stream_times_out_after_its_own_timeout(sock: Path) -> None:
    def serve(conn: socket.socket) -> None:
        _head(conn)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\nabc")
        time.sleep(2)

    server = _one_connection(sock, serve)
    transport = UnixTransport(str(sock), "1.41", 60)
    started = time.monotonic()
    stalled = transport.stream("GET", "/containers/c/export", timeout=0.3)
    with stalled as body, pytest.raises(StreamBroken) as caught:
        body.read_all()
    assert caught.value.timed_out and time.monotonic() - started < 1.5
    server.close()


def test_a_stream_nobody_serves_is_lost(sock: Path) -> None:
    transport = UnixTransport(str(sock), "1.41", 5)
    with pytest.raises(Lost, match="no such file or directory"), transport.stream("GET", "/x"):
        pass


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
    transport = UnixTransport(str(sock), "1.41", 10)
    views = (memoryview(piece) for piece in pieces)
    answer = transport.upload("/images/load", {"quiet": 1}, views, "application/x-tar")
    assert (answer.status, answer.body) == (200, b'{"stream": "Loaded image: a:1"}')
    head, _, sent = received[0].partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v1.41/images/load?quiet=1 HTTP/1.1"
    assert b"Transfer-Encoding: chunked" in head and b"Content-Type: application/x-tar" in head
    assert _dechunk(sent) == b"".join(pieces)
    server.close()


def test_an_engine_that_refuses_mid_upload_is_heard_out(sock: Path) -> None:
    def serve(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(_json(b'{"message": "no space left on device"}', "500 Internal Server Error"))
        # The connection closes without the rest of the body being read.

    server = _one_connection(sock, serve)
    pieces = (b"x" * (1 << 20) for _ in range(64))  # far more than the socket buffers
    answer = UnixTransport(str(sock), "1.41", 10).upload("/images/load", {}, pieces, "x")
    assert (answer.status, answer.body) == (500, b'{"message": "no space left on device"}')
    server.close()


def test_an_upload_cut_without_a_word_is_lost(sock: Path) -> None:
    server = _one_connection(sock, lambda conn: _sleep(conn.recv(65536), 0))
    pieces = (b"x" * (1 << 20) for _ in range(64))
    with pytest.raises(Lost) as caught:
        UnixTransport(str(sock), "1.41", 10).upload("/images/load", {}, pieces, "x")
    assert caught.value.reason in ("broken pipe", "connection reset by peer")
    server.close()


def test_a_source_that_fails_mid_upload_raises_its_own_error_not_lost(sock: Path) -> None:
    server = _one_connection(sock, lambda conn: _sleep(conn.recv(65536), 1))

    def pieces() -> Iterator[bytes]:
        yield b"x" * 1000
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error") as caught:
        UnixTransport(str(sock), "1.41", 10).upload("/images/load", {}, pieces(), "x")
    assert not isinstance(caught.value, Lost)
    server.close()


def test_answers_is_a_ping_on_its_own_connection(sock: Path) -> None:
    assert UnixTransport(str(sock), "1.41", 5).answers() is False  # nobody serves the socket
    server = Canned(sock, [_json(b"OK"), _json(b"OK")])
    assert UnixTransport(str(sock), "1.41", 5).answers() is True
    assert server.requests == ["GET /_ping HTTP/1.1"]
    server.close()


def test_connect_picks_this_transport_for_a_local_socket_only(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockops.engine import connect
    from dockops.errors import EngineUnreachable

    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    with pytest.raises(EngineUnreachable) as missing:
        connect()
    assert missing.value.message == (
        f"cannot reach the Docker engine at unix://{sock}: no such file or directory"
    )
    server = Canned(sock, [_ping("1.41")])
    engine = connect(long_running=True)
    assert isinstance(engine.transport, UnixTransport) and engine.api_version == "1.41"
    assert engine.transport.timeout == 3600.0
    engine.close()
    server.close()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free.getsockname()[1]}")
    with pytest.raises(EngineUnreachable, match=r"^cannot reach .* connection refused$"):
        connect()  # docker-py's transport, which found nobody there
    free.close()


def test_a_short_command_on_a_local_socket_imports_neither_http_client_nor_docker_py(
    sock: Path,
) -> None:
    import os
    import subprocess
    import sys

    server = Canned(sock, [_ping("1.41"), _json(b"[]")])
    probe = (
        "import sys\n"
        "from dockops.engine import connect\n"
        "connect().images()\n"
        "heavy = {'docker', 'requests', 'urllib3', 'http'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"
    server.close()
