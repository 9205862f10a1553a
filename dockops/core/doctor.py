"""Health checks of the engine dockops drives and of the default private registry."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.engine.address import engine_address
from dockops.errors import DockopsError, ExitCode, LoginRequired
from dockops.units import human_size

if TYPE_CHECKING:
    from dockops.engine.api import Engine


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
    engine_product: str | None  # "Docker Engine", "Podman Engine"
    engine_version: str | None  # the product's version
    api_version: str | None  # the Engine API version dockops speaks with it (negotiated)
    engine_api_version: str | None  # the newest the engine offers
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


def _product(engine: Engine, version: dict[str, Any]) -> tuple[str, str]:
    """The engine's product and its version, as /version's Components name them: Podman's is
    "Podman Engine"; Docker's is "Engine", which the docker CLI shows as Docker Engine."""
    name, component = (
        ("Podman Engine", "Podman Engine") if engine.is_podman else ("Docker Engine", "Engine")
    )
    for part in version.get("Components") or ():
        if isinstance(part, dict) and part.get("Name") == component and part.get("Version"):
            return name, str(part["Version"])
    return name, str(version.get("Version", "?"))


def _untagged(image: dict[str, Any]) -> bool:
    # Docker writes <none>:<none> for no tag; Podman's df <none> (its tags lack the repository).
    return not [t for t in image.get("RepoTags") or () if t not in ("<none>:<none>", "<none>")]


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
            engine_product=None,
            engine_version=None,
            api_version=None,
            engine_api_version=None,
            storage_driver=None,
            images=None,
            images_bytes=None,
            dangling=None,
            data_root_free_bytes=None,
            checks=(
                Check(name="engine", ok=False, detail=exc.message, exit_code=int(exc.exit_code)),
            ),
        )

    offered = str(version.get("ApiVersion", "?"))
    oldest = version.get("MinAPIVersion")
    product, product_version = _product(engine, version)
    # Podman's df lists an image once per tag and says LayersSize 0: images are counted by ID,
    # and the bytes in layers are unknown there rather than 0.
    images = usage.get("Images") or []
    ids = {image.get("Id") for image in images}
    dangling = len({image.get("Id") for image in images if _untagged(image)})
    layers = None if engine.is_podman else int(usage.get("LayersSize") or 0)
    root = info.get("DockerRootDir")
    # Free space is only knowable when the data-root is on this machine.
    free = shutil.disk_usage(root).free if root and os.path.isdir(root) else None
    driver = info.get("Driver")
    refused = int(ExitCode.REFUSED)
    offers = f"{oldest} to {offered}" if oldest else f"up to {offered}"
    in_layers = "" if layers is None else f", {human_size(layers)} in layers"
    checks = (
        Check(
            name="engine",
            ok=True,
            detail=f"{address} answers, {product} {product_version}",
        ),
        # connect() refused an engine dockops cannot speak with: any version here is usable.
        Check(name="api", ok=True, detail=f"API {engine.api_version} (the engine offers {offers})"),
        Check(
            name="storage",
            ok=bool(driver),
            detail=f"storage driver {driver or 'unknown'}",
            exit_code=0 if driver else refused,
        ),
        Check(name="disk", ok=True, detail=f"{len(ids)} images{in_layers}"),
    )
    return DoctorReport(
        engine=address,
        engine_product=product,
        engine_version=product_version,
        api_version=engine.api_version,
        engine_api_version=offered,
        storage_driver=driver,
        images=len(ids),
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
