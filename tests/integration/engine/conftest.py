"""Both transports to the disposable engine: the unix one on the engine's socket (or on a
relay's, to break it), docker-py's through a relay on a 127.0.0.1 port."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from dockops.engine.api import Engine
from dockops.engine.dockerpy import DockerPyTransport
from dockops.engine.unix import UnixTransport
from tests.support.engine_relay import Relay

TRANSPORTS = ("unix", "docker-py")
Connect = Callable[[str], tuple[Engine, Relay]]


def open_engine(kind: str, host: str, timeout: float = 60.0) -> Engine:
    if kind == "unix":
        return Engine(UnixTransport.connect(host.removeprefix("unix://"), timeout))
    return Engine(DockerPyTransport.connect(host, {"base_url": host}, timeout))


@pytest.fixture
def through_relay(docker_env: docker.DockerClient, tmp_path: Path) -> Iterator[Connect]:
    """connect(kind): an Engine over that transport through a relay of its own (unix for the
    unix transport, tcp for docker-py's), and the relay."""
    engine_socket = os.environ["DOCKER_HOST"].removeprefix("unix://")
    made: list[tuple[Engine, Relay]] = []

    def connect(kind: str) -> tuple[Engine, Relay]:
        path = tmp_path / f"relay{len(made)}.sock" if kind == "unix" else None
        relay = Relay(engine_socket, path=path)
        made.append((open_engine(kind, relay.host), relay))
        return made[-1]

    yield connect
    for engine, relay in made:
        engine.close()
        relay.close()


@pytest.fixture
def engines(through_relay: Connect) -> Iterator[dict[str, Engine]]:
    """Both: unix on the engine's own socket, docker-py through a tcp relay."""
    unix = open_engine("unix", os.environ["DOCKER_HOST"])
    yield {"unix": unix, "docker-py": through_relay("docker-py")[0]}
    unix.close()
