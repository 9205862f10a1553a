"""registry up / down: the registry:2 container, restart=always, deletes enabled, idempotent.

Every container, volume and network made here carries the `dockops.registry=<name>` label, so a
re-run finds its own things, and a same-named container someone else made is never touched. The
settings a registry was made with are kept in a label too: a second `up` with the same settings
is a no-op, with other settings it says what differs instead of silently replacing the registry.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockops.engine import engine_errors
from dockops.errors import EngineRefused, InvalidInput

if TYPE_CHECKING:
    import docker

LABEL = "dockops.registry"
ROLE = "dockops.role"
SPEC = "dockops.spec"
ADDRESS = "dockops.address"
REGISTRY_PORT = 5000  # inside the container in bridge mode
DATA = "/var/lib/registry"
READY_TIMEOUT = 20.0


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


@dataclass(frozen=True)
class UpResult:
    name: str
    id: str
    address: str
    state: str  # "created", "started" (was stopped), "already up"
    image: str
    network: str
    data: str  # volume name or folder


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def container_spec(spec: RegistrySpec) -> dict[str, Any]:
    """The create_container / host_config arguments for the registry (pure: unit-tested)."""
    env = {"REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    host_config: dict[str, Any] = {"restart_policy": {"Name": "always"}}
    data = spec.data or spec.volume
    host_config["binds"] = {data: {"bind": DATA, "mode": "rw"}}
    if spec.network == "host":
        env["REGISTRY_HTTP_ADDR"] = hostport(spec.bind, spec.port)
        host_config["network_mode"] = "host"
        ports = None
    else:
        host_config["port_bindings"] = {REGISTRY_PORT: (spec.bind, spec.port)}
        ports = [REGISTRY_PORT]
    return {
        "image": spec.image,
        "name": spec.name,
        "environment": env,
        "ports": ports,
        "labels": {
            LABEL: spec.name,
            ROLE: "registry",
            SPEC: json.dumps(asdict(spec), sort_keys=True),
            ADDRESS: spec.address,
        },
        "host_config": host_config,
    }


def differences(old: dict[str, Any], new: RegistrySpec) -> list[str]:
    """What differs between a recorded spec and the asked one, as 'key: OLD (asked NEW)'."""
    asked = asdict(new)
    return [
        f"{key} {old.get(key)!r} (asked {asked[key]!r})"
        for key in asked
        if old.get(key) != asked[key]
    ]


def find(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    """Inspect the container called `name`; None when there is none."""
    import docker

    with engine_errors(f"inspect {name}"):
        try:
            found: dict[str, Any] = client.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
    return found


def owned(found: dict[str, Any], name: str, role: str) -> None:
    labels = found["Config"].get("Labels") or {}
    if labels.get(LABEL) != name or labels.get(ROLE) != role:
        raise EngineRefused(
            f"a container named {found['Name'].lstrip('/')} exists and was not made by "
            f"dockops registry up: remove or rename it, or choose another --name"
        )


def registry_up(
    client: docker.DockerClient, spec: RegistrySpec, *, ensure_image: Any = None
) -> UpResult:
    """Run the registry container, or find it already running with the same settings.

    Args:
        client: the engine.
        spec: the registry's settings.
        ensure_image: called with the image name when it is not present locally (a pull).

    Returns:
        What runs now, and whether it was created, started, or already up.

    Raises:
        EngineRefused: a container of that name with other settings or not ours; the
            registry exited or did not answer.
        InvalidInput: bad settings.
    """
    import docker

    found = find(client, spec.name)
    state = "already up"
    if found is not None:
        owned(found, spec.name, "registry")
        recorded = json.loads((found["Config"]["Labels"] or {}).get(SPEC, "{}"))
        diff = differences(recorded, spec)
        if diff:
            raise EngineRefused(
                f"registry {spec.name} already exists with other settings: {'; '.join(diff)}; "
                f"run dockops registry down --name {spec.name} first"
            )
        container_id = str(found["Id"])
        if not found["State"]["Running"]:
            with engine_errors(f"start {spec.name}"):
                client.api.start(container_id)
            state = "started"
    else:
        args = container_spec(spec)
        with engine_errors(f"registry up {spec.name}"):
            try:
                client.api.inspect_image(spec.image)
            except docker.errors.ImageNotFound:
                if ensure_image is None:
                    raise InvalidInput(f"image {spec.image} is not on this engine") from None
                ensure_image(spec.image)
            if spec.data is None:
                client.api.create_volume(spec.volume, labels={LABEL: spec.name})
            else:
                Path(spec.data).mkdir(parents=True, exist_ok=True)
            host_config = client.api.create_host_config(**args.pop("host_config"))
            created = client.api.create_container(**args, host_config=host_config)
            container_id = str(created["Id"])
            client.api.start(container_id)
        state = "created"
    wait_ready(client, container_id, spec.address)
    return UpResult(
        spec.name,
        container_id,
        spec.address,
        state,
        spec.image,
        spec.network,
        spec.data or spec.volume,
    )


def wait_ready(
    client: docker.DockerClient, container_id: str, address: str, *, https: bool = False
) -> None:
    """Wait until the service answers on `address`; a container that exits fails at once with
    the end of its log (a port in use, a bad config)."""
    import warnings

    import requests

    scheme = "https" if https else "http"
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
            with engine_errors("wait for the registry"):
                state = client.api.inspect_container(container_id)["State"]
                if not state["Running"] or time.monotonic() > deadline:
                    logs = client.api.logs(container_id, tail=5).decode(errors="replace").strip()
                    last = logs.splitlines()[-1] if logs else "no log"
                    why = "exited" if not state["Running"] else "did not answer"
                    raise EngineRefused(f"{address}: the container {why}: {last}")
            time.sleep(0.1)


@dataclass(frozen=True)
class DownResult:
    name: str
    removed: tuple[str, ...]  # "container NAME", "network NAME", "volume NAME"
    kept: tuple[str, ...]  # what --purge would remove, or a --data folder (never deleted)
    dry_run: bool


def registry_down(
    client: docker.DockerClient, name: str, *, purge: bool = False, dry_run: bool = False
) -> DownResult:
    """Stop and remove the registry, its frontend and their network; with purge, its volume.

    A --data folder is never deleted: it may hold the only copy of the images.

    Raises:
        EngineRefused: a container of that name that dockops did not make.
    """
    import docker

    removed: list[str] = []
    kept: list[str] = []
    data_dir: str | None = None
    for role, container in (("frontend", f"{name}-frontend"), ("registry", name)):
        found = find(client, container)
        if found is None:
            continue
        owned(found, name, role)
        spec = json.loads((found["Config"]["Labels"] or {}).get(SPEC, "{}"))
        data_dir = data_dir or spec.get("data")
        if not dry_run:
            with engine_errors(f"remove {container}"):
                client.api.remove_container(found["Id"], force=True)
        removed.append(f"container {container}")
    with engine_errors("list networks and volumes"):
        networks = client.api.networks(filters={"label": f"{LABEL}={name}"})
        volumes = client.api.volumes(filters={"label": f"{LABEL}={name}"}).get("Volumes") or []
    for network in networks:
        if not dry_run:
            with (
                engine_errors(f"remove network {network['Name']}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                client.api.remove_network(network["Id"])
        removed.append(f"network {network['Name']}")
    for volume in volumes:
        if not purge:
            kept.append(f"volume {volume['Name']}")
            continue
        if not dry_run:
            with engine_errors(f"remove volume {volume['Name']}"):
                client.api.remove_volume(volume["Name"])
        removed.append(f"volume {volume['Name']}")
    if data_dir:
        kept.append(f"folder {data_dir}")
    return DownResult(name, tuple(removed), tuple(kept), dry_run)
