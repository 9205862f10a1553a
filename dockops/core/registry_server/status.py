"""registry status: what runs, where clients reach it, whether TLS is on and trusted, whether
it answers, and whether a secured registry's plain HTTP is still open to the network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockops.core.registry import trust
from dockops.core.registry_server.deploy import owned
from dockops.core.registry_server.registry_container import ADDRESS, exposed, open_backend_warning
from dockops.engine.api import Engine
from dockops.errors import DockopsError, InvalidInput, LoginRequired


@dataclass(frozen=True)
class Part:
    container: str
    state: str  # "running", "exited", … as the engine says; "absent"
    image: str | None
    restart: str | None
    address: str | None
    certs_dir: str | None = None
    exposed: tuple[str, ...] = ()  # HOST:PORT other hosts reach it on (registry_container)


@dataclass(frozen=True)
class StatusResult:
    name: str
    address: str  # what clients use: the frontend's HOST:PORT when secured
    registry: Part
    frontend: Part
    tls: bool
    trusted: bool | None  # certs.d holds our CA for the address; None without TLS
    answer: str  # "200", "401 (login needed)", or why it did not answer
    warnings: tuple[str, ...] = ()


def _part(engine: Engine, name: str, container: str, role: str) -> Part:
    found = engine.find_container(container)
    if found is None:
        return Part(container=container, state="absent", image=None, restart=None, address=None)
    owned(found, name, role)
    labels: dict[str, Any] = found["Config"].get("Labels") or {}
    return Part(
        container=container,
        state=str(found["State"]["Status"]),
        image=str(found["Config"]["Image"]),
        restart=str((found["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"),
        address=labels.get(ADDRESS),
        certs_dir=labels.get("dockops.certs_dir"),
        exposed=exposed(found) if role == "registry" else (),
    )


def registry_status(engine: Engine, name: str, *, certs_d: Path | None = None) -> StatusResult:
    """The registry `name` and its frontend as they are now.

    Raises:
        InvalidInput: no registry of that name.
    """
    registry = _part(engine, name, name, "registry")
    frontend = _part(engine, name, f"{name}-frontend", "frontend")
    if registry.state == "absent" and frontend.state == "absent":
        raise InvalidInput(f"no registry named {name}: run dockops registry up --name {name}")
    tls = frontend.state != "absent"
    address = str((frontend.address if tls else registry.address) or "")
    trusted = None
    if tls and frontend.certs_dir:
        # Trusted means certs.d holds this registry's own CA, not just some file.
        trusted = trust.is_trusted(address, Path(frontend.certs_dir) / "ca.crt", certs_d)
    elif tls:
        trusted = trust.trusted_ca(address, certs_d) is not None
    warnings: tuple[str, ...] = ()
    if tls and registry.exposed:
        warnings = (open_backend_warning(name, registry.exposed),)
    return StatusResult(
        name=name,
        address=address,
        registry=registry,
        frontend=frontend,
        tls=tls,
        trusted=trusted,
        answer=_answer(address),
        warnings=warnings,
    )


def _answer(address: str) -> str:
    """/v2/'s status, asked with the stored login when there is one (as push would)."""
    from dockops.core.registry.client import registry_client
    from dockops.retry import RetryPolicy

    try:
        with registry_client(address, policy=RetryPolicy(attempts=1)) as api:
            return str(api.ping().status)
    except LoginRequired:
        return "401 (login needed)"
    except DockopsError as exc:
        return exc.message
