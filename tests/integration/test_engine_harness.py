"""The harness really runs a separate engine, and containers really run on it."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from tests.harness.engine import Engine
from tests.integration.conftest import DEFAULT_SOCKET


def test_fixture_engine_is_not_the_users_engine(engine: Engine) -> None:
    if os.environ.get("DOCKOPS_TEST_DOCKER_HOST"):
        assert engine.host == os.environ["DOCKOPS_TEST_DOCKER_HOST"] and not engine.owned
        return
    assert engine.host != DEFAULT_SOCKET
    assert engine.owned and engine.root is not None
    socket_path = Path(engine.host.removeprefix("unix://"))
    assert socket_path.is_socket()
    client = docker.DockerClient(base_url=engine.host, version="auto")
    root_dir = Path(client.info()["DockerRootDir"])
    assert root_dir.is_relative_to(engine.root)
    client.close()


def test_base_images_are_there(docker_env: docker.DockerClient) -> None:
    for ref in ("busybox:latest", "registry:2", "nginx:stable"):
        assert docker_env.images.get(ref).id.startswith("sha256:")


def test_busybox_echo_in_a_container(docker_env: docker.DockerClient) -> None:
    output = docker_env.containers.run(
        "busybox:latest",
        ["echo", "hello from the disposable engine"],
        network_mode="none",
        remove=True,
    )
    assert output == b"hello from the disposable engine\n"


def test_engine_offers_no_bridge_network(docker_env: docker.DockerClient) -> None:
    # The engine runs with --bridge=none, so asking for the default bridge must fail: no test
    # container can end up on a network that reaches past loopback.
    with pytest.raises(docker.errors.APIError):
        docker_env.containers.create("busybox:latest", ["true"], network_mode="bridge")
