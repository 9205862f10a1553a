"""registry secure: TLS from a self-signed CA and basic auth, in an nginx container in front.

The frontend follows the distribution project's nginx recipe (nginx.py). It reaches the
registry over loopback when both use the host network, or over a user-defined network by
container name in bridge mode; the registry itself is first made unreachable from other hosts
(deploy.make_private), so the frontend is the only way in. Its files (conf, server cert and
key, htpasswd) are bind-mounted read-only; the CA key never enters a container. The container
carries a hash of everything it was made from, so a re-run with nothing changed leaves it alone
and any change recreates it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockops.core.registry import trust
from dockops.core.registry_server import deploy, htpasswd, nginx, pki
from dockops.core.registry_server.deploy import LABEL, ROLE, find, hostport, owned
from dockops.engine.address import engine_errors
from dockops.errors import InvalidInput, RegistryUnreachable, root_cause

if TYPE_CHECKING:
    import docker

HASH = "dockops.frontend.hash"
UPSTREAM = "dockops.upstream"  # bridge mode: the registry container nginx resolved at start
CERTS_DIR = "dockops.certs_dir"
CONF_D = "/etc/nginx/conf.d"


@dataclass(frozen=True)
class SecureSpec:
    name: str
    host: str
    port: int
    image: str
    certs_dir: Path
    network: str | None = None  # None: the registry's own


@dataclass(frozen=True)
class FrontendCheck:
    unauthenticated: int | None  # expected 401
    api_version_header: bool  # Docker-Distribution-Api-Version on that 401
    authenticated: int | None  # expected 200; None without a password or a stored login
    skipped: str | None = None


@dataclass(frozen=True)
class SecureResult:
    registry: str  # HOST:PORT, what clients use
    certs_dir: str
    ca_created: bool
    cert_created: bool
    htpasswd_changed: bool
    frontend: str  # "created", "recreated", "unchanged"
    trusted_at: str | None
    ca_fingerprint: str
    check: FrontendCheck
    backend: deploy.Backend  # what was done to the registry's plain-HTTP port


def frontend_spec(spec: SecureSpec, network: str, files: dict[str, Path]) -> dict[str, Any]:
    """create_container arguments for the nginx frontend (pure: unit-tested for both modes).

    `files` maps the container paths of the server cert, key and htpasswd to host files, and
    CONF_D to the folder holding only our server block (it hides the image's default.conf,
    which would listen on port 80 of the host network).
    """
    binds = {str(host): {"bind": inside, "mode": "ro"} for inside, host in files.items()}
    host_config: dict[str, Any] = {"restart_policy": {"Name": "always"}, "binds": binds}
    ports: list[int] | None = None
    networking: dict[str, dict[str, Any]] | None = None
    if network == "host":
        host_config["network_mode"] = "host"
    else:
        net = f"{spec.name}-net"
        host_config["network_mode"] = net
        host_config["port_bindings"] = {443: spec.port}
        ports = [443]
        networking = {net: {}}
    return {
        "image": spec.image,
        "name": f"{spec.name}-frontend",
        "ports": ports,
        "labels": {
            LABEL: spec.name,
            ROLE: "frontend",
            deploy.ADDRESS: registry_address(spec),
            CERTS_DIR: str(spec.certs_dir),
        },
        "host_config": host_config,
        "networking": networking,
    }


def registry_address(spec: SecureSpec) -> str:
    return hostport(spec.host, spec.port)


def listen_address(spec: SecureSpec, network: str) -> str:
    """On the host network nginx binds the --host address when it is an IP (127.0.0.1 stays
    loopback-only); a DNS name binds every address. In bridge mode it listens on 443 inside."""
    if network != "host":
        return "443"
    try:
        ipaddress.ip_address(spec.host)
    except ValueError:
        return str(spec.port)
    return hostport(spec.host, spec.port)


def secure_registry(
    client: docker.DockerClient,
    spec: SecureSpec,
    *,
    user: str | None,
    password: str | None,
    rotate: bool = False,
    certs_d: Path | None = None,
    install_trust: bool = True,
) -> SecureResult:
    """Put TLS and basic auth in front of the registry `spec.name`, then prove it works.

    Args:
        client: the engine.
        spec: host, port, frontend image and where the certificates live.
        user, password: the htpasswd entry to write; both None keeps the existing file.
        rotate: make a new CA (and server certificate) even when one exists.
        certs_d: the daemon's certs.d (default /etc/docker/certs.d or $DOCKOPS_CERTS_D).
        install_trust: copy ca.crt to <certs_d>/HOST:PORT/ca.crt.

    Raises:
        InvalidInput: no registry to secure, no htpasswd yet and no user, bad host.
        EngineRefused: the frontend did not start, or the registry's plain HTTP could not
            be made reachable from this host only (it is then left as it was).
        RegistryUnreachable: the final HTTPS checks did not get 401 then 200.
    """
    registry = find(client, spec.name)
    if registry is None:
        raise InvalidInput(f"no registry named {spec.name}: run dockops registry up first")
    owned(registry, spec.name, "registry")
    recorded = json.loads((registry["Config"]["Labels"] or {}).get(deploy.SPEC, "{}"))
    network = str(recorded.get("network", "bridge"))
    if spec.network is not None and spec.network != network:
        raise InvalidInput(
            f"--network {spec.network}: registry {spec.name} runs on the {network} network"
        )
    auth_file = spec.certs_dir / "htpasswd"
    if (user is None) != (password is None):
        raise InvalidInput("give --user together with a password (--password-stdin)")
    if user is None and not auth_file.is_file():
        raise InvalidInput("the first registry secure needs --user U and a password")

    # What can fail without touching anything is checked before the registry is remade.
    image_id = _frontend_image(client, spec.image)
    frontend = find(client, f"{spec.name}-frontend")
    if frontend is not None:
        owned(frontend, spec.name, "frontend")

    files = pki.ensure_pki(spec.certs_dir, spec.host, rotate=rotate)
    changed = False
    if user is not None and password is not None:
        changed = htpasswd.write_htpasswd(auth_file, user, password)
    backend = deploy.make_private(client, registry)
    if network == "host":
        upstream = backend.now or f"127.0.0.1:{recorded.get('port', deploy.REGISTRY_PORT)}"
    else:
        upstream = f"{spec.name}:{deploy.REGISTRY_PORT}"
    conf = nginx.render_conf(
        nginx.FrontendConf(
            server_name=spec.host, listen=listen_address(spec, network), upstream=upstream
        )
    )
    conf_dir = spec.certs_dir / "nginx"
    conf_file = conf_dir / "registry.conf"
    if not conf_file.is_file() or conf_file.read_text() != conf:
        from dockops.atomic import write_atomic

        write_atomic(conf_file, conf.encode(), mode=0o644)
    mounts = {
        CONF_D: conf_dir,
        "/etc/nginx/certs/domain.crt": files.crt,
        "/etc/nginx/certs/domain.key": files.key,
        "/etc/nginx/auth/htpasswd": auth_file,
    }
    args = frontend_spec(spec, network, mounts)
    if network != "host":
        with engine_errors(f"registry secure {spec.name}"):
            # nginx resolves NAME once, when it starts: a remade registry (another IP) needs
            # a new frontend, which this label in the fingerprint brings.
            args["labels"][UPSTREAM] = _bridge_network(client, spec.name)
    state = _run_frontend(client, spec, network, args, mounts, image_id)

    trusted_at = None
    if install_trust:
        trusted_at = str(trust.install_ca(files.ca_crt, registry_address(spec), certs_d))
    if user is None:
        # No password this run: a stored login (dockops or docker login) still proves the 200.
        user, password = _stored_login(registry_address(spec))
    check = check_frontend(registry_address(spec), files.ca_crt, user, password)
    from dockops.config import update_config

    update_config(registry=registry_address(spec))
    return SecureResult(
        registry=registry_address(spec),
        certs_dir=str(spec.certs_dir),
        ca_created=files.ca_created,
        cert_created=files.cert_created,
        htpasswd_changed=changed,
        frontend=state,
        trusted_at=trusted_at,
        ca_fingerprint=files.ca_fingerprint,
        check=check,
        backend=backend,
    )


def _stored_login(address: str) -> tuple[str | None, str | None]:
    from dockops.core.registry.credentials import get_credentials
    from dockops.errors import DockopsError

    try:
        stored = get_credentials(address)
    except DockopsError:  # a missing credential helper: check without a login
        return None, None
    return (stored.username, stored.password) if stored else (None, None)


def _fingerprint(args: dict[str, Any], mounts: dict[str, Path], image_id: str) -> str:
    digest = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
    digest.update(image_id.encode())
    for inside in sorted(mounts):
        source = mounts[inside]
        paths = sorted(source.iterdir()) if source.is_dir() else [source]
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _frontend_image(client: docker.DockerClient, image: str) -> str:
    """The frontend image's ID.

    Raises:
        InvalidInput: the image is not on the engine (secure pulls nothing).
    """
    import docker

    with engine_errors("registry secure"):
        try:
            return str(client.api.inspect_image(image)["Id"])
        except docker.errors.ImageNotFound:
            raise InvalidInput(f"--frontend-image {image} is not on this engine") from None


def _run_frontend(
    client: docker.DockerClient,
    spec: SecureSpec,
    network: str,
    args: dict[str, Any],
    mounts: dict[str, Path],
    image_id: str,
) -> str:
    name = str(args["name"])
    fingerprint = _fingerprint(args, mounts, image_id)
    found = find(client, name)
    state = "created"
    if found is not None:
        owned(found, spec.name, "frontend")
        labels = found["Config"]["Labels"] or {}
        if labels.get(HASH) == fingerprint and found["State"]["Running"]:
            return "unchanged"
        with engine_errors(f"remove {name}"):
            client.api.remove_container(found["Id"], force=True)
        state = "recreated"
    with engine_errors(f"start {name}"):
        host_config = client.api.create_host_config(**args["host_config"])
        networking = (
            client.api.create_networking_config(
                {net: client.api.create_endpoint_config() for net in args["networking"]}
            )
            if args["networking"]
            else None
        )
        created = client.api.create_container(
            image=spec.image,
            name=name,
            ports=args["ports"],
            labels={**args["labels"], HASH: fingerprint},
            host_config=host_config,
            networking_config=networking,
        )
        client.api.start(created["Id"])
    probe = listen_address(spec, network)
    probe = probe if ":" in probe else hostport("127.0.0.1", spec.port)
    deploy.wait_ready(client, str(created["Id"]), probe, https=True)
    return state


def _bridge_network(client: docker.DockerClient, name: str) -> str:
    """The user-defined network on which nginx reaches the registry by its container name;
    returns the registry container's ID."""
    net = f"{name}-net"
    existing = client.api.networks(names=[net])
    if not existing:
        client.api.create_network(net, driver="bridge", labels={LABEL: name})
    attached = client.api.inspect_network(net).get("Containers") or {}
    registry_id = client.api.inspect_container(name)["Id"]
    if registry_id not in attached:
        client.api.connect_container_to_network(registry_id, net, aliases=[name])
    return str(registry_id)


