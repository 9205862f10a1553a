"""The harness really runs a separate engine, and containers really run on it."""

from __future__ import annotations

import os
from pathlib import Path

import docker

from tests.harness.engine import Engine
from tests.integration.conftest import DEFAULT_SOCKET, off_loopback_containers


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
    # --bridge=none: even a container that asks for the bridge gets loopback only.
    assert sorted(n.name for n in docker_env.networks.list()) == ["host", "none"]
    box = docker_env.containers.run(
        "busybox:latest", ["ip", "-o", "link"], network_mode="bridge", detach=True
    )
    assert box.wait(timeout=60)["StatusCode"] == 0
    links = [line.split(":")[1].strip() for line in box.logs().decode().splitlines()]
    assert links == ["lo"]
    # ...and the per-test guard still names it, so tests keep to none or host explicitly.
    assert off_loopback_containers(docker_env, set()) == [f"/{box.name}: bridge"]
    box.remove()


def test_engine_resolves_names_only_on_loopback(
    engine: Engine, docker_env: docker.DockerClient
) -> None:
    # The daemon (and host-network containers) must never ask the machine's resolver.
    if engine.owned and engine.pidfile is not None:
        pid = engine.pidfile.read_text().strip()
        daemon_resolv = Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()
        assert _nameservers(daemon_resolv) == ["127.0.0.1"]
    inside = docker_env.containers.run(
        "busybox:latest", ["cat", "/etc/resolv.conf"], network_mode="host", remove=True
    )
    assert _nameservers(inside.decode()) == ["127.0.0.1"]


def _nameservers(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")]
