"""engine_stream's chunked decoding against a server on a real unix socket that sends its
answer in awkward pieces: chunk-size lines and CRLFs split across reads, a body cut short."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest

from dockops.engine.http import BadAnswer
from dockops.engine.stream import open_stream
from dockops.errors import EngineRefused


def _serve(path: Path, answer: bytes, pieces: list[int]) -> list[bytes]:
    """Answer one request with `answer`, sent in pieces of the given sizes (the rest at once);
    returns the list the request line is put in."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    seen: list[bytes] = []

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            seen.append(conn.recv(65536).split(b"\r\n", 1)[0])
            at = 0
            for size in [*pieces, len(answer)]:
                conn.sendall(answer[at : at + size])
                at += size
                time.sleep(0.002)  # so the reader sees each piece on its own
                if at >= len(answer):
                    break
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return seen


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, at = b"", 0
    for size in sizes:
        piece = body[at : at + size]
        if not piece:
            break
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        at += size
    if at < len(body):
        out += f"{len(body) - at:X};ext=1\r\n".encode() + body[at:] + b"\r\n"
    return out + b"0\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("seed", range(6))
def test_chunked_body_split_anywhere_comes_out_whole(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    body = rng.randbytes(300_000)
    answer = HEAD + _chunked(body, [rng.randint(1, 40_000) for _ in range(12)])
    # Pieces of 1..9 bytes around the head and the first chunk lines, then larger ones.
    pieces = [rng.randint(1, 9) for _ in range(40)] + [rng.randint(1, 70_000) for _ in range(8)]
    seen = _serve(tmp_path / "s.sock", answer, pieces)
    stream = open_stream(
        str(tmp_path / "s.sock"), "1.41", "/images/get", {"names": ["a:1", "b"]}, 10
    )
    got = b"".join(bytes(piece) for piece in stream.pieces())
    stream.close()
    assert got == body
    assert not stream.ends_at_close
    # HTTP/1.0 asks for an unframed body; an engine that answers chunked anyway is decoded.
    assert seen == [b"GET /v1.41/images/get?names=a%3A1&names=b HTTP/1.0"]


def test_a_body_cut_before_its_last_chunk_is_an_error(tmp_path: Path) -> None:
    answer = HEAD + _chunked(b"x" * 5000, [1000])[:-5]  # no terminating 0-chunk
    _serve(tmp_path / "s.sock", answer, [])
    stream = open_stream(str(tmp_path / "s.sock"), "1.41", "/x", None, 10)
    with pytest.raises(BadAnswer, match="connection closed"):
        for _ in stream.pieces():
            pass


def test_an_error_status_is_the_engines_refusal(tmp_path: Path) -> None:
    body = b'{"message":"reference does not exist"}'
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    _serve(tmp_path / "s.sock", answer, [20])
    with pytest.raises(EngineRefused, match=r"^reference does not exist$"):
        open_stream(str(tmp_path / "s.sock"), "1.41", "/images/get", None, 10)


def test_a_body_without_chunking_ends_when_the_engine_closes(tmp_path: Path) -> None:
    answer = b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 70_000
    _serve(tmp_path / "s.sock", answer, [10, 10])
    stream = open_stream(str(tmp_path / "s.sock"), "1.41", "/x", None, 10)
    assert stream.ends_at_close  # so only the tar's own end marker tells it was whole
    assert b"".join(bytes(p) for p in stream.pieces()) == b"y" * 70_000
