"""The create bodies dockops sends for its registry, frontend and collector containers are the
ones docker-py's create_host_config/create_container sent for the same settings (docker-py is
the reference here: the product no longer uses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockops.core.registry_server.container_body import ContainerSettings, create_body
from dockops.core.registry_server.gc import collector_settings
from dockops.core.registry_server.registry_container import RegistrySpec, registry_settings
from dockops.core.registry_server.secure import SecureSpec, frontend_settings

# What docker-py always adds for a detached container, each the engine's own default or only
# read by attach: not part of what dockops asks for.
_ATTACH_DEFAULTS = {
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "NetworkDisabled",
}


def _docker_py(
    image: str,
    host_config: dict[str, Any],
    networks: tuple[str, ...] = (),
    command: list[str] | None = None,
    **config: Any,
) -> dict[str, Any]:
    import docker
    from docker.types import ContainerConfig

    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    networking = (
        api.create_networking_config({n: api.create_endpoint_config() for n in networks})
        if networks
        else None
    )
    body = ContainerConfig(
        "1.41",
        image,
        command,
        host_config=api.create_host_config(**host_config),
        networking_config=networking,
        **config,
    )
    return {k: v for k, v in body.items() if v is not None and k not in _ATTACH_DEFAULTS}


def test_bridge_registry() -> None:
    spec = RegistrySpec(name="reg", port=5001, bind="10.0.0.5")
    settings = registry_settings(spec)
    assert create_body(settings) == _docker_py(
        "registry:2",
        {
            "restart_policy": {"Name": "always"},
            "binds": {"reg-data": {"bind": "/var/lib/registry", "mode": "rw"}},
            "port_bindings": {5000: ("10.0.0.5", 5001)},
        },
        environment={"REGISTRY_STORAGE_DELETE_ENABLED": "true"},
        ports=[5000],
        labels=settings.labels,
    )


@pytest.mark.parametrize("private", [False, True])
def test_host_registry(private: bool) -> None:
    spec = RegistrySpec(name="reg", port=5002, network="host", data="/srv/reg")
    settings = registry_settings(spec, private=private)
    listen = "127.0.0.1:5002" if private else "0.0.0.0:5002"
    assert create_body(settings) == _docker_py(
        "registry:2",
        {
            "restart_policy": {"Name": "always"},
            "binds": {"/srv/reg": {"bind": "/var/lib/registry", "mode": "rw"}},
            "network_mode": "host",
        },
        environment={"REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_HTTP_ADDR": listen},
        labels=settings.labels,
    )


def test_private_bridge_registry_publishes_nothing() -> None:
    settings = registry_settings(RegistrySpec(name="reg"), private=True)
    assert create_body(settings) == _docker_py(
        "registry:2",
        {
            "restart_policy": {"Name": "always"},
            "binds": {"reg-data": {"bind": "/var/lib/registry", "mode": "rw"}},
        },
        environment={"REGISTRY_STORAGE_DELETE_ENABLED": "true"},
        labels=settings.labels,
    )


FILES = {"/etc/nginx/conf.d": Path("/c/nginx"), "/etc/nginx/certs/domain.key": Path("/c/k")}
BINDS = {
    "/c/nginx": {"bind": "/etc/nginx/conf.d", "mode": "ro"},
    "/c/k": {"bind": "/etc/nginx/certs/domain.key", "mode": "ro"},
}


def test_bridge_frontend() -> None:
    spec = SecureSpec("reg", "registry.example", 8443, "nginx:stable", Path("/c"))
    settings = frontend_settings(spec, "bridge", FILES)
    assert create_body(settings) == _docker_py(
        "nginx:stable",
        {
            "restart_policy": {"Name": "always"},
            "binds": BINDS,
            "network_mode": "reg-net",
            "port_bindings": {443: 8443},
        },
        networks=("reg-net",),
        ports=[443],
        labels=settings.labels,
    )


def test_host_frontend() -> None:
    spec = SecureSpec("reg", "127.0.0.1", 8443, "nginx:stable", Path("/c"))
    settings = frontend_settings(spec, "host", FILES)
    assert create_body(settings) == _docker_py(
        "nginx:stable",
        {"restart_policy": {"Name": "always"}, "binds": BINDS, "network_mode": "host"},
        labels=settings.labels,
    )


def test_collector() -> None:
    env = ["REGISTRY_STORAGE_DELETE_ENABLED=true", "PATH=/usr/bin:/bin"]
    found = {
        "Id": "c0ffee",
        "Config": {
            "Image": "registry:2",
            "Env": env,
            "Labels": {"dockops.registry": "reg", "dockops.role": "registry"},
        },
    }
    command = ["garbage-collect", "--dry-run", "/etc/docker/registry/config.yml"]
    assert create_body(collector_settings(found, ["--dry-run"])) == _docker_py(
        "registry:2",
        {"volumes_from": ["c0ffee"], "network_mode": "none"},
        command=command,
        entrypoint=["/bin/registry"],
        environment=env,
        labels={"dockops.registry": "reg", "dockops.role": "gc"},
    )


def test_nothing_asked_is_nothing_sent() -> None:
    assert create_body(ContainerSettings(image="busybox")) == {
        "Image": "busybox",
        "HostConfig": {"NetworkMode": "default"},
    }
