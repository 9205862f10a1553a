"""registry up / down: the registry:2 container, restart=always, deletes enabled, idempotent.

What the container is made of, and how its labels let a re-run find it, is
registry_container.py's: a second `up` with the same settings is a no-op, with other settings
it says what differs instead of silently replacing the registry.

Once `registry secure` puts nginx in front, the registry's plain HTTP (deletes enabled, no login)
must not stay reachable from the network: `make_private` remakes the container on loopback (host
network) or unpublished (bridge), keeping the `up` settings label so a re-run of `up` still
finds it unchanged.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockops.core.registry_server.container_body import create_body
from dockops.core.registry_server.registry_container import (
    ADDRESS,
    LABEL,
    PRIVATE,
    ROLE,
    SPEC,
    RegistrySpec,
    differences,
    exposed,
    probe_address,
    registry_settings,
)
from dockops.engine.api import Engine
from dockops.engine.errors import Missing
from dockops.errors import DockopsError, EngineRefused, InvalidInput

READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class UpResult:
    name: str
    id: str
    address: str
    state: str  # "created", "started" (was stopped), "already up"
    image: str
    network: str
    data: str  # volume name or folder


def owned(found: dict[str, Any], name: str, role: str) -> None:
    labels = found["Config"].get("Labels") or {}
    if labels.get(LABEL) != name or labels.get(ROLE) != role:
        raise EngineRefused(
            f"a container named {found['Name'].lstrip('/')} exists and was not made by "
            f"dockops registry up: remove or rename it, or choose another --name"
        )


def registry_up(engine: Engine, spec: RegistrySpec, *, ensure_image: Any = None) -> UpResult:
    """Run the registry container, or find it already running with the same settings.

    Args:
        engine: the engine.
        spec: the registry's settings.
        ensure_image: called with the image name when it is not present locally (a pull).

    Returns:
        What runs now, and whether it was created, started, or already up.

    Raises:
        EngineRefused: a container of that name with other settings or not ours; the
            registry exited or did not answer.
        InvalidInput: bad settings.
    """
    found = engine.find_container(spec.name)
    state = "already up"
    address = spec.address
    labels: dict[str, str] = {}
    if found is not None:
        owned(found, spec.name, "registry")
        labels = found["Config"]["Labels"] or {}
        recorded = json.loads(labels.get(SPEC, "{}"))
        diff = differences(recorded, spec)
        if diff:
            raise EngineRefused(
                f"registry {spec.name} already exists with other settings: {'; '.join(diff)}; "
                f"run dockops registry down --name {spec.name} first"
            )
        container_id = str(found["Id"])
        address = str(labels.get(ADDRESS) or address)  # secure may have moved it
        if not found["State"]["Running"]:
            engine.start(container_id, what=f"start {spec.name}")
            state = "started"
    else:
        what = f"registry up {spec.name}"
        if engine.find_image(spec.image) is None:
            if ensure_image is None:
                raise InvalidInput(f"image {spec.image} is not on this engine")
            ensure_image(spec.image)
        if spec.data is None:
            engine.create_volume(spec.volume, labels={LABEL: spec.name}, what=what)
        else:
            Path(spec.data).mkdir(parents=True, exist_ok=True)
        settings = registry_settings(spec)
        container_id = engine.create_container(create_body(settings), settings.name, what=what)
        engine.start(container_id, what=what)
        state = "created"
    wait_ready(engine, container_id, address)
    if labels.get(PRIVATE):
        # Secured: clients use the TLS frontend, the only way in from the network.
        frontend = engine.find_container(f"{spec.name}-frontend")
        if frontend is not None:
            owned(frontend, spec.name, "frontend")
            address = str((frontend["Config"]["Labels"] or {}).get(ADDRESS) or address)
    return UpResult(
        name=spec.name,
        id=container_id,
        address=address,
        state=state,
        image=spec.image,
        network=spec.network,
        data=spec.data or spec.volume,
    )


def wait_ready(engine: Engine, container_id: str, address: str, *, https: bool = False) -> None:
    """Wait until the service answers on `address`; a container that exits fails at once with
    the end of its log (a port in use, a bad config)."""
    import warnings

    import requests

    scheme = "https" if https else "http"
    what = "wait for the registry"
    address = probe_address(engine.container(container_id, what=what), address)
    deadline = time.monotonic() + READY_TIMEOUT
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment must not catch this probe
        while True:
            # Any HTTP answer will do (401 included); trust is checked afterwards, for real.
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    session.get(f"{scheme}://{address}/v2/", timeout=1, verify=False).close()
                return
            except requests.exceptions.RequestException:
                pass
            state = engine.container(container_id, what=what)["State"]
            # restart=always brings an exited container back, Restarting meanwhile
            stopped = not state["Running"] or state.get("Restarting")
            if stopped or time.monotonic() > deadline:
                logs = engine.logs(container_id, what=what, tail=5)
                text = logs.decode(errors="replace").strip()
                last = text.splitlines()[-1] if text else "no log"
                why = "exited" if stopped else "did not answer"
                raise EngineRefused(f"{address}: the container {why}: {last}")
            time.sleep(0.1)


@dataclass(frozen=True)
class Backend:
    """What `make_private` did to the registry's plain-HTTP port."""

    change: str  # "rebound" (to loopback), "unpublished" (bridge), "unchanged"
    was: tuple[str, ...]  # where other hosts could reach it before; empty when unchanged
    now: str  # where the frontend reaches it: 127.0.0.1:PORT, or NAME:5000 on NAME-net


