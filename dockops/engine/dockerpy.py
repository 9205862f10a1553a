"""The transport for engines that are not a local socket: tcp (with TLS) and ssh, through
docker-py's APIClient, which knows how to reach them (TLS client certificates, ssh tunnels).

Only its session is used: the requests are the Engine's own (engine/api.py), so both
transports send the same paths and parameters and the contract tests can hold them alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from dockops.engine.negotiate import NEWEST, Unsupported, from_ping, negotiate
from dockops.engine.wire import Answer, Body, Lost, Params, StreamBroken, json_request
from dockops.errors import root_cause

if TYPE_CHECKING:
    import docker

CHUNK = 1024 * 1024
PING_TIMEOUT = 5.0


def _failure(exc: BaseException, kind: type[Lost] = Lost) -> Lost:
    import requests
    import urllib3

    timed_out = isinstance(
        exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    )
    return kind(root_cause(exc), timed_out=timed_out)


def _failures() -> tuple[type[BaseException], ...]:
    """What requests, urllib3 and http.client raise when a connection fails."""
    from http.client import HTTPException

    import docker
    import requests
    import urllib3

    return (
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        HTTPException,
        OSError,
        docker.errors.DockerException,
    )


class DockerPyTransport:
    """A Transport over a docker-py APIClient."""

    def __init__(self, api: docker.APIClient, address: str) -> None:
        self.api = api
        self.address = address
        self.api_version = str(api.api_version)
        self.server: dict[str, Any] | None = None
        self.podman: bool | None = None

    @classmethod
    def connect(cls, address: str, params: dict[str, Any], timeout: float) -> DockerPyTransport:
        """A client for the engine at `address` (docker-py's base_url and tls in `params`), with
        the API version negotiated as the docker CLI does (engine/negotiate.py; not docker-py's
        "auto", which takes whatever the engine says) from its GET /version, which doubles as
        the reachability check.

        Raises:
            Lost: nothing answers there, or not as an engine.
            Unsupported: the engine speaks no API version dockops can use.
        """
        import docker

        newest = ".".join(map(str, NEWEST))
        try:
            api = docker.APIClient(version=newest, timeout=int(timeout), **params)
            ping = api.get(f"{api.base_url}/_ping")
            headers = {name.lower(): value for name, value in ping.headers.items()}
            server = from_ping(ping.status_code, headers)
            if server is None:
                server = api.version(api_version=False)
        except _failures() as exc:
            raise _failure(exc) from exc
        if not isinstance(server, dict) or not server.get("ApiVersion"):
            api.close()
            raise Lost("no engine version in its answer")
        try:
            version = negotiate(server, address)
        except Unsupported:
            api.close()
            raise
        transport = cls(api, address)
        transport.api_version = version
        if "Podman" in server:
            transport.podman = bool(server["Podman"])
        else:
            transport.server = server
        return transport

    def _url(self, path: str) -> str:
        return f"{self.api.base_url}/v{self.api_version}{path}"

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
        try:
            response = self.api.request(
                method, self._url(path), params=params, data=data, headers=headers
            )
            return Answer(response.status_code, response.content)
        except _failures() as exc:
            raise _failure(exc) from exc

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
        read_timeout = timeout if timeout is not None else self.api.timeout
        try:
            response = self.api.request(
                method,
                self._url(path),
                params=params,
                data=data,
                headers=headers,
                stream=True,
                timeout=(self.api.timeout, read_timeout),
            )
        except _failures() as exc:
            raise _failure(exc) from exc
        try:
            # The raw body skips requests' decoding; urllib3 still undoes the chunking. Each
            # piece is handed on as it comes (read(CHUNK) would wait for a whole CHUNK, holding
            # back a pull's progress lines until the stall timeout).
            reads = response.raw.stream(CHUNK)
            yield Body(response.status_code, _guarded(reads), ends_at_close=False)
        finally:
            # Hanging up is how the daemon learns nobody reads (moby#2116); a dropped
            # generator would leak the socket (docker-py#3282).
            response.close()

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> Answer:
        try:
            response = self.api.request(
                "POST",
                self._url(path),
                params=params,
                data=(bytes(piece) for piece in pieces),
                headers={"Content-Type": content_type},
            )
            return Answer(response.status_code, response.content)
        except _failures() as exc:
            raise _failure(exc) from exc

    def answers(self) -> bool:
        try:
            response = self.api.request("GET", self._url("/_ping"), timeout=PING_TIMEOUT)
        except _failures():
            return False
        with contextlib.closing(response):
            return bool(response.ok)

    def close(self) -> None:
        self.api.close()


def _guarded(reads: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from reads
    except _failures() as exc:
        raise _failure(exc, StreamBroken) from exc
