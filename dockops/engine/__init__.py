"""Everything that talks to a Docker-compatible engine.

`connect()` is the one place a transport is chosen: the fast one (engine/unix.py) when the
engine is a local unix socket, docker-py's (engine/dockerpy.py) for tcp, TLS and ssh. Callers
get an Engine (engine/api.py) and never learn which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockops.engine.api import Engine


def connect(*, long_running: bool = False) -> Engine:
    """The current engine (as the docker CLI chooses it: engine/address.py), answering.

    Args:
        long_running: the long read timeout, for streams (save, load, pull, push).

    Raises:
        EngineUnreachable: nothing answers at the engine address (the message names it), or
            the engine there speaks no API version dockops can use (engine/negotiate.py).
        InvalidInput: a timeout variable is not a number of seconds; the current context does
            not exist or cannot be read.
    """
    from dockops.engine.address import (
        docker_py_params,
        engine_address,
        local_socket,
        request_timeout,
        stall_timeout,
    )
    from dockops.engine.api import Engine
    from dockops.engine.wire import Lost, Transport
    from dockops.errors import EngineUnreachable

    timeout = request_timeout(long_running)
    if long_running:
        stall_timeout()  # a bad value is bad input, said before the engine is asked
    address = engine_address()
    path = local_socket()
    transport: Transport
    try:
        if path is not None:
            from dockops.engine.unix import UnixTransport

            transport = UnixTransport.connect(path, timeout)
        else:
            from dockops.engine.dockerpy import DockerPyTransport

            transport = DockerPyTransport.connect(address, docker_py_params(), timeout)
    except Lost as exc:
        raise EngineUnreachable(
            f"cannot reach the Docker engine at {address}: {exc.reason}"
        ) from exc
    return Engine(transport)
