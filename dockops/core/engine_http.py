"""A lean keep-alive HTTP/1.1 client on the engine's unix socket, for hot loops.

prune-dangling makes two small requests per image (inspect, then delete). Through docker-py
each costs about 1.3 ms of client-side Python (requests, urllib3, adapters) on top of the
engine's own work; http.client on a kept-alive unix socket costs a fraction of that, and the
per-image re-check stays. One connection per thread; any transport failure is the engine gone.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import quote

from dockops.engine import engine_address, root_cause
from dockops.errors import EngineRefused, EngineUnreachable


class UnixConnection(http.client.HTTPConnection):
    """http.client on a unix socket (also the test harness's readiness polls)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class EngineHTTP:
    """Requests to the engine at a unix socket, versioned like docker-py's."""

    def __init__(self, path: str, api_version: str, timeout: float = 60.0) -> None:
        self.path, self.prefix, self.timeout = path, f"/v{api_version}", timeout
        self._local = threading.local()

    @classmethod
    def for_client(cls, client: Any) -> EngineHTTP | None:
        """The lean client for docker-py `client`'s engine, when that is a unix socket."""
        address = engine_address()
        if not address.startswith("unix://"):
            return None
        return cls(address.removeprefix("unix://"), str(client.api.api_version))

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
                conn.request(method, self.prefix + path)
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2 or not isinstance(
                    exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                ):
                    # The words engine_errors uses for docker-py's requests.
                    if isinstance(exc, TimeoutError):
                        raise EngineUnreachable(
                            f"the Docker engine at unix://{self.path} did not answer in time"
                        ) from exc
                    raise EngineUnreachable(
                        f"lost the Docker engine at unix://{self.path}: {root_cause(exc)}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def inspect_image(self, image_id: str) -> dict[str, Any] | None:
        """The image's inspect document; None when the engine has no such image."""
        status, body = self.request("GET", f"/images/{quote(image_id)}/json")
        if status == 404:
            return None
        if status >= 400:
            raise EngineRefused(_message(body, status))
        document: dict[str, Any] = json.loads(body)
        return document

    def remove_image(self, image_id: str, *, force: bool, noprune: bool) -> None:
        """DELETE the image; the engine's refusal (409, 404...) as EngineRefused with its text."""
        query = f"force={int(force)}&noprune={int(noprune)}"
        status, body = self.request("DELETE", f"/images/{quote(image_id)}?{query}")
        if status >= 400:
            raise EngineRefused(_message(body, status))


def _message(body: bytes, status: int) -> str:
    try:
        text = str(json.loads(body).get("message") or "")
    except ValueError:
        text = body.decode(errors="replace")
    return " ".join(text.split()) or f"HTTP {status}"
