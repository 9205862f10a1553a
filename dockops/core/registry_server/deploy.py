"""registry up / down: the registry:2 container, restart=always, deletes enabled, idempotent.

Every container, volume and network made here carries the `dockops.registry=<name>` label, so a
re-run finds its own things, and a same-named container someone else made is never touched. The
settings a registry was made with are kept in a label too: a second `up` with the same settings
is a no-op, with other settings it says what differs instead of silently replacing the registry.

Once `registry secure` puts nginx in front, the registry's plain HTTP (deletes enabled, no login)
must not stay reachable from the network: `make_private` remakes the container on loopback (host
network) or unpublished (bridge), keeping the `up` settings label so a re-run of `up` still
finds it unchanged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockops.engine.address import engine_errors
from dockops.errors import DockopsError, EngineRefused, InvalidInput

if TYPE_CHECKING:
    import docker

LABEL = "dockops.registry"
ROLE = "dockops.role"
SPEC = "dockops.spec"
ADDRESS = "dockops.address"
PRIVATE = "dockops.private"  # set when secure made the plain port reachable from this host only
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


def container_spec(spec: RegistrySpec, *, private: bool = False) -> dict[str, Any]:
    """The create_container / host_config arguments for the registry (pure: unit-tested).

    With `private` (a secured registry) it listens on loopback on the host network, and
    publishes nothing in bridge mode: nginx reaches it by name over the frontend's network.
    """
    env = {"REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    host_config: dict[str, Any] = {"restart_policy": {"Name": "always"}}
    data = spec.data or spec.volume
    host_config["binds"] = {data: {"bind": DATA, "mode": "rw"}}
    address = spec.address
    ports: list[int] | None = None
    if spec.network == "host":
        bind = spec.bind
        if private and not is_loopback_host(bind):
            bind = "127.0.0.1"
            address = hostport(bind, spec.port)
        env["REGISTRY_HTTP_ADDR"] = hostport(bind, spec.port)
        host_config["network_mode"] = "host"
    elif private:
        address = hostport(spec.name, REGISTRY_PORT)
    else:
        host_config["port_bindings"] = {REGISTRY_PORT: (spec.bind, spec.port)}
        ports = [REGISTRY_PORT]
    labels = {
        LABEL: spec.name,
        ROLE: "registry",
        SPEC: json.dumps(asdict(spec), sort_keys=True),
        ADDRESS: address,
    }
    if private:
        labels[PRIVATE] = "true"
    return {
        "image": spec.image,
        "name": spec.name,
        "environment": env,
        "ports": ports,
        "labels": labels,
        "host_config": host_config,
    }


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
    wait_ready(client, container_id, address)
    if labels.get(PRIVATE):
        # Secured: clients use the TLS frontend, the only way in from the network.
        frontend = find(client, f"{spec.name}-frontend")
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


def wait_ready(
    client: docker.DockerClient, container_id: str, address: str, *, https: bool = False
) -> None:
    """Wait until the service answers on `address`; a container that exits fails at once with
    the end of its log (a port in use, a bad config)."""
    import warnings

    import requests

    scheme = "https" if https else "http"
    with engine_errors("wait for the registry"):
        address = probe_address(client.api.inspect_container(container_id), address)
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
                # restart=always brings an exited container back, Restarting meanwhile
                stopped = not state["Running"] or state.get("Restarting")
                if stopped or time.monotonic() > deadline:
                    logs = client.api.logs(container_id, tail=5).decode(errors="replace").strip()
                    last = logs.splitlines()[-1] if logs else "no log"
                    why = "exited" if stopped else "did not answer"
                    raise EngineRefused(f"{address}: the container {why}: {last}")
            time.sleep(0.1)


def probe_address(inspected: dict[str, Any], address: str) -> str:
    """Where this host asks a container: `address`, except for a bridge-mode container that
    publishes nothing (a secured registry), which is asked on its own IP."""
    host_config = inspected.get("HostConfig") or {}
    if host_config.get("NetworkMode") == "host" or host_config.get("PortBindings"):
        return address
    networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    ips = [net["IPAddress"] for net in networks.values() if net.get("IPAddress")]
    return hostport(ips[0], REGISTRY_PORT) if ips else address


@dataclass(frozen=True)
class Backend:
    """What `make_private` did to the registry's plain-HTTP port."""

    change: str  # "rebound" (to loopback), "unpublished" (bridge), "unchanged"
    was: tuple[str, ...]  # where other hosts could reach it before; empty when unchanged
    now: str  # where the frontend reaches it: 127.0.0.1:PORT, or NAME:5000 on NAME-net


def make_private(client: docker.DockerClient, found: dict[str, Any]) -> Backend:
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
        _clear_aside(client, name)  # a killed run may have remade it, but not removed the old
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
    args = container_spec(spec, private=True)
    args["image"] = _same_image(client, spec.image, str(found["Image"]))
    _clear_aside(client, name)
    restart = (found.get("HostConfig") or {}).get("RestartPolicy") or {"Name": "always"}
    with engine_errors(f"registry secure {name}"):
        client.api.rename(found["Id"], f"{name}-replaced")
        # Aside and stopped, but restart=always would bring the open port back with the
        # daemon, should this run be killed before it removes the old container.
        client.api.update_container(found["Id"], restart_policy={"Name": "no"})
        client.api.stop(found["Id"], timeout=30)
    created: dict[str, Any] | None = None
    try:
        with engine_errors(f"registry secure {name}"):
            host_config = client.api.create_host_config(**args.pop("host_config"))
            created = client.api.create_container(**args, host_config=host_config)
            client.api.start(created["Id"])
        wait_ready(client, str(created["Id"]), args["labels"][ADDRESS])
    except DockopsError as exc:
        with engine_errors(f"put registry {name} back"):
            if created is not None:
                client.api.remove_container(created["Id"], force=True)
            client.api.rename(found["Id"], name)
            client.api.update_container(found["Id"], restart_policy=restart)
            client.api.start(found["Id"])
        raise EngineRefused(
            f"could not make registry {name} reachable from this host only ({exc.message}); "
            f"it was put back as it was, on {where}, and is not secured"
        ) from None
    with engine_errors(f"remove the old {name}"):
        client.api.remove_container(found["Id"], force=True)
    change = "rebound" if spec.network == "host" else "unpublished"
    return Backend(change=change, was=was, now=str(args["labels"][ADDRESS]))


def _clear_aside(client: docker.DockerClient, name: str) -> None:
    """Remove NAME-replaced, the old registry a killed make_private left aside (stopped)."""
    leftover = find(client, f"{name}-replaced")
    if leftover is not None:
        owned(leftover, name, "registry")
        with engine_errors(f"remove {name}-replaced"):
            client.api.remove_container(leftover["Id"], force=True)


def _same_image(client: docker.DockerClient, name: str, image_id: str) -> str:
    """The image by name when that still names the container's image, else by ID: securing
    must not upgrade the registry because its tag moved meanwhile."""
    import docker

    with engine_errors(f"inspect {name}"):
        try:
            current = client.api.inspect_image(name)["Id"]
        except docker.errors.ImageNotFound:
            return image_id
    return name if current == image_id else image_id


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
    # NAME-replaced: the old registry make_private keeps aside, left there if it was killed
    containers = (
        ("frontend", f"{name}-frontend"),
        ("registry", name),
        ("registry", f"{name}-replaced"),
    )
    for role, container in containers:
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
    return DownResult(name=name, removed=tuple(removed), kept=tuple(kept), dry_run=dry_run)
