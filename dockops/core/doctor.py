"""Health checks of the engine dockops drives and of the default private registry."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockops.core.images.listing import tags_of
from dockops.engine.address import engine_address
from dockops.errors import DockopsError, ExitCode, LoginRequired
from dockops.units import human_size

if TYPE_CHECKING:
    from dockops.engine.api import Engine

# The oldest Engine API dockops is tested against (Debian 12's docker.io 20.10).
MIN_API_VERSION = (1, 41)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    exit_code: int = 0
    warning: bool = False  # passes, but needs a look: never changes the exit code


@dataclass(frozen=True)
class DoctorReport:
    engine: str
    engine_version: str | None
    api_version: str | None
    storage_driver: str | None
    images: int | None
    images_bytes: int | None
    dangling: int | None
    data_root_free_bytes: int | None
    checks: tuple[Check, ...]
    registry: str | None = None  # the private registry checked too, if any

    @property
    def exit_code(self) -> int:
        """The exit code of the first failing check, 0 when all pass."""
        return next((c.exit_code for c in self.checks if not c.ok), 0)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def run_doctor(connect: Callable[[], Engine]) -> DoctorReport:
    """Check the engine; never raises for a failing check, it is recorded in the report.

    Args:
        connect: connects to the engine (so an unreachable engine becomes a failed check).

    Returns:
        The report; `exit_code` is that of the first failing check.
    """
    address = engine_address()
    try:
        engine = connect()
        version = engine.version()
        info = engine.info()
        usage = engine.disk_usage()
    except DockopsError as exc:
        return DoctorReport(
            engine=address,
            engine_version=None,
            api_version=None,
            storage_driver=None,
            images=None,
            images_bytes=None,
            dangling=None,
            data_root_free_bytes=None,
            checks=(
                Check(name="engine", ok=False, detail=exc.message, exit_code=int(exc.exit_code)),
            ),
        )

    api = str(version.get("ApiVersion", "?"))
    api_ok = _version_tuple(api) >= MIN_API_VERSION
    images = usage.get("Images") or []
    dangling = sum(1 for image in images if not tags_of(image))
    root = info.get("DockerRootDir")
    # Free space is only knowable when the data-root is on this machine.
    free = shutil.disk_usage(root).free if root and os.path.isdir(root) else None
    driver = info.get("Driver")
    layers = int(usage.get("LayersSize") or 0)
    needed = ".".join(map(str, MIN_API_VERSION))
    refused = int(ExitCode.REFUSED)
    checks = (
        Check(
            name="engine",
            ok=True,
            detail=f"{address} answers, Docker {version.get('Version', '?')}",
        ),
        Check(
            name="api",
            ok=api_ok,
            detail=f"API {api}" + ("" if api_ok else f", dockops needs {needed}+"),
            exit_code=0 if api_ok else refused,
        ),
        Check(
            name="storage",
            ok=bool(driver),
            detail=f"storage driver {driver or 'unknown'}",
            exit_code=0 if driver else refused,
        ),
        Check(name="disk", ok=True, detail=f"{len(images)} images, {human_size(layers)} in layers"),
    )
    return DoctorReport(
        engine=address,
        engine_version=version.get("Version"),
        api_version=api,
        storage_driver=driver,
        images=len(images),
        images_bytes=layers,
        dangling=dangling,
        data_root_free_bytes=free,
        checks=checks,
    )


def registry_checks(registry: str) -> tuple[Check, ...]:
    """Is the private registry reachable, is its TLS trusted, do we have working credentials?

    Never raises for a failing check: each failure is a Check with exit code 4.
    """
    from dockops.core.registry.auth import login_hint
    from dockops.core.registry.client import RegistryClient
    from dockops.core.registry.credentials import get_credentials
    from dockops.core.registry.trust import is_loopback, trusted_ca

    failed = int(ExitCode.REGISTRY_UNREACHABLE)
    try:
        with RegistryClient(registry) as api:
            ping = api.ping()
        needs_login = False
    except LoginRequired:
        needs_login = True
        ping = None
    except DockopsError as exc:
        return (Check(name="registry", ok=False, detail=exc.message, exit_code=int(exc.exit_code)),)
    scheme = "https" if ping is None or ping.url.startswith("https") else "http"
    checks = [Check(name="registry", ok=True, detail=f"{registry} answers over {scheme}")]
    if scheme == "http":
        ok = is_loopback(registry)
        detail = "plain HTTP: fine on loopback" if ok else "plain HTTP: the daemon will refuse it"
        checks.append(Check(name="trust", ok=ok, detail=detail, exit_code=0 if ok else failed))
    else:
        ca = trusted_ca(registry)
        checks.append(
            Check(
                name="trust",
                ok=True,
                detail=f"CA {ca}" if ca else "certificate trusted by the system CAs",
            )
        )
    try:
        credentials = get_credentials(registry)
    except DockopsError as exc:
        return (*checks, Check(name="credentials", ok=False, detail=exc.message, exit_code=failed))
    if not needs_login:
        detail = "not needed" if credentials is None else f"stored ({credentials.source})"
        checks.append(Check(name="credentials", ok=True, detail=detail))
        return tuple(checks)
    if credentials is None:
        checks.append(
            Check(name="credentials", ok=False, detail=login_hint(registry), exit_code=failed)
        )
        return tuple(checks)
    try:
        with RegistryClient(registry, credentials=credentials) as api:
            api.ping()
        checks.append(Check(name="credentials", ok=True, detail=f"accepted ({credentials.source})"))
    except DockopsError as exc:
        checks.append(Check(name="credentials", ok=False, detail=exc.message, exit_code=failed))
    return tuple(checks)


def backend_checks(connect: Callable[[], Engine], registry: str) -> tuple[Check, ...]:
    """When `registry` is the TLS frontend of a registry on this engine: is the plain HTTP
    behind it closed to other hosts? An open one is a warning (`registry secure` closes it).

    Never raises: without an engine, or for a registry run elsewhere, there is no check.
    """
    from dockops.core.registry_server import registry_container

    try:
        engine = connect()
        labels = [f"{registry_container.ROLE}=frontend", f"{registry_container.ADDRESS}={registry}"]
        frontends = engine.containers(all=True, filters={"label": labels})
        backends = [engine.find_container(f["Labels"][registry_container.LABEL]) for f in frontends]
    except DockopsError:
        return ()
    checks = []
    for found in backends:
        labels_of = (found or {}).get("Config", {}).get("Labels") or {}
        if found is None or labels_of.get(registry_container.ROLE) != "registry":
            continue  # gone, or a same-named container dockops did not make
        name = str(labels_of[registry_container.LABEL])
        where = registry_container.exposed(found)
        if where:
            checks.append(
                Check(
                    name="backend",
                    ok=True,
                    detail=registry_container.open_backend_warning(name, where),
                    warning=True,
                )
            )
        else:
            now = labels_of.get(registry_container.ADDRESS) or "loopback"
            detail = f"plain HTTP of registry {name} only on {now}"
            checks.append(Check(name="backend", ok=True, detail=detail))
    return tuple(checks)
