"""Loopback stand-ins for the tests: a v1 search index, a fault-injecting TCP proxy in front of a
registry, a registry:2 container on a free port, and free-port helpers.

Everything binds 127.0.0.1 on a port the kernel picked; nothing talks to any other address.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import docker

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- v1 search index ------------------------------------------------------------------------


@dataclass
class SearchIndex:
    """A Docker Hub v1 search endpoint on a loopback port; `queries` records what was asked."""

    port: int
    results: list[dict[str, Any]]
    queries: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@contextlib.contextmanager
def search_index(results: list[dict[str, Any]]) -> Iterator[SearchIndex]:
    """Serve `results` as `GET /v1/search` answers (filtered by substring of `q`, capped at `n`).
    It answers the /v2/ ping too: podman searches only an index that does."""
    index = SearchIndex(port=0, results=results)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in ("/v1/_ping", "/v2/"):
                self._send({})
                return
            if url.path != "/v1/search":
                self.send_error(404)
                return
            query = parse_qs(url.query)
            index.queries.append(query)
            term = query.get("q", [""])[0]
            limit = int(query.get("n", ["25"])[0])
            found = [r for r in index.results if term in r["name"]][:limit]
            self._send({"num_results": len(found), "query": term, "page": 1, "results": found})

        def _send(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with _serving(Handler) as port:
        index.port = port
        yield index


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- fault-injecting proxy ------------------------------------------------------------------


@dataclass
class FaultProxy:
    """A TCP proxy in front of a registry that answers the first `faults` matching requests
    itself (with `status`, or with a TCP reset when `reset`), then forwards everything;
    `requests` records each first request line of a connection, `faulted` those faulted.

    With `stall`, a faulted request gets no answer at all: the connection is held open, silent,
    until the client closes it (recorded in `released`) or the proxy stops — a registry that
    accepted the request and hung."""

    port: int
    upstream: int
    faults: int
    status: str = "503 Service Unavailable"
    body: bytes = b""
    match: Callable[[str], bool] = lambda line: True
    reset: bool = False
    requests: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stall: bool = False
    released: list[str] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _take_fault(self, line: str) -> bool:
        with self._lock:
            self.requests.append(line)
            if self.match(line) and len(self.faulted) < self.faults:
                self.faulted.append(line)
                return True
            return False

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                # The daemon tries TLS first (a handshake record starts with 0x16); closing at
                # once makes it fall back to plain http now rather than after its 10 s timeout.
                if not chunk or (not head and chunk[:1] == b"\x16"):
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            faulted = self._take_fault(line)
            if faulted and self.stall:
                self._hold(client, line)
                return
            if faulted and self.reset:
                # SO_LINGER 0: close() sends RST, the "connection reset by peer" of a flaky LB.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if faulted:
                client.sendall(
                    f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode()
                    + self.body
                )
                return
            with socket.create_connection((LOOPBACK, self.upstream)) as server:
                server.sendall(head)
                pump = threading.Thread(target=_pipe, args=(server, client), daemon=True)
                pump.start()
                _pipe(client, server)
                pump.join()

    def _hold(self, client: socket.socket, line: str) -> None:
        """Say nothing; note when the client gives up and closes its end."""
        self.stalled.set()
        client.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # a reset is a close too
                data = b""
            if not data:
                with self._lock:
                    self.released.append(line)
                return

    def drop_stalled(self) -> None:
        """Close every held connection, as a registry that restarts does: whoever waited on
        one (the daemon) gets an EOF at last."""
        self._stopping.set()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def fault_proxy(
    upstream: int,
    faults: int,
    *,
    status: str = "503 Service Unavailable",
    body: bytes = b"",
    match: Callable[[str], bool] = lambda line: True,
    reset: bool = False,
    stall: bool = False,
) -> Iterator[FaultProxy]:
    """Run a FaultProxy on a free loopback port in front of 127.0.0.1:upstream."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    listener.settimeout(0.1)
    proxy = FaultProxy(
        port=int(listener.getsockname()[1]),
        upstream=upstream,
        faults=faults,
        status=status,
        body=body,
        match=match,
        reset=reset,
        stall=stall,
    )
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=proxy._serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        proxy._stopping.set()
        thread.join()
        listener.close()


# --- registry:2 container -------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    port: int
    container_id: str

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@contextlib.contextmanager
def registry(client: docker.DockerClient, env: dict[str, str] | None = None) -> Iterator[Registry]:
    """A registry:2 container on the host network, listening on 127.0.0.1:<free port>."""
    port = free_port()
    container = client.containers.run(
        "registry:2",
        network_mode="host",
        environment={"REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{port}", **(env or {})},
        detach=True,
    )
    try:
        wait_for_port(port)
        yield Registry(port=port, container_id=str(container.id))
    finally:
        container.remove(force=True, v=True)
