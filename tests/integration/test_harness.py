"""The harness really runs a separate engine, and containers really run on it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness.engine import Engine
from tests.integration.conftest import DEFAULT_SOCKET, ENGINE_KINDS, off_loopback_containers


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


# --- the Podman service: nothing is asked of the outside, and no network a container could use --

needs_podman = pytest.mark.skipif(
    "podman" not in ENGINE_KINDS, reason="podman is not in DOCKOPS_TEST_ENGINES"
)
# The one nameserver of the services' resolv.conf, and the proxy of their environment.
DNS, PROXY = ("127.0.0.1", 53), ("127.0.0.1", 9)


@contextlib.contextmanager
def _listening() -> Iterator[dict[str, list[str]]]:
    """What reaches the services' nameserver (the names asked) and their proxy (the first line
    of each request), while the block runs; a port another program holds is not watched."""
    heard: dict[str, list[str]] = {}
    watched: list[tuple[str, socket.socket]] = []
    for kind, address, family in (
        ("dns", DNS, socket.SOCK_DGRAM),
        ("proxy", PROXY, socket.SOCK_STREAM),
    ):
        sock = socket.socket(socket.AF_INET, family)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            continue
        if family == socket.SOCK_STREAM:
            sock.listen()
        sock.settimeout(0.1)
        heard[kind] = []
        watched.append((kind, sock))
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for kind, sock in watched:
                with contextlib.suppress(TimeoutError):
                    if kind == "dns":
                        heard[kind].append(_query_name(sock.recv(4096)))
                    else:
                        conn, _ = sock.accept()
                        with conn:
                            conn.settimeout(1)
                            heard[kind].append(
                                conn.recv(256).split(b"\r\n", 1)[0].decode(errors="replace")
                            )

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield heard
        time.sleep(0.5)  # a lookup a moment late is still one
    finally:
        done.set()
        thread.join()
        for _, sock in watched:
            sock.close()


PROBE = {"dns": "dockops-probe.invalid", "proxy": "CONNECT dockops-probe.invalid:443 HTTP/1.1"}


def _probe(heard: dict[str, list[str]]) -> None:
    """Ask each watched port once, as a resolver and a proxy client would, and wait for it."""
    if "dns" in heard:
        labels = b"".join(bytes([len(p)]) + p.encode() for p in PROBE["dns"].split("."))
        query = (
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\x01\x00\x01"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(query, DNS)
    if "proxy" in heard:
        with socket.create_connection(PROXY, timeout=5) as sock:
            sock.sendall(PROBE["proxy"].encode() + b"\r\n\r\n")
    deadline = time.monotonic() + 5
    while any(not heard[kind] for kind in heard) and time.monotonic() < deadline:
        time.sleep(0.05)


def _query_name(packet: bytes) -> str:
    labels, position = [], 12  # after the DNS header
    while position < len(packet) and packet[position]:
        size = packet[position]
        labels.append(packet[position + 1 : position + 1 + size].decode(errors="replace"))
        position += 1 + size
    return ".".join(labels)


@needs_podman
def test_podman_asks_nothing_of_the_outside_for_an_image_it_lacks(podman_engine: Engine) -> None:
    if podman_engine.owned and podman_engine.pidfile is not None:
        pid = podman_engine.pidfile.read_text().strip()
        assert _nameservers(Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()) == [DNS[0]]
    api = docker.APIClient(base_url=podman_engine.host, version="1.41", timeout=30)
    with _listening() as heard:
        _probe(heard)  # the watch hears what it should
        for image in ("nothing-here:1", "docker.io/library/nothing-here:1"):
            started = time.monotonic()
            body = {"Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
            answer = api.post(api._url("/containers/create"), json=body)
            assert time.monotonic() - started < 5
            assert answer.status_code == 404
            assert answer.json()["message"] == (
                "no such image: docker.io/library/nothing-here:1: image not known"
            )
            started = time.monotonic()
            name, tag = image.rsplit(":", 1)
            pulled = api.post(api._url("/images/create"), params={"fromImage": name, "tag": tag})
            assert time.monotonic() - started < 5
            # A 200 whose stream says why, as a daemon's pull does.
            assert pulled.status_code == 200
            assert "registry docker.io is blocked" in pulled.json()["errorDetail"]["message"]
    api.close()
    expected = {kind: [PROBE[kind]] for kind in heard}
    assert heard == expected  # nothing beyond the probe: no lookup, no request through a proxy


@needs_podman
def test_podman_gives_no_container_a_network(podman_engine: Engine) -> None:
    client = docker.DockerClient(base_url=podman_engine.host, version="1.41", timeout=30)
    links = _links()
    # The compat API keeps Docker's default, bridge (containers.conf's netns = "none" is the
    # default of Podman's own API only); with no CNI plugin the bridge cannot start.
    box = client.containers.create("busybox:latest", ["ip", "-o", "link"])
    assert client.api.inspect_container(box.id)["HostConfig"]["NetworkMode"] == "bridge"
    with pytest.raises(docker.errors.APIError, match=r'plugin type="bridge" failed \(add\)'):
        box.start()
    assert _links() == links  # no bridge or veth appeared on this machine
    box.remove(force=True)
    created = client.api.post(
        client.api._url("/v4.0.0/libpod/containers/create", versioned_api=False),
        json={"image": "docker.io/library/busybox:latest", "command": ["true"]},
    )
    own = created.json()["Id"]
    assert client.api.inspect_container(own)["HostConfig"]["NetworkMode"] == "none"
    client.api.remove_container(own, force=True)
    client.close()


def _links() -> set[str]:
    shown = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip() for line in shown.stdout.splitlines()}


@needs_podman
def test_a_podman_service_starts_with_an_empty_store(tmp_path: Path) -> None:
    """What one run leaves in the store (a crashed test's images) is gone at the next start."""
    from tests.harness.podman import start_podman, stop_podman

    if os.geteuid() != 0:
        pytest.skip("starting a Podman service needs root")
    root = tmp_path / "podman"
    first = start_podman(root)
    try:
        api = docker.APIClient(base_url=first.host, version="1.41", timeout=30)
        api.import_image_from_data(b"\0" * 1024, repository="left/behind:1")
        assert [i["RepoTags"] for i in api.images()] == [["docker.io/left/behind:1"]]
        api.close()
    finally:
        stop_podman(first)
    second = start_podman(root)
    try:
        api = docker.APIClient(base_url=second.host, version="1.41", timeout=30)
        assert api.images() == []
        api.close()
    finally:
        stop_podman(second)
