"""Where the engine is, and how long to wait for it.

The engine is chosen as the docker CLI chooses it: DOCKER_HOST (with DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH), else the current docker context (DOCKER_CONTEXT, else currentContext in the
docker config), else the local socket.

A context is read here, where the docker CLI keeps it ($DOCKER_CONFIG or ~/.docker, then
contexts/meta/<sha256 of the name>/meta.json), not by docker-py: docker-py treats a context it
cannot find as the local socket, and looks for contexts beside whichever config.json it finds
first (~/.docker's when $DOCKER_CONFIG has none). A prune meant for a remote engine must not
land on the local one: a named context that is missing or unreadable is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from dockops.errors import (
    EngineUnreachable,
    InvalidInput,
    root_cause,
)

if TYPE_CHECKING:
    pass

# docker-py's own default (60 s) applies to every socket read; a save or load of a large image
# waits longer than that between chunks while the daemon works, so long operations get more.
DEFAULT_TIMEOUT = 60.0
LONG_TIMEOUT = 3600.0
# A pull or push stream that says nothing for this long is stalled (engine/daemon_lines.py). The
# daemon reports progress at least every 100 ms while bytes move, so two minutes of silence is
# a registry that accepted a request and never answered, which the daemon would wait on forever.
DEFAULT_STALL_TIMEOUT = 120.0
STALL_TIMEOUT_ENV = "DOCKOPS_STALL_TIMEOUT"
_DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address() -> str:
    """The engine address a client would use (never contacts it).

    Raises:
        InvalidInput: the current context does not exist or cannot be read.
    """
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host
    # What the built-in default context names, without import docker.
    return str(context_params().get("base_url") or _DEFAULT_SOCKET)


def local_socket() -> str | None:
    """The path of the engine's unix socket when the engine is on this machine, else None
    (tcp, ssh): where dockops may speak HTTP to the socket itself."""
    address = engine_address()
    return address.removeprefix("unix://") if address.startswith("unix://") else None


def _config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _named_context() -> tuple[str, str] | None:
    """The docker CLI context chosen by DOCKER_CONTEXT or config.json's currentContext, and what
    chose it; None for the built-in default (the local socket)."""
    name = os.environ.get("DOCKER_CONTEXT")
    source = "DOCKER_CONTEXT"
    if not name:
        path = os.path.join(_config_dir(), "config.json")
        source = f"currentContext in {path}"
        try:
            with open(path, "rb") as config:
                name = json.load(config).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    return None if not name or name == "default" else (str(name), source)


def context_params() -> dict[str, Any]:
    """docker-py client arguments (base_url, tls) for the current docker context, read as the
    docker CLI stores it; {} for the built-in default context. Ignores DOCKER_HOST.

    Raises:
        InvalidInput: the named context does not exist, or its metadata cannot be read.
    """
    named = _named_context()
    if named is None:
        return {}
    name, source = named
    context_id = hashlib.sha256(name.encode()).hexdigest()
    contexts = os.path.join(_config_dir(), "contexts")
    meta_file = os.path.join(contexts, "meta", context_id, "meta.json")
    try:
        with open(meta_file, "rb") as meta:
            data = json.load(meta)
    except FileNotFoundError:
        raise InvalidInput(f'context "{name}" does not exist (set by {source})') from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else "not JSON"
        raise InvalidInput(f'context "{name}" cannot be read: {meta_file}: {reason}') from None
    endpoints = data.get("Endpoints") if isinstance(data, dict) else None
    endpoint = endpoints.get("docker") if isinstance(endpoints, dict) else None
    if not isinstance(endpoint, dict):
        raise InvalidInput(f'context "{name}" cannot be read: {meta_file}: no docker endpoint')
    host = endpoint.get("Host")
    params: dict[str, Any] = {"base_url": host} if host else {}  # no Host: the default socket
    tls = _context_tls(os.path.join(contexts, "tls", context_id, "docker"), endpoint)
    if tls is not None:
        params["tls"] = tls
    return params


def _context_tls(folder: str, endpoint: dict[str, Any]) -> Any:
    """The TLSConfig of a context's docker endpoint (its ca/cert/key files), None without."""
    files = {name: os.path.join(folder, f"{name}.pem") for name in ("ca", "cert", "key")}
    present = {name: path for name, path in files.items() if os.path.isfile(path)}
    if not present:
        return None
    from docker.tls import TLSConfig

    client_cert = (
        (present["cert"], present["key"]) if "cert" in present and "key" in present else None
    )
    return TLSConfig(
        client_cert=client_cert,
        ca_cert=present.get("ca"),
        verify=not endpoint.get("SkipTLSVerify", False),
    )


def docker_py_params() -> dict[str, Any]:
    """docker-py's base_url and tls for the current engine: DOCKER_HOST with DOCKER_TLS_VERIFY
    and DOCKER_CERT_PATH, else the current context (read here, never by docker-py).

    Raises:
        InvalidInput: the current context does not exist or cannot be read.
        EngineUnreachable: the TLS variables name files that are not there.
    """
    import docker

    params: dict[str, Any] = {}
    if not os.environ.get("DOCKER_HOST"):
        params = context_params()
    try:
        return {**params, **docker.utils.kwargs_from_env()}
    except docker.errors.DockerException as exc:
        raise EngineUnreachable(
            f"cannot reach the Docker engine at {engine_address()}: {root_cause(exc)}"
        ) from exc


def request_timeout(long_running: bool = False) -> float:
    override = os.environ.get("DOCKOPS_TIMEOUT")
    if override:
        try:
            return float(override)
        except ValueError:
            raise InvalidInput(f"DOCKOPS_TIMEOUT={override!r} is not a number of seconds") from None
    return LONG_TIMEOUT if long_running else DEFAULT_TIMEOUT


def stall_timeout() -> float:
    """Seconds a pull/push stream may stay silent before it counts as stalled:
    $DOCKOPS_STALL_TIMEOUT, else DEFAULT_STALL_TIMEOUT.

    Raises:
        InvalidInput: the variable is not a positive number of seconds.
    """
    text = os.environ.get(STALL_TIMEOUT_ENV)
    if not text:
        return DEFAULT_STALL_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise InvalidInput(
            f"{STALL_TIMEOUT_ENV}={text!r} is not a positive number of seconds"
        ) from None
    return seconds
