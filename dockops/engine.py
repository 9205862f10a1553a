"""The one place that builds a docker-py client, and turns docker-py errors into ours.

The engine is chosen as `docker.from_env()` chooses it: DOCKER_HOST (with DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH), else the current docker context (DOCKER_CONTEXT or currentContext in the
docker config), else the local socket. The API version is negotiated with the daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dockops.errors import DockopsError, EngineRefused, EngineUnreachable, InvalidInput

if TYPE_CHECKING:
    import docker

# docker-py's own default (60 s) applies to every socket read; a save or load of a large image
# waits longer than that between chunks while the daemon works, so long operations get more.
DEFAULT_TIMEOUT = 60.0
LONG_TIMEOUT = 3600.0
# A pull or push stream that says nothing for this long is stalled (see core/transfer.py). The
# daemon reports progress at least every 100 ms while bytes move, so two minutes of silence is
# a registry that accepted a request and never answered, which the daemon would wait on forever.
DEFAULT_STALL_TIMEOUT = 120.0
STALL_TIMEOUT_ENV = "DOCKOPS_STALL_TIMEOUT"
_DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address() -> str:
    """The engine address a client would use (never contacts it)."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host
    if _named_context() is None:
        return _DEFAULT_SOCKET  # what the built-in default context names, without import docker
    with contextlib.suppress(Exception):
        from docker.context import ContextAPI

        base_url = ContextAPI.kwargs_from_context().get("base_url")
        if base_url:
            return str(base_url)
    return _DEFAULT_SOCKET


def local_socket() -> str | None:
    """The path of the engine's unix socket when the engine is on this machine, else None
    (tcp, ssh): where dockops may speak HTTP to the socket itself."""
    address = engine_address()
    return address.removeprefix("unix://") if address.startswith("unix://") else None


def _named_context() -> str | None:
    """The docker CLI context chosen by DOCKER_CONTEXT or config.json's currentContext, as
    docker-py reads them; None for the built-in default (the local socket)."""
    name = os.environ.get("DOCKER_CONTEXT")
    if not name:
        folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
        try:
            with open(os.path.join(folder, "config.json"), "rb") as config:
                name = json.load(config).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    return None if not name or name == "default" else str(name)


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


def engine_answers(client: docker.DockerClient, timeout: float = 5.0) -> bool:
    """True when the engine answers /_ping within `timeout`: tells a stream the engine cut or
    left silent (engine gone, exit 3) from one the engine ended on purpose."""
    api = client.api
    try:
        response = api._get(api._url("/_ping"), timeout=timeout)
    except Exception:  # any failure to get an answer means: not answering
        return False
    with contextlib.closing(response):
        return bool(response.ok)


def get_client(*, long_running: bool = False) -> docker.DockerClient:
    """Build a client for the current engine and check that it answers.

    Args:
        long_running: use the long read timeout, for streams (save, load, push, pull).

    Raises:
        EngineUnreachable: nothing answers at the engine address (the message names it).
        InvalidInput: DOCKOPS_TIMEOUT is not a number.
    """
    import docker

    timeout = request_timeout(long_running)
    if long_running:
        stall_timeout()  # a bad value is bad input, said before the engine is asked
    try:
        # version="auto" makes docker-py ask the daemon (GET /version) before anything else,
        # which doubles as the reachability check.
        return docker.from_env(version="auto", timeout=int(timeout))
    except docker.errors.DockerException as exc:
        raise EngineUnreachable(
            f"cannot reach the Docker engine at {engine_address()}: {root_cause(exc)}"
        ) from exc


def root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason of a requests/urllib3 error chain, as one short line."""
    from http.client import RemoteDisconnected

    seen: set[int] = set()
    stack: list[object] = [exc]
    hung_up = False
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
            continue
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
        # An engine that goes away between two requests: no errno, only http.client's words
        # ("('Connection aborted.', RemoteDisconnected(...))" is no line for a user).
        hung_up = hung_up or isinstance(item, RemoteDisconnected)
        stack.extend([item.__cause__, item.__context__, *item.args])
    if hung_up:
        return "connection closed without an answer"
    return " ".join(str(exc).split())


@contextlib.contextmanager
def engine_errors(what: str | None = None) -> Iterator[None]:
    """Translate docker-py and requests errors raised in the block into DockopsErrors.

    Args:
        what: a short description of the operation, prefixed to refusals ("remove busybox").
    """
    import docker
    import requests
    import urllib3

    prefix = f"{what}: " if what else ""
    try:
        yield
    except DockopsError:
        raise
    except requests.exceptions.Timeout as exc:
        raise EngineUnreachable(
            f"{prefix}the Docker engine at {engine_address()} did not answer in time"
        ) from exc
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.HTTPError,
    ) as exc:
        # The last two: a stream (save, export, pull) cut off mid-body.
        raise EngineUnreachable(
            f"{prefix}lost the Docker engine at {engine_address()}: {root_cause(exc)}"
        ) from exc
    except docker.errors.APIError as exc:
        text = exc.explanation or str(exc)
        raise EngineRefused(f"{prefix}{' '.join(str(text).split())}") from exc
    except docker.errors.DockerException as exc:
        raise EngineRefused(f"{prefix}{' '.join(str(exc).split())}") from exc
