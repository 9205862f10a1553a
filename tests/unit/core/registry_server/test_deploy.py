"""Pure parts of the private registry: container specs (bridge mode is only covered here: the
running tests stay on loopback), where a registry is open to other hosts, push-private naming,
loopback detection, what differs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockops.core.registry.auth import _challenge_params, login_hint
from dockops.core.registry.client import _error_text
from dockops.core.registry.trust import ca_path, install_ca, is_loopback, is_trusted
from dockops.core.registry_server.container_body import create_body
from dockops.core.registry_server.deploy import make_private
from dockops.core.registry_server.registry_container import (
    RegistrySpec,
    differences,
    exposed,
    hostport,
    probe_address,
    registry_settings,
)
from dockops.core.registry_server.secure import (
    CONF_D,
    SecureSpec,
    frontend_settings,
    listen_address,
)
from dockops.engine.api import Engine
from dockops.engine.wire import Answer
from dockops.errors import EngineRefused, InvalidInput


def container_spec(spec: RegistrySpec, *, private: bool = False) -> dict[str, Any]:
    """The create body of the registry container, as the engine is sent it."""
    return create_body(registry_settings(spec, private=private))


def test_bridge_registry_publishes_the_port_on_the_bind_address() -> None:
    spec = container_spec(RegistrySpec(name="reg", port=5001, bind="10.0.0.5"))
    host = spec["HostConfig"]
    assert host["PortBindings"] == {"5000/tcp": [{"HostIp": "10.0.0.5", "HostPort": "5001"}]}
    assert spec["ExposedPorts"] == {"5000/tcp": {}}
    assert host["NetworkMode"] == "default"
    assert host["RestartPolicy"] == {"Name": "always"}
    assert host["Binds"] == ["reg-data:/var/lib/registry:rw"]
    assert spec["Env"] == ["REGISTRY_STORAGE_DELETE_ENABLED=true"]
    labels = spec["Labels"]
    assert labels["dockops.registry"] == "reg" and labels["dockops.role"] == "registry"
    assert labels["dockops.address"] == "10.0.0.5:5001"
    assert json.loads(labels["dockops.spec"])["port"] == 5001


def test_host_registry_listens_on_bind_and_port() -> None:
    spec = container_spec(
        RegistrySpec(name="reg", port=5002, bind="127.0.0.1", network="host", data="/srv/reg")
    )
    assert spec["HostConfig"]["NetworkMode"] == "host"
    assert "PortBindings" not in spec["HostConfig"] and "ExposedPorts" not in spec
    assert _env(spec)["REGISTRY_HTTP_ADDR"] == "127.0.0.1:5002"
    assert spec["HostConfig"]["Binds"] == ["/srv/reg:/var/lib/registry:rw"]


@pytest.mark.parametrize(
    ("bind", "address", "listen"),
    [
        ("0.0.0.0", "127.0.0.1:5000", "0.0.0.0:5000"),
        ("::", "127.0.0.1:5000", "[::]:5000"),
        ("::1", "[::1]:5000", "[::1]:5000"),
        ("192.0.2.7", "192.0.2.7:5000", "192.0.2.7:5000"),
    ],
)
def test_addresses(bind: str, address: str, listen: str) -> None:
    spec = RegistrySpec(bind=bind, network="host")
    assert spec.address == address
    assert _env(container_spec(spec))["REGISTRY_HTTP_ADDR"] == listen


def test_a_private_host_registry_listens_on_loopback_and_keeps_its_up_settings() -> None:
    spec = RegistrySpec(name="reg", port=5002, network="host")  # bind 0.0.0.0
    private = container_spec(spec, private=True)
    assert _env(private)["REGISTRY_HTTP_ADDR"] == "127.0.0.1:5002"
    labels = private["Labels"]
    assert labels["dockops.address"] == "127.0.0.1:5002" and labels["dockops.private"] == "true"
    # What up was asked stays recorded, so a re-run of up finds nothing different.
    assert labels["dockops.spec"] == container_spec(spec)["Labels"]["dockops.spec"]
    assert private["HostConfig"]["Binds"] == container_spec(spec)["HostConfig"]["Binds"]
    loopback = RegistrySpec(name="reg", bind="::1", network="host")
    assert _env(container_spec(loopback, private=True))["REGISTRY_HTTP_ADDR"] == "[::1]:5000"


def test_a_private_bridge_registry_publishes_nothing() -> None:
    private = container_spec(RegistrySpec(name="reg", bind="127.0.0.1"), private=True)
    assert "PortBindings" not in private["HostConfig"] and "ExposedPorts" not in private
    assert private["Labels"]["dockops.address"] == "reg:5000"  # by name on reg-net


def _env(body: dict[str, Any]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in body["Env"])


def _inspected(spec: dict[str, Any], networks: dict[str, Any] | None = None) -> dict[str, Any]:
    """What inspect_container says of a container made from the create body `spec`."""
    host = spec["HostConfig"]
    mode = host["NetworkMode"]
    return {
        "Config": {"Env": spec["Env"], "Labels": spec["Labels"]},
        "HostConfig": {
            "NetworkMode": "bridge" if mode == "default" else mode,
            "PortBindings": host.get("PortBindings") or {},
        },
        "NetworkSettings": {"Networks": networks or {}},
        "Image": "sha256:" + "ab" * 32,
    }


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (RegistrySpec(network="host"), ("0.0.0.0:5000",)),
        (RegistrySpec(network="host", bind="::", port=5001), ("[::]:5001",)),
        (RegistrySpec(network="host", bind="192.0.2.7"), ("192.0.2.7:5000",)),
        (RegistrySpec(network="host", bind="127.0.0.1"), ()),
        (RegistrySpec(network="host", bind="::1"), ()),
        (RegistrySpec(), ("0.0.0.0:5000",)),
        (RegistrySpec(bind=""), ("0.0.0.0:5000",)),
        # Published on loopback is still reachable from the LAN (moby/moby#45610).
        (RegistrySpec(bind="127.0.0.1", port=5003), ("127.0.0.1:5003",)),
    ],
)
def test_exposed(spec: RegistrySpec, where: tuple[str, ...]) -> None:
    assert exposed(_inspected(container_spec(spec))) == where
    assert exposed(_inspected(container_spec(spec, private=True))) == ()


def test_exposed_without_a_listen_address_is_registrys_default() -> None:
    inspected = _inspected(container_spec(RegistrySpec(network="host")))
    inspected["Config"]["Env"] = ["REGISTRY_STORAGE_DELETE_ENABLED=true"]
    assert exposed(inspected) == ("0.0.0.0:5000",)


def test_probe_address_asks_an_unpublished_container_on_its_own_ip() -> None:
    networks = {"bridge": {"IPAddress": ""}, "reg-net": {"IPAddress": "172.18.0.2"}}
    private = _inspected(container_spec(RegistrySpec(name="reg"), private=True), networks)
    assert probe_address(private, "reg:5000") == "172.18.0.2:5000"
    published = _inspected(container_spec(RegistrySpec(name="reg")), networks)
    assert probe_address(published, "127.0.0.1:5000") == "127.0.0.1:5000"
    host = _inspected(container_spec(RegistrySpec(name="reg", network="host")), networks)
    assert probe_address(host, "127.0.0.1:5000") == "127.0.0.1:5000"


class _NoEngine:
    """make_private must decide these cases without asking the engine."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was asked: {name}")


