"""The Engine API body of POST /containers/create for the containers dockops runs itself (the
registry, its nginx frontend, the one-off garbage collector), from a few plain settings.

Written out here rather than left to docker-py's create_host_config/create_container: the
Engine takes the same JSON from any transport, and a pure function is checked without one
(its tests hold it against what docker-py sent for the same settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ContainerSettings:
    image: str
    name: str | None = None  # a query parameter of the request, not part of the body
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # host path or volume name -> (path inside, "rw" or "ro")
    binds: dict[str, tuple[str, str]] = field(default_factory=dict)
    # port inside (tcp) -> (host address, "" for every one; host port)
    ports: dict[int, tuple[str, int]] = field(default_factory=dict)
    network_mode: str | None = None  # None: the engine's default bridge
    restart: str | None = None  # "always", "no"; None leaves the engine's default
    networks: tuple[str, ...] = ()  # user-defined networks joined at creation
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    volumes_from: tuple[str, ...] = ()


def create_body(settings: ContainerSettings) -> dict[str, Any]:
    """The JSON body of POST /containers/create for `settings` (pure: unit-tested)."""
    host: dict[str, Any] = {"NetworkMode": settings.network_mode or "default"}
    if settings.restart is not None:
        host["RestartPolicy"] = {"Name": settings.restart}
    if settings.binds:
        host["Binds"] = [
            f"{source}:{inside}:{mode}" for source, (inside, mode) in settings.binds.items()
        ]
    if settings.ports:
        host["PortBindings"] = {
            f"{inside}/tcp": [{"HostIp": address, "HostPort": str(port)}]
            for inside, (address, port) in settings.ports.items()
        }
    if settings.volumes_from:
        host["VolumesFrom"] = list(settings.volumes_from)
    body: dict[str, Any] = {"Image": settings.image, "HostConfig": host}
    if settings.env:
        body["Env"] = [f"{key}={value}" for key, value in settings.env.items()]
    if settings.labels:
        body["Labels"] = dict(settings.labels)
    if settings.ports:
        body["ExposedPorts"] = {f"{inside}/tcp": {} for inside in settings.ports}
    if settings.entrypoint is not None:
        body["Entrypoint"] = list(settings.entrypoint)
    if settings.command is not None:
        body["Cmd"] = list(settings.command)
    if settings.networks:
        body["NetworkingConfig"] = {"EndpointsConfig": {net: {} for net in settings.networks}}
    return body
