"""DockerPyTransport against a canned engine on a 127.0.0.1 port: the API version negotiated
as the docker CLI does (not docker-py's "auto"), and an engine dockops cannot speak with."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dockops.engine import connect
from dockops.engine.dockerpy import DockerPyTransport
from dockops.engine.negotiate import Unsupported
from dockops.engine.wire import Lost
from dockops.errors import EngineUnreachable


class _Engine(ThreadingHTTPServer):
    version: Any = None
    ping: dict[str, str] | None = None  # /_ping's headers; None: no /_ping here
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Engine

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/_ping" and self.server.ping is not None:
            self.send_response(200)
            for name, value in self.server.ping.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
            return
        if self.path == "/version" and self.server.version is not None:
            status, body = 200, self.server.version
        elif self.path.endswith("/images/json"):
            status, body = 200, []
        else:
            status, body = 404, {"message": "page not found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[_Engine]:
    server = _Engine(("127.0.0.1", 0), _Handler)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _host(server: _Engine) -> str:
    return f"tcp://127.0.0.1:{server.server_address[1]}"


def test_a_newer_engine_is_spoken_to_in_dockops_newest_version(engine: _Engine) -> None:
    engine.version = {"Version": "25.0.3", "ApiVersion": "1.44", "MinAPIVersion": "1.24"}
    transport = DockerPyTransport.connect(_host(engine), {"base_url": _host(engine)}, 5)
    assert transport.api_version == "1.41" and transport.server == engine.version
    assert transport.call("GET", "/images/json").status == 200
    assert engine.paths == ["/_ping", "/version", "/v1.41/images/json"]
    transport.close()


def test_the_version_and_podman_come_from_the_ping_when_it_names_them(engine: _Engine) -> None:
    engine.ping = {"Api-Version": "1.41", "Libpod-Api-Version": "4.3.1"}
    transport = DockerPyTransport.connect(_host(engine), {"base_url": _host(engine)}, 5)
    assert (transport.api_version, transport.podman, transport.server) == ("1.41", True, None)
    engine.ping = {"Api-Version": "1.44"}
    transport = DockerPyTransport.connect(_host(engine), {"base_url": _host(engine)}, 5)
    assert (transport.api_version, transport.podman) == ("1.41", False)
    assert engine.paths == ["/_ping", "/_ping"]
    transport.close()


def test_an_engine_too_old_or_not_an_engine(
    engine: _Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.setenv("DOCKER_HOST", _host(engine))
    engine.version = {"Version": "19.03.15", "ApiVersion": "1.40", "MinAPIVersion": "1.12"}
    with pytest.raises(Unsupported, match=r"speaks Engine API 1.40 at most; dockops needs 1.41"):
        connect()  # through connect(): the refusal passes as it is (exit 3)
    engine.version = None  # an HTTP server, not an engine
    with pytest.raises(Lost):
        DockerPyTransport.connect(_host(engine), {"base_url": _host(engine)}, 5)
    with pytest.raises(EngineUnreachable, match=r"^cannot reach the Docker engine at tcp://"):
        connect()
    assert engine.paths == ["/_ping", "/version"] * 3
