"""The transport for an engine on this machine's unix socket.

Streams and uploads go through the standard library's http.client, on a connection
that opens an AF_UNIX socket (as docker-py's own unixconn does on urllib3). Each gets a
connection of its own. A tar download (save, export) asks for HTTP/1.0, so the engine sends
the body unframed and closes at its end, and is read one socket read at a time into one
reused buffer of BUFFER bytes (`_filled`): each piece handed on is a view into it, valid until
the next one. Such a
body cannot tell a finished stream from a cut one (`ends_at_close`); the tar's own end
marker does. Any other stream (pull and push progress) stays HTTP/1.1 and is handed on as it
arrives, since its reader waits for each line.

Small requests (`call`, and the ping of `answers`) are the one hand-written part:
`_Connection`, one kept-alive HTTP/1.1 connection per thread. The issue's rule: http.client
everywhere unless it costs more than 5% on a path. Measured with bench/transport.py on the
disposable 20.10 engine (2 cores shared with other work, so wall times swing by +-20% a run):

- 600 small requests (300 image inspects + 300 deletes answered 404, prune-dangling's
  pattern), median of 9 interleaved runs: hand-written 235 ms wall, 41 ms CPU; http.client
  485 ms wall (x2.07; paired x2.18), 170 ms CPU. http.client parses every answer's headers
  with the email package and makes a new file object per answer. Importing http.client also
  costs a short command 60-85 ms of start-up, which `call` and `answers` never pay.
- the save stream of a 302 MiB image to /dev/null: the hand-written reader it replaced
  (HTTP/1.0, recv_into) against http.client asking HTTP/1.0, readinto. 20 runs alternated:
  2819 vs 2941 ms wall (paired x1.04), 47 vs 54 ms CPU; 12 runs in turned order: 3293 vs
  2886 ms (paired x0.97), 50 vs 65 ms CPU. Within the rule, so http.client. Asked HTTP/1.1,
  the engine's ~32 KiB chunks cost http.client 143-188 ms of CPU (paired x1.11-1.18 wall):
  HTTP/1.0 still pays with readinto.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlencode

from dockops.engine.negotiate import Unsupported, from_ping, negotiate
from dockops.engine.wire import Answer, Body, Lost, Params, StreamBroken, json_request
from dockops.errors import root_cause

if TYPE_CHECKING:
    import http.client

BUFFER = 1024 * 1024
PING_TIMEOUT = 5.0
_LINE_MAX = 65536


class BadAnswer(ConnectionError):
    """The engine closed the connection mid-answer, or answered something not HTTP."""


class HungUp(BadAnswer):
    """Closed before the status line: a kept-alive connection the engine closed meanwhile
    (the request was not read, so sending it again is safe), or an engine that went away."""


def _failure(exc: BaseException, kind: type[Lost] = Lost) -> Lost:
    # Our own BadAnswer says what was wrong; its cause (a ValueError of parsing) would not.
    reason = " ".join(str(exc).split()) if isinstance(exc, BadAnswer) else root_cause(exc)
    return kind(reason, timed_out=isinstance(exc, TimeoutError))


def _failures() -> tuple[type[BaseException], ...]:
    """What a socket or http.client raises when a connection fails (TimeoutError is one)."""
    import http.client

    return (OSError, http.client.HTTPException)


def _tar_download(method: str, path: str) -> bool:
    return method == "GET" and (path == "/images/get" or path.endswith("/export"))


class UnixTransport:
    """A Transport to the engine at a unix socket."""

    def __init__(self, path: str, api_version: str, timeout: float) -> None:
        self.path = path
        self.address = f"unix://{path}"
        self.api_version = api_version
        self.server: dict[str, Any] | None = None
        self.podman: bool | None = None
        self.timeout = timeout
        self._local = threading.local()

    @classmethod
    def connect(cls, path: str, timeout: float) -> UnixTransport:
        """A transport to the engine at `path`, with the API version negotiated as the docker
        CLI does (engine/negotiate.py) from its GET /version (unversioned, which doubles as the
        reachability check).

        Raises:
            Lost: nothing answers there, or not as an engine.
            Unsupported: the engine speaks no API version dockops can use.
        """
        transport = cls(path, "", timeout)
        ping = transport.call("GET", "/_ping")
        server = from_ping(ping.status, ping.headers)
        if server is not None:
            transport.podman = bool(server["Podman"])
        else:
            answer = transport.call("GET", "/version")
            try:
                server = json.loads(answer.body) if answer.status == 200 else None
                version = server["ApiVersion"] if server else None
            except (ValueError, KeyError, TypeError):
                server = version = None
            if not version or not isinstance(server, dict):
                transport.close()
                raise Lost(f"no engine version in its answer (HTTP {answer.status})")
            transport.server = server
        try:
            transport.api_version = negotiate(server, transport.address)
        except Unsupported:
            transport.close()
            raise
        return transport

    def _target(self, path: str, params: Params | None) -> str:
        prefix = f"/v{self.api_version}" if self.api_version else ""
        if not params:
            return prefix + path
        # As requests sends them: a list repeats its key, None leaves the key out.
        kept = {key: value for key, value in (params or {}).items() if value is not None}
        query = urlencode(kept, doseq=True)
        return f"{prefix}{path}?{query}" if query else prefix + path

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data, headers = json_request(json_body, headers)
        target = self._target(path, params)
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _Connection(self.path, self.timeout)
        for attempt in (1, 2):
            reused = conn.is_open
            try:
                status, body, fields = conn.request(method, target, data, headers)
                return Answer(status, body, fields)
            except OSError as exc:
                conn.close()
                if attempt == 2 or not reused or not isinstance(exc, HungUp):
                    raise _failure(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[Body]:
        data, headers = json_request(json_body, headers)
        tar = _tar_download(method, path)
        conn = _http_connection(self.path, self.timeout if timeout is None else timeout, http10=tar)
        try:
            try:
                conn.request(method, self._target(path, params), body=data, headers=headers)
                response = conn.getresponse()
            except _failures() as exc:
                raise _failure(exc) from exc
            unframed = response.version == 10 and response.length is None
            pieces = _filled(response) if tar else _as_they_come(response)
            yield Body(response.status, pieces, ends_at_close=unframed)
        finally:
            # Hanging up is how the engine learns nobody reads any more (moby#2116).
            conn.close()

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> Answer:
        conn = _http_connection(self.path, self.timeout)
        try:
            try:
                conn.putrequest("POST", self._target(path, params))
                conn.putheader("Content-Type", content_type)
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
            except _failures() as exc:
                raise _failure(exc) from exc
            assert conn.sock is not None
            failed = _send_chunked(conn.sock, pieces)  # what `pieces` raises passes as it is
            try:
                if failed is None:
                    return _answer(conn.getresponse())
                if isinstance(failed, (BrokenPipeError, ConnectionResetError)):
                    # An engine that refuses the body stops reading it, answers and closes:
                    # its answer, when it wrote one before the close, is the better reason.
                    with contextlib.suppress(*_failures()):
                        refusal = _answer(conn.getresponse())
                        if refusal.status >= 400:
                            return refusal
            except _failures() as exc:
                raise _failure(exc) from exc
            raise _failure(failed) from failed
        finally:
            conn.close()

    def answers(self) -> bool:
        probe = _Connection(self.path, PING_TIMEOUT)
        try:
            return probe.request("GET", "/_ping", None, {})[0] == 200
        except OSError:
            return False
        finally:
            probe.close()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# -- http.client: streams and uploads ----------------------------------------------------------


def _http_connection(
    socket_path: str, timeout: float, *, http10: bool = False
) -> http.client.HTTPConnection:
    """An http.client connection to the unix socket at `socket_path` (opened on first use)."""
    conn: http.client.HTTPConnection = _http_connection_class()(socket_path, timeout, http10)
    return conn


@functools.cache
def _http_connection_class() -> Any:
    """Made on first use: importing http.client costs a short command ~60 ms it never needs."""
    import http.client

    class UnixHTTPConnection(http.client.HTTPConnection):
        def __init__(self, socket_path: str, timeout: float, http10: bool) -> None:
            super().__init__("localhost", timeout=timeout)
            self.socket_path = socket_path
            if http10:  # how http.client itself tells the version it asks for
                self._http_vsn, self._http_vsn_str = 10, "HTTP/1.0"

        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    return UnixHTTPConnection


def _answer(response: http.client.HTTPResponse) -> Answer:
    return Answer(response.status, response.read())


def _filled(response: http.client.HTTPResponse) -> Iterator[memoryview]:
    """The body in views of one reused buffer.

    An unframed body (HTTP/1.0, no length) is the rest of the socket: each piece is one read
    of it, handed on as it comes (`readinto1`). `response.readinto` would wait until the whole
    buffer is full, so the engine's writes and ours to disk stop taking turns: measured on a
    631 MB save to a file, 4 runs alternated, 4.39 s against 4.72 s (median), every round
    faster.
    """
    buffer = memoryview(bytearray(BUFFER))
    unframed = response.length is None and not response.chunked
    read = response.fp.readinto1 if unframed and response.fp is not None else response.readinto
    try:
        while size := read(buffer):
            yield buffer[:size]
    except _failures() as exc:
        raise _failure(exc, StreamBroken) from exc


def _as_they_come(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body as the engine sends it: one chunk (or one read) at a time."""
    try:
        while piece := response.read1(BUFFER):
            yield piece
    except _failures() as exc:
        raise _failure(exc, StreamBroken) from exc