def make_private(engine: Engine, found: dict[str, Any]) -> Backend:
    """Make the registry container `found` reachable from this host only, keeping its data.

    A container that listens beyond loopback is remade from its recorded `up` settings (same
    image, data volume or folder, environment) with loopback or no published port instead.
    The old one is kept aside, stopped and with restart=no, until the new one answers, and put
    back on failure; one a killed run left aside is removed, even when nothing else is to do.

    Raises:
        EngineRefused: no recorded settings to remake it from, or the new container did not
            start (the old one then runs again, as it was).
    """
    labels = found["Config"].get("Labels") or {}
    name = str(labels.get(LABEL))
    was = exposed(found)
    if not was:
        _clear_aside(engine, name)  # a killed run may have remade it, but not removed the old
        return Backend(change="unchanged", was=(), now=str(labels.get(ADDRESS) or ""))
    where = ", ".join(was)
    try:
        spec = RegistrySpec(**json.loads(labels[SPEC]))
    except (KeyError, TypeError, ValueError, InvalidInput):
        raise EngineRefused(
            f"registry {name} listens on {where} and its settings are not recorded, so it "
            f"cannot be remade on loopback: run dockops registry down --name {name} and "
            f"registry up again (the data volume is kept), then secure"
        ) from None
    settings = registry_settings(spec, private=True)
    body = create_body(settings) | {"Image": _same_image(engine, spec.image, str(found["Image"]))}
    _clear_aside(engine, name)
    restart = (found.get("HostConfig") or {}).get("RestartPolicy") or {"Name": "always"}
    what = f"registry secure {name}"
    engine.rename(found["Id"], f"{name}-replaced", what=what)
    # Aside and stopped, but restart=always would bring the open port back with the
    # daemon, should this run be killed before it removes the old container.
    engine.update_container(found["Id"], {"RestartPolicy": {"Name": "no"}}, what=what)
    engine.stop(found["Id"], timeout=30, what=what)
    created: str | None = None
    try:
        created = engine.create_container(body, settings.name, what=what)
        engine.start(created, what=what)
        wait_ready(engine, created, settings.labels[ADDRESS])
    except DockopsError as exc:
        back = f"put registry {name} back"
        if created is not None:
            engine.remove_container(created, force=True, what=back)
        engine.rename(found["Id"], name, what=back)
        engine.update_container(found["Id"], {"RestartPolicy": restart}, what=back)
        engine.start(found["Id"], what=back)
        raise EngineRefused(
            f"could not make registry {name} reachable from this host only ({exc.message}); "
            f"it was put back as it was, on {where}, and is not secured"
        ) from None
    engine.remove_container(found["Id"], force=True, what=f"remove the old {name}")
    change = "rebound" if spec.network == "host" else "unpublished"
    return Backend(change=change, was=was, now=settings.labels[ADDRESS])


def _clear_aside(engine: Engine, name: str) -> None:
    """Remove NAME-replaced, the old registry a killed make_private left aside (stopped)."""
    leftover = engine.find_container(f"{name}-replaced")
    if leftover is not None:
        owned(leftover, name, "registry")
        engine.remove_container(leftover["Id"], force=True, what=f"remove {name}-replaced")


def _same_image(engine: Engine, name: str, image_id: str) -> str:
    """The image by name when that still names the container's image, else by ID: securing
    must not upgrade the registry because its tag moved meanwhile."""
    current = engine.find_image(name)
    return name if current is not None and current["Id"] == image_id else image_id


@dataclass(frozen=True)
class DownResult:
    name: str
    removed: tuple[str, ...]  # "container NAME", "network NAME", "volume NAME"
    kept: tuple[str, ...]  # what --purge would remove, or a --data folder (never deleted)
    dry_run: bool


def _labelled(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The networks or volumes dockops made for registry `name` (the engine's label filter,
    applied here: each list is one request either way)."""
    return [item for item in items if (item.get("Labels") or {}).get(LABEL) == name]


def registry_down(
    engine: Engine, name: str, *, purge: bool = False, dry_run: bool = False
) -> DownResult:
    """Stop and remove the registry, its frontend and their network; with purge, its volume.

    A --data folder is never deleted: it may hold the only copy of the images.

    Raises:
        EngineRefused: a container of that name that dockops did not make.
    """
    removed: list[str] = []
    kept: list[str] = []
    data_dir: str | None = None
    # NAME-replaced: the old registry make_private keeps aside, left there if it was killed
    containers = (
        ("frontend", f"{name}-frontend"),
        ("registry", name),
        ("registry", f"{name}-replaced"),
    )
    for role, container in containers:
        found = engine.find_container(container)
        if found is None:
            continue
        owned(found, name, role)
        spec = json.loads((found["Config"]["Labels"] or {}).get(SPEC, "{}"))
        data_dir = data_dir or spec.get("data")
        if not dry_run:
            engine.remove_container(found["Id"], force=True, what=f"remove {container}")
        removed.append(f"container {container}")
    for network in _labelled(engine.networks(), name):
        if not dry_run:
            with contextlib.suppress(Missing):
                engine.remove_network(network["Id"], what=f"remove network {network['Name']}")
        removed.append(f"network {network['Name']}")
    for volume in _labelled(engine.volumes(), name):
        if not purge:
            kept.append(f"volume {volume['Name']}")
            continue
        if not dry_run:
            engine.remove_volume(volume["Name"], what=f"remove volume {volume['Name']}")
        removed.append(f"volume {volume['Name']}")
    if data_dir:
        kept.append(f"folder {data_dir}")
    return DownResult(name=name, removed=tuple(removed), kept=tuple(kept), dry_run=dry_run)
