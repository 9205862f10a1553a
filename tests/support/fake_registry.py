"""In-process HTTP servers on 127.0.0.1 for the registry client's own logic (credentials, tokens,
pages, caps): each answers with a function of the request and records every request it gets.

They are not registries; tests of what registry:2 does use the real one (tests/integration).
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Handle = Callable[[Seen], Answer]


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def authorizations(self) -> list[str]:
        with self.lock:
            return [s.headers["authorization"] for s in self.seen if "authorization" in s.headers]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _drain(handler: BaseHTTPRequestHandler) -> None:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            handler.rfile.read(size)
            handler.rfile.readline()
        handler.rfile.readline()
        return
    length = int(handler.headers.get("Content-Length") or 0)
    if length:
        handler.rfile.read(length)


@contextlib.contextmanager
def serve(handle: Handle) -> Iterator[Server]:
    """A server on a free loopback port answering `handle(request)`."""
    server_state = Server(0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            _drain(self)
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            with server_state.lock:
                server_state.seen.append(seen)
            answer = handle(seen)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(OSError):  # a client that stops reading (a cap)
                    self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    server_state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