class _NothingThere:
    """A transport whose engine has no container at all; only small calls are expected."""

    address = "unix:///test.sock"
    api_version = "1.41"
    server = None
    podman = None

    def __init__(self) -> None:
        self.asked: list[str] = []

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        self.asked.append(f"{method} {path}")
        return Answer(404, b'{"message": "No such container"}')

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was asked: {name}")


def test_make_private_leaves_a_closed_registry_alone() -> None:
    # The engine is asked one thing: whether a killed run left the old registry aside, which
    # is removed even when there is nothing to close (the integration tests remove one).
    found = _inspected(container_spec(RegistrySpec(name="reg", network="host", bind="127.0.0.1")))
    transport = _NothingThere()
    backend = make_private(Engine(transport), found)
    assert (backend.change, backend.was, backend.now) == ("unchanged", (), "127.0.0.1:5000")
    assert transport.asked == ["GET /containers/reg-replaced/json"]


def test_make_private_refuses_without_recorded_settings() -> None:
    found = _inspected(container_spec(RegistrySpec(name="reg", network="host")))
    del found["Config"]["Labels"]["dockops.spec"]
    with pytest.raises(EngineRefused, match=r"listens on 0\.0\.0\.0:5000 .* registry down"):
        make_private(_NoEngine(), found)  # type: ignore[arg-type]


def test_spec_refuses_bad_settings() -> None:
    with pytest.raises(InvalidInput, match="bridge or host"):
        RegistrySpec(network="overlay")
    with pytest.raises(InvalidInput, match="absolute"):
        RegistrySpec(data="relative/dir")


