"""The registry container: its labels, the settings `registry up` makes it from, and where it
can be reached once made (read back from its inspect document). Pure: unit-tested.

Every container, volume and network dockops makes for a registry carries the
`dockops.registry=<name>` label, so a re-run finds its own things and a same-named container
someone else made is never touched. The settings a registry was made with are kept in a label
too (SPEC), so a second `up` can tell a no-op from a change.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dockops.core.registry_server.container_body import ContainerSettings
from dockops.errors import InvalidInput

LABEL = "dockops.registry"
ROLE = "dockops.role"
SPEC = "dockops.spec"
ADDRESS = "dockops.address"
PRIVATE = "dockops.private"  # set when secure made the plain port reachable from this host only
REGISTRY_PORT = 5000  # inside the container in bridge mode
DATA = "/var/lib/registry"


@dataclass(frozen=True)
class RegistrySpec:
    name: str = "myregistry"
    image: str = "registry:2"
    port: int = 5000
    bind: str = "0.0.0.0"
    network: str = "bridge"  # or "host"
    data: str | None = None  # a host folder; None: the named volume <name>-data

    def __post_init__(self) -> None:
        if self.network not in ("bridge", "host"):
            raise InvalidInput(f"--network {self.network}: choose bridge or host")
        if self.data is not None and not Path(self.data).is_absolute():
            raise InvalidInput(f"--data {self.data}: give an absolute path")

    @property
    def volume(self) -> str:
        return f"{self.name}-data"

    @property
    def address(self) -> str:
        """Where this host reaches the registry: a wildcard bind is reached on loopback, which
        the daemon also treats as an insecure (plain HTTP) registry by default."""
        return hostport("127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind, self.port)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def registry_settings(spec: RegistrySpec, *, private: bool = False) -> ContainerSettings:
    """The registry container for `spec`.

    With `private` (a secured registry) it listens on loopback on the host network, and
    publishes nothing in bridge mode: nginx reaches it by name over the frontend's network.
    """
    env = {"REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    address = spec.address
    network_mode: str | None = None
    ports: dict[int, tuple[str, int]] = {}
    if spec.network == "host":
        bind = spec.bind
        if private and not is_loopback_host(bind):
            bind = "127.0.0.1"
            address = hostport(bind, spec.port)
        env["REGISTRY_HTTP_ADDR"] = hostport(bind, spec.port)
        network_mode = "host"
    elif private:
        address = hostport(spec.name, REGISTRY_PORT)
    else:
        ports = {REGISTRY_PORT: (spec.bind, spec.port)}
    labels = {
        LABEL: spec.name,
        ROLE: "registry",
        SPEC: json.dumps(asdict(spec), sort_keys=True),
        ADDRESS: address,
    }
    if private:
        labels[PRIVATE] = "true"
    return ContainerSettings(
        image=spec.image,
        name=spec.name,
        env=env,
        labels=labels,
        binds={spec.data or spec.volume: (DATA, "rw")},
        ports=ports,
        network_mode=network_mode,
        restart="always",
    )


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this host only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed(found: dict[str, Any]) -> tuple[str, ...]:
    """Where the registry container `found` can be reached from other hosts, as HOST:PORT.

    On the host network: its listen address unless that is loopback (registry:2's own default
    is every address). In bridge mode: every published port, loopback ones too, since with
    Docker's iptables rules a host on the same LAN reaches ports published on 127.0.0.1
    (moby/moby#45610).
    """
    host_config = found.get("HostConfig") or {}
    if host_config.get("NetworkMode") == "host":
        env = dict(item.partition("=")[::2] for item in found["Config"].get("Env") or [])
        listen = env.get("REGISTRY_HTTP_ADDR", f":{REGISTRY_PORT}")
        host, _, port = listen.rpartition(":")
        if is_loopback_host(host):
            return ()
        return (hostport(host.strip("[]") or "0.0.0.0", int(port)),)
    return tuple(
        hostport(binding.get("HostIp") or "0.0.0.0", int(binding["HostPort"]))
        for bindings in (host_config.get("PortBindings") or {}).values()
        for binding in bindings or ()
        if binding.get("HostPort")
    )


def probe_address(inspected: dict[str, Any], address: str) -> str:
    """Where this host asks a container: `address`, except for a bridge-mode container that
    publishes nothing (a secured registry), which is asked on its own IP."""
    host_config = inspected.get("HostConfig") or {}
    if host_config.get("NetworkMode") == "host" or host_config.get("PortBindings"):
        return address
    networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    ips = [net["IPAddress"] for net in networks.values() if net.get("IPAddress")]
    return hostport(ips[0], REGISTRY_PORT) if ips else address


def open_backend_warning(name: str, where: tuple[str, ...]) -> str:
    return (
        f"registry {name} is secured, but its plain HTTP (no login, deletes enabled) is "
        f"reachable from the network at {', '.join(where)}: run dockops registry secure "
        f"--name {name} again to close it"
    )


def differences(old: dict[str, Any], new: RegistrySpec) -> list[str]:
    """What differs between a recorded spec and the asked one, as 'key: OLD (asked NEW)'."""
    asked = asdict(new)
    return [
        f"{key} {old.get(key)!r} (asked {asked[key]!r})"
        for key in asked
        if old.get(key) != asked[key]
    ]
