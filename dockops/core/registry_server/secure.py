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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockops.core.registry import trust
from dockops.core.registry_server import deploy, htpasswd, nginx, pki
from dockops.core.registry_server.container_body import ContainerSettings, create_body
from dockops.core.registry_server.deploy import owned
from dockops.core.registry_server.registry_container import (
    ADDRESS,
    LABEL,
    REGISTRY_PORT,
    ROLE,
    SPEC,
    hostport,
)
from dockops.engine.api import Engine
from dockops.errors import InvalidInput, RegistryUnreachable, root_cause

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


def frontend_settings(spec: SecureSpec, network: str, files: dict[str, Path]) -> ContainerSettings:
    """The nginx frontend container (pure: unit-tested for both modes).

    `files` maps the container paths of the server cert, key and htpasswd to host files, and
    CONF_D to the folder holding only our server block (it hides the image's default.conf,
    which would listen on port 80 of the host network).
    """
    host_network = ContainerSettings(
        image=spec.image,
        name=f"{spec.name}-frontend",
        labels={
            LABEL: spec.name,
            ROLE: "frontend",
            ADDRESS: registry_address(spec),
            CERTS_DIR: str(spec.certs_dir),
        },
        binds={str(host): (inside, "ro") for inside, host in files.items()},
        network_mode="host",
        restart="always",
    )
    if network == "host":
        return host_network
    net = f"{spec.name}-net"
    return replace(host_network, network_mode=net, networks=(net,), ports={443: ("", spec.port)})


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
    engine: Engine,
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
        engine: the engine.
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
    registry = engine.find_container(spec.name)
    if registry is None:
        raise InvalidInput(f"no registry named {spec.name}: run dockops registry up first")
    owned(registry, spec.name, "registry")
    recorded = json.loads((registry["Config"]["Labels"] or {}).get(SPEC, "{}"))
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
    image_id = _frontend_image(engine, spec.image)
    frontend = engine.find_container(f"{spec.name}-frontend")
    if frontend is not None:
        owned(frontend, spec.name, "frontend")

    files = pki.ensure_pki(spec.certs_dir, spec.host, rotate=rotate)
    changed = False
    if user is not None and password is not None:
        changed = htpasswd.write_htpasswd(auth_file, user, password)
    backend = deploy.make_private(engine, registry)
    if network == "host":
        upstream = backend.now or f"127.0.0.1:{recorded.get('port', REGISTRY_PORT)}"
    else:
        upstream = f"{spec.name}:{REGISTRY_PORT}"
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
    settings = frontend_settings(spec, network, mounts)
    if network != "host":
        # nginx resolves NAME once, when it starts: a remade registry (another IP) needs
        # a new frontend, which this label in the fingerprint brings.
        upstream_id = _bridge_network(engine, spec.name)
        settings = replace(settings, labels={**settings.labels, UPSTREAM: upstream_id})
    state = _run_frontend(engine, spec, network, settings, mounts, image_id)

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


def _fingerprint(body: dict[str, Any], mounts: dict[str, Path], image_id: str) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode())
    digest.update(image_id.encode())
    for inside in sorted(mounts):
        source = mounts[inside]
        paths = sorted(source.iterdir()) if source.is_dir() else [source]
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _frontend_image(engine: Engine, image: str) -> str:
    """The frontend image's ID.

    Raises:
        InvalidInput: the image is not on the engine (secure pulls nothing).
    """
    found = engine.find_image(image)
    if found is None:
        raise InvalidInput(f"--frontend-image {image} is not on this engine")
    return str(found["Id"])


def _run_frontend(
    engine: Engine,
    spec: SecureSpec,
    network: str,
    settings: ContainerSettings,
    mounts: dict[str, Path],
    image_id: str,
) -> str:
    name = str(settings.name)
    body = create_body(settings)
    fingerprint = _fingerprint(body, mounts, image_id)
    found = engine.find_container(name)
    state = "created"
    if found is not None:
        owned(found, spec.name, "frontend")
        labels = found["Config"]["Labels"] or {}
        if labels.get(HASH) == fingerprint and found["State"]["Running"]:
            return "unchanged"
        engine.remove_container(found["Id"], force=True, what=f"remove {name}")
        state = "recreated"
    body["Labels"] = {**body["Labels"], HASH: fingerprint}
    created = engine.create_container(body, name, what=f"start {name}")
    engine.start(created, what=f"start {name}")
    probe = listen_address(spec, network)
    probe = probe if ":" in probe else hostport("127.0.0.1", spec.port)
    deploy.wait_ready(engine, created, probe, https=True)
    return state


def _bridge_network(engine: Engine, name: str) -> str:
    """The user-defined network on which nginx reaches the registry by its container name;
    returns the registry container's ID."""
    net = f"{name}-net"
    what = f"registry secure {name}"
    # The engine's name filter matches substrings: NAME-net2 is not NAME-net.
    if not any(found.get("Name") == net for found in engine.networks([net])):
        engine.create_network({"Name": net, "Driver": "bridge", "Labels": {LABEL: name}}, what)
    attached = engine.network(net, what=what).get("Containers") or {}
    registry_id = str(engine.container(name, what=what)["Id"])
    if registry_id not in attached:
        engine.connect_network(net, registry_id, aliases=[name], what=what)
    return registry_id


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