def test_differences_name_each_setting() -> None:
    old = {"name": "r", "image": "registry:2", "port": 5000, "bind": "0.0.0.0"}
    old |= {"network": "bridge", "data": None}
    assert differences(old, RegistrySpec(name="r")) == []
    assert differences(old, RegistrySpec(name="r", port=5001, network="host")) == [
        "port 5000 (asked 5001)",
        "network 'bridge' (asked 'host')",
    ]


def _secure(host: str = "registry.example", port: int = 8443) -> SecureSpec:
    return SecureSpec("reg", host, port, "nginx:stable", Path("/c"))


def test_bridge_frontend_joins_the_registry_network_and_publishes_443() -> None:
    files = {CONF_D: Path("/c/nginx"), "/etc/nginx/certs/domain.key": Path("/c/domain.key")}
    settings = frontend_settings(_secure(), "bridge", files)
    assert settings.name == "reg-frontend"
    spec = create_body(settings)
    host = spec["HostConfig"]
    assert host["NetworkMode"] == "reg-net"
    assert spec["NetworkingConfig"] == {"EndpointsConfig": {"reg-net": {}}}
    assert host["PortBindings"] == {"443/tcp": [{"HostIp": "", "HostPort": "8443"}]}
    assert spec["ExposedPorts"] == {"443/tcp": {}}
    assert host["RestartPolicy"] == {"Name": "always"}
    assert f"/c/nginx:{CONF_D}:ro" in host["Binds"]
    assert all(bind.endswith(":ro") for bind in host["Binds"])
    assert spec["Labels"]["dockops.address"] == "registry.example:8443"


def test_host_frontend() -> None:
    spec = create_body(frontend_settings(_secure("127.0.0.1"), "host", {}))
    assert spec["HostConfig"]["NetworkMode"] == "host"
    assert "ExposedPorts" not in spec and "NetworkingConfig" not in spec


@pytest.mark.parametrize(
    ("host", "network", "listen"),
    [
        ("127.0.0.1", "host", "127.0.0.1:8443"),
        ("::1", "host", "[::1]:8443"),
        ("registry.example", "host", "8443"),
        ("127.0.0.1", "bridge", "443"),
    ],
)
def test_listen_address(host: str, network: str, listen: str) -> None:
    assert listen_address(_secure(host), network) == listen


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("registry.example:443", False),
        ("[2001:db8::1]:5000", False),
    ],
)
def test_is_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback


def test_install_ca_is_atomic_and_idempotent(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"CA ONE")
    certs_d = tmp_path / "certs.d"
    installed = install_ca(ca, "127.0.0.1:8443", certs_d)
    assert installed == ca_path("127.0.0.1:8443", certs_d)
    assert installed.read_bytes() == b"CA ONE" and installed.stat().st_mode & 0o777 == 0o644
    inode = installed.stat().st_ino
    install_ca(ca, "127.0.0.1:8443", certs_d)
    assert installed.stat().st_ino == inode  # unchanged: not rewritten
    assert is_trusted("127.0.0.1:8443", ca, certs_d)
    ca.write_bytes(b"CA TWO")
    assert not is_trusted("127.0.0.1:8443", ca, certs_d)


def test_default_certs_d_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKOPS_CERTS_D", str(tmp_path))
    assert ca_path("h:1") == tmp_path / "h:1" / "ca.crt"
    monkeypatch.delenv("DOCKOPS_CERTS_D")
    assert ca_path("h:1") == Path("/etc/docker/certs.d/h:1/ca.crt")


def test_challenge_and_error_parsing() -> None:
    params = _challenge_params('realm="https://auth.example/token",service="reg",scope="a:b:pull"')
    assert params == {"realm": "https://auth.example/token", "service": "reg", "scope": "a:b:pull"}
    assert login_hint("h:1") == "authentication required: run dockops login h:1"

    class Answer:
        status_code = 405
        reason = "Method Not Allowed"

        def json(self) -> dict[str, object]:
            return {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}

    assert _error_text(Answer()) == "UNSUPPORTED: The operation is unsupported."  # type: ignore[arg-type]


def test_hostport_brackets_ipv6() -> None:
    assert hostport("::1", 5) == "[::1]:5" and hostport("h", 5) == "h:5"


def test_registry_read_timeout_follows_the_stall_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockops.core.registry import client as api

    monkeypatch.delenv("DOCKOPS_STALL_TIMEOUT", raising=False)
    assert api._timeout() == api.TIMEOUT
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "7.5")
    assert api._timeout() == (api.TIMEOUT[0], 7.5)
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match="DOCKOPS_STALL_TIMEOUT"):
        api._timeout()
