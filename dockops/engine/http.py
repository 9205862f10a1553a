"""The few engine requests image cleanup and archive transfers make, over two transports
with one interface.

prune-dangling lists the engine once and then makes two small requests per image (inspect,
then delete). Through docker-py each request costs about 1.3 ms of client-side Python
(requests, urllib3, adapters) on top of the engine's own work, and `import docker` alone costs
more than 0.1 s of a cron run or a save. On a local engine (a unix socket) EngineHTTP speaks
HTTP/1.1 itself (UnixConnection), one kept-alive connection per thread, uploads a tar as a
chunked body of its own, and downloads one with engine_stream; any other engine (tcp, ssh)
gets DockerPyEngine, the same methods over the one docker-py client factory.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import quote, urlencode

from dockops.engine.address import (
    engine_answers,
    engine_errors,
    local_socket,
    request_timeout,
    stall_timeout,
)
from dockops.engine.named import said_once
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput, root_cause

if TYPE_CHECKING:
    import docker

    from dockops.engine.stream import Body


class ImageEngine(Protocol):
    """What cleanup and archive transfers ask of an engine; errors come as EngineRefused /
    EngineUnreachable."""

    api_version: str

    def answers(self) -> bool: ...

    def image(self, reference: str, what: str) -> dict[str, Any]: ...

    def stream(self, path: str, params: Any, what: str) -> AbstractContextManager[Body]: ...

    def post_tar(
        self, path: str, params: dict[str, Any], pieces: Iterable[bytes], what: str
    ) -> list[bytes]: ...

    def images(self, *, shared_size: bool = False) -> list[dict[str, Any]]: ...

    def containers(self) -> list[dict[str, Any]]: ...

    def disk_usage(self) -> dict[str, Any]: ...

    def inspect_image(self, image_id: str) -> dict[str, Any] | None: ...

    def remove_image(self, image_id: str, *, force: bool, noprune: bool) -> None: ...


def open_engine(*, long_running: bool = False) -> ImageEngine:
    """The current engine (as get_client chooses it), lean when it is a local socket.

    Args:
        long_running: the long read timeout, for streams (save).

    Raises:
        EngineUnreachable: nothing answers at the engine address.
        InvalidInput: a timeout variable is not a number of seconds.
    """
    lean = EngineHTTP.connect(long_running=long_running)
    if lean is not None:
        return lean
    from dockops.engine.address import get_client

    return DockerPyEngine(get_client(long_running=long_running))


def engine_of(client: docker.DockerClient) -> ImageEngine:
    """The same engine as `client`, lean when it is a local socket (no request is made)."""
    path = local_socket()
    if path is None:
        return DockerPyEngine(client)
    return EngineHTTP(path, str(client.api.api_version), float(client.api.timeout))


class BadAnswer(ConnectionError):
    """The engine closed the connection without an answer, or answered something not HTTP."""


class HungUp(BadAnswer):
    """Closed before the status line: a kept-alive connection the engine had closed meanwhile
    (the request was not read, so sending it again is safe), or an engine that went away."""


class UnixConnection:
    """One kept-alive HTTP/1.1 connection on a unix socket, for the engine's small JSON
    answers (a Content-Length or chunked body); also the test harness's readiness polls.

    Not http.client: importing it (with email and ssl) takes ~40 ms, a sixth of a cron prune's
    start-up, for what the engine's answers need of HTTP here.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def request(self, method: str, target: str) -> tuple[int, bytes]:
        """Send a request without a body; return the answer's status and body.

        Raises:
            OSError: the socket failed; BadAnswer when the engine hung up or spoke no HTTP.
        """
        sock = self._open()
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n".encode()
        )
        return self._read_answer()

    def upload(
        self, target: str, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> tuple[int, bytes]:
        """POST a chunked body made of `pieces` (each sent as it comes, never joined); return
        the answer. An engine that stops reading and answers early is heard out.

        Raises:
            OSError: the socket failed; BadAnswer when the engine hung up or spoke no HTTP.
            Whatever iterating `pieces` raises (the body is then left unfinished).
        """
        sock = self._open()
        head = (
            f"POST {target} HTTP/1.1\r\nHost: docker\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            sock.sendall(head.encode())
            for piece in pieces:
                if len(piece):
                    _send_parts(sock, [b"%x\r\n" % len(piece), piece, b"\r\n"])
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError) as exc:
            try:  # a refusal written before the engine closed is the better reason
                status, body = self._read_answer()
            except OSError:
                raise exc from None
            if status < 400:
                raise
            return status, body
        return self._read_answer()

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

    def _read_answer(self) -> tuple[int, bytes]:
        assert self._file is not None
        try:
            return self._answer(self._file)
        except (ValueError, IndexError) as exc:
            self.close()
            raise BadAnswer(f"not an HTTP answer ({exc})") from exc

    def _answer(self, file: BinaryIO) -> tuple[int, bytes]:
        status_line = file.readline(_LINE_MAX)
        if not status_line:
            self.close()
            raise HungUp("connection closed without an answer")
        version, status = status_line.split(None, 2)[:2]
        headers = {}
        while (line := file.readline(_LINE_MAX)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get("transfer-encoding") == "chunked":
            body = b"".join(_chunks(file))
        elif "content-length" in headers:
            body = _exactly(file, int(headers["content-length"]))
        elif int(status) in (204, 304):
            body = b""
        else:  # no length: the body ends when the engine closes
            body = file.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close" or version == b"HTTP/1.0":
            self.close()
        return int(status), body


_LINE_MAX = 65536


def _send_parts(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """Send a chunk's header, data and CRLF with sendmsg: no copy of the data to join them.
    A socket with a timeout sends what its buffer takes (~200 KiB), so the rest goes again."""
    views = [memoryview(part) for part in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


def _exactly(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise BadAnswer(f"answer cut short ({len(data)} of {size} bytes)")
    return data


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while True:
        size = int(file.readline(_LINE_MAX).split(b";", 1)[0], 16)
        if size == 0:
            while file.readline(_LINE_MAX) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield _exactly(file, size)
        file.readline(_LINE_MAX)


class EngineHTTP:
    """Requests to the engine at a unix socket, versioned like docker-py's."""

    def __init__(self, path: str, api_version: str, timeout: float = 60.0) -> None:
        self.path, self.api_version, self.timeout = path, api_version, timeout
        self._local = threading.local()

    @property
    def prefix(self) -> str:
        return f"/v{self.api_version}" if self.api_version else ""

    @classmethod
    def connect(cls, *, long_running: bool = False) -> EngineHTTP | None:
        """The lean client for the current engine when that is a unix socket (else None),
        with the API version negotiated as docker-py's version="auto" does: the daemon's own.

        Raises:
            EngineUnreachable: nothing answers at the socket (the message names it).
            InvalidInput: DOCKOPS_TIMEOUT (or, long_running, DOCKOPS_STALL_TIMEOUT) is not a
                number of seconds.
        """
        path = local_socket()
        if path is None:
            return None
        if long_running:
            stall_timeout()  # a bad value is bad input, as get_client says it
        engine = cls(path, "", request_timeout(long_running))
        try:
            version = engine.get_json("/version")
        except EngineUnreachable as exc:
            raise EngineUnreachable(
                f"cannot reach the Docker engine at unix://{path}: {root_cause(exc)}"
            ) from exc
        engine.api_version = str(version.get("ApiVersion") or "")
        return engine

    def _connection(self) -> UnixConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = UnixConnection(self.path, self.timeout)
        return conn

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        """(status, body) of one request; the kept-alive connection is reopened once if the
        engine closed it between requests.

        Raises:
            EngineUnreachable: the socket failed.
        """
        for attempt in (1, 2):
            conn = self._connection()
            try:
                return conn.request(method, self.prefix + path)
            except OSError as exc:
                conn.close()
                self._local.conn = None
                stale = isinstance(exc, (HungUp, BrokenPipeError, ConnectionResetError))
                if attempt == 2 or not stale:
                    raise self._lost(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost(self, exc: OSError, what: str = "") -> EngineUnreachable:
        """A failed socket, in the words engine_errors uses for docker-py's requests."""
        prefix = f"{what}: " if what else ""
        if isinstance(exc, TimeoutError):
            return EngineUnreachable(
                f"{prefix}the Docker engine at unix://{self.path} did not answer in time"
            )
        return EngineUnreachable(
            f"{prefix}lost the Docker engine at unix://{self.path}: {root_cause(exc)}"
        )

    def get_json(self, path: str) -> Any:
        """The decoded JSON answer of a GET; a refusal as EngineRefused with its text."""
        status, body = self.request("GET", path)
        if status >= 400:
            raise EngineRefused(refusal_text(body, status))
        return json.loads(body)

    @contextlib.contextmanager
    def stream(self, path: str, params: Any, what: str) -> Iterator[Body]:
        """A streamed GET's body, straight off the socket (engine_stream); a refusal before
        the first byte raises here, after `what`."""
        from dockops.engine.stream import Body, open_stream

        try:
            stream = open_stream(self.path, self.api_version, path, params, self.timeout)
        except EngineRefused as exc:
            raise EngineRefused(f"{what}: {exc.message}") from exc
        except OSError as exc:
            raise self._lost(exc, what) from exc
        try:
            yield Body(stream.pieces(), (OSError,), stream.ends_at_close)
        finally:
            stream.close()

    def post_tar(
        self, path: str, params: dict[str, Any], pieces: Iterable[bytes | memoryview], what: str
    ) -> list[bytes]:
        """POST a tar, streamed from `pieces`, on a connection of its own; the answer's lines.

        Raises:
            EngineRefused: an error status (the engine's text, after `what`).
            EngineUnreachable: the socket failed.
        """
        conn = UnixConnection(self.path, self.timeout)
        target = f"{self.prefix}{path}?{urlencode(params, doseq=True)}"
        try:
            status, answer = conn.upload(target, pieces, "application/x-tar")
        except OSError as exc:
            raise self._lost(exc, what) from exc
        finally:
            conn.close()
        if status >= 400:
            raise EngineRefused(f"{what}: {refusal_text(answer, status)}")
        return answer.splitlines()

    def answers(self) -> bool:
        """True when the engine answers /_ping within 5 s, on a connection of its own."""
        probe = UnixConnection(self.path, min(self.timeout, 5.0))
        try:
            return probe.request("GET", "/_ping")[0] == 200
        except OSError:
            return False
        finally:
            probe.close()

    def image(self, reference: str, what: str) -> dict[str, Any]:
        """The image's inspect document.

        Raises:
            InvalidInput: no such image (the engine's text, after `what` when given).
        """
        status, body = self.request("GET", f"/images/{quote(reference, safe='/:')}/json")
        prefix = f"{what}: " if what else ""
        if status == 404:
            raise InvalidInput(prefix + said_once(refusal_text(body, status)))
        if status >= 400:
            raise EngineRefused(prefix + refusal_text(body, status))
        document: dict[str, Any] = json.loads(body)
        return document

    def images(self, *, shared_size: bool = False) -> list[dict[str, Any]]:
        query = "all=1&shared-size=1" if shared_size else "all=1"
        return list(self.get_json(f"/images/json?{query}"))

    def containers(self) -> list[dict[str, Any]]:
        return list(self.get_json("/containers/json?all=1"))

    def disk_usage(self) -> dict[str, Any]:
        return dict(self.get_json("/system/df"))

    def inspect_image(self, image_id: str) -> dict[str, Any] | None:
        """The image's inspect document; None when the engine has no such image."""
        try:
            return self.image(image_id, "")
        except InvalidInput:
            return None

    def remove_image(self, image_id: str, *, force: bool, noprune: bool) -> None:
        """DELETE the image; the engine's refusal (409, 404...) as EngineRefused with its text."""
        query = f"force={int(force)}&noprune={int(noprune)}"
        status, body = self.request("DELETE", f"/images/{quote(image_id)}?{query}")
        if status >= 400:
            raise EngineRefused(refusal_text(body, status))


def refusal_text(body: bytes, status: int) -> str:
    """The engine's error message in an answer body, on one line."""
    try:
        text = str(json.loads(body).get("message") or "")
    except ValueError:
        text = body.decode(errors="replace")
    return " ".join(text.split()) or f"HTTP {status}"


class DockerPyEngine:
    """ImageEngine over a docker-py client: engines that are not a local socket."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api_version = str(client.api.api_version)

    def answers(self) -> bool:
        return engine_answers(self.client)

    def image(self, reference: str, what: str) -> dict[str, Any]:
        from dockops.engine.named import inspect_image

        return inspect_image(self.client, reference, what)

    @contextlib.contextmanager
    def stream(self, path: str, params: Any, what: str) -> Iterator[Body]:
        import functools
        from http.client import HTTPException

        from urllib3.exceptions import HTTPError

        from dockops.core.archive.files import CHUNK
        from dockops.engine.stream import Body

        response = get_stream(self.client, path, params, what)
        try:
            # Reading the raw body skips requests' wrapping, so urllib3's ProtocolError
            # ("Connection broken: IncompleteRead") arrives untranslated.
            pieces = iter(functools.partial(response.raw.read, CHUNK), b"")
            yield Body(pieces, (HTTPError, HTTPException, OSError), ends_at_close=False)
        finally:
            response.close()

    def post_tar(
        self, path: str, params: dict[str, Any], pieces: Iterable[bytes], what: str
    ) -> list[bytes]:
        api = self.client.api
        with engine_errors(what):
            response = api._post(
                api._url(path),
                params=params,
                data=pieces,
                headers={"Content-Type": "application/x-tar"},
                stream=True,
            )
            try:
                api._raise_for_status(response)
                return list(response.iter_lines())
            finally:
                response.close()

    def images(self, *, shared_size: bool = False) -> list[dict[str, Any]]:
        api = self.client.api
        params = {"all": 1, "shared-size": 1} if shared_size else {"all": 1}
        with engine_errors():
            return list(api._result(api._get(api._url("/images/json"), params=params), True))

    def containers(self) -> list[dict[str, Any]]:
        with engine_errors():
            return list(self.client.api.containers(all=True))

    def disk_usage(self) -> dict[str, Any]:
        with engine_errors():
            return dict(self.client.api.df())

    def inspect_image(self, image_id: str) -> dict[str, Any] | None:
        import docker

        with engine_errors():
            try:
                return dict(self.client.api.inspect_image(image_id))
            except docker.errors.NotFound:
                return None

    def remove_image(self, image_id: str, *, force: bool, noprune: bool) -> None:
        with engine_errors():
            self.client.api.remove_image(image_id, force=force, noprune=noprune)


def get_stream(client: docker.DockerClient, path: str, params: Any, what: str) -> Any:
    """GET a streamed body through docker-py; a refusal before the first byte (404, 500)
    raises here."""
    api = client.api
    with engine_errors(what):
        response = api._get(api._url(path), params=params, stream=True)
        api._raise_for_status(response)
    return response