def check_frontend(
    address: str, ca_crt: Path, user: str | None, password: str | None
) -> FrontendCheck:
    """A real HTTPS request verified against our CA: 401 with the API-version header without
    credentials, 200 with them (when a password was given this run)."""
    import requests

    url = f"https://{address}/v2/"
    session = requests.Session()
    session.trust_env = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            anonymous = session.get(url, verify=str(ca_crt), timeout=(5, 30))
            authenticated = (
                session.get(url, verify=str(ca_crt), timeout=(5, 30), auth=(user, password))
                if user is not None and password is not None
                else None
            )
    except requests.exceptions.RequestException as exc:  # refused, TLS, timeouts...
        if "Name or service not known" in str(exc) or "nodename nor servname" in str(exc):
            return FrontendCheck(
                unauthenticated=None,
                api_version_header=False,
                authenticated=None,
                skipped=f"{address} does not resolve on this host",
            )
        raise RegistryUnreachable(f"checking https://{address}/v2/: {root_cause(exc)}") from None
    finally:
        session.close()
    header = "Docker-Distribution-Api-Version" in anonymous.headers
    check = FrontendCheck(
        unauthenticated=anonymous.status_code,
        api_version_header=header,
        authenticated=authenticated.status_code if authenticated else None,
    )
    if anonymous.status_code != 401 or not header:
        raise RegistryUnreachable(
            f"https://{address}/v2/ without credentials answered {anonymous.status_code}"
            f"{'' if header else ' without the Docker-Distribution-Api-Version header'}"
            " (expected 401 with it)"
        )
    if authenticated is not None and authenticated.status_code != 200:
        raise RegistryUnreachable(
            f"https://{address}/v2/ with the new credentials answered "
            f"{authenticated.status_code} (expected 200)"
        )
    return check