def _send_chunked(sock: socket.socket, pieces: Iterable[bytes | memoryview]) -> OSError | None:
    """Send `pieces` as a chunked body, each chunk's size line, data and CRLF in one sendmsg:
    no copy of the data to join them (http.client's encode_chunked copies every piece).
    Returns the socket's failure; a failure of `pieces` (the source) is raised as it is."""
    for piece in pieces:
        if len(piece):
            try:
                _send_parts(sock, [b"%x\r\n" % len(piece), piece, b"\r\n"])
            except OSError as exc:
                return exc
    try:
        sock.sendall(b"0\r\n\r\n")
    except OSError as exc:
        return exc
    return None


def _send_parts(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    # A socket with a timeout sends what its buffer takes (~200 KiB), so the rest goes again.
    views = [memoryview(part).cast("B") for part in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


# -- hand-written: small requests on a kept-alive connection -----------------------------------


class _Connection:
    """One kept-alive HTTP/1.1 connection on a unix socket, for the engine's small answers (a
    Content-Length or chunked body). Hand-written: see the module docstring for the figures."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send a request; return the answer's status, body and headers (lower-case names).

        Raises:
            OSError: the socket failed; HungUp when the engine closed the connection before
                the answer began, BadAnswer when it then closed it or spoke no HTTP.
        """
        sock = self._open()
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n{fields}"
        body = body or b""
        try:
            sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise HungUp(f"connection closed before the request was read ({exc.strerror})") from exc
        assert self._file is not None
        try:
            return self._answer(self._file)
        except (ValueError, IndexError) as exc:
            self.close()
            raise BadAnswer(f"not an HTTP answer ({exc})") from exc

    def _open(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock, self._file = sock, sock.makefile("rb")
        return self._sock

    def _answer(self, file: BinaryIO) -> tuple[int, bytes, dict[str, str]]:
        try:
            status_line = file.readline(_LINE_MAX)
        except ConnectionResetError as exc:
            raise HungUp(f"connection closed without an answer ({exc.strerror})") from exc
        if not status_line:
            raise HungUp("connection closed without an answer")
        version, status = status_line.split(None, 2)[:2]
        headers = {}
        while (line := file.readline(_LINE_MAX)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b"".join(_chunks(file))
        elif "content-length" in headers:
            body = _exactly(file, int(headers["content-length"]))
        elif int(status) in (204, 304):
            body = b""
        else:  # no length: the body ends when the engine closes
            body = file.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close" or version == b"HTTP/1.0":
            self.close()
        return int(status), body, headers


def _exactly(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise BadAnswer(f"connection closed mid-answer ({len(data)} of {size} bytes)")
    return data


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while True:
        line = file.readline(_LINE_MAX)
        if not line:
            raise BadAnswer("connection closed mid-answer")
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            while file.readline(_LINE_MAX) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield _exactly(file, size)
        file.readline(_LINE_MAX)
