"""The daemon's pull and push streams, with a bound on how long one may stay silent.

A registry that accepts a request and never answers makes the daemon wait forever (its registry
client has no read timeout) and say nothing, and docker-py reads pull streams with no timeout at
all: the command would hang. So the request is made here with the stall timeout as the socket's
read timeout: a stream silent that long is a stall (exit 4). Hanging up is then all there is to
do. Seen on the 20.10 daemon: a registry request already hung stays in the daemon until the
registry closes that connection; a rerun of a pull works at once, a rerun of a push waits on the
hung upload of the same layer (and stalls again, bounded) until the registry lets it go.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockops.engine.address import STALL_TIMEOUT_ENV, engine_address, engine_answers, stall_timeout
from dockops.errors import DockopsError, EngineUnreachable, RegistryUnreachable

if TYPE_CHECKING:
    import docker


class Stalled(Exception):
    """A stream that said nothing for `seconds`; `engine_answers` tells whose silence it was."""

    def __init__(self, registry: str, seconds: float, engine_answers: bool) -> None:
        super().__init__(f"no progress for {seconds:g} s")
        self.registry = registry
        self.seconds = seconds
        self.engine_answers = engine_answers

    def error(self, what: str) -> DockopsError:
        if not self.engine_answers:
            return EngineUnreachable(
                f"{what}: the Docker engine at {engine_address()} stopped answering "
                f"({self.seconds:g} s without a word)"
            )
        # Nearly always a registry that accepted a request and never answered.
        return RegistryUnreachable(
            f"{what}: registry {self.registry} stalled: no progress for {self.seconds:g} s "
            f"({STALL_TIMEOUT_ENV}); abandoned, run it again when the registry answers"
        )


def daemon_lines(
    client: docker.DockerClient,
    path: str,
    params: dict[str, Any],
    repository: str,
    *,
    json_body: bool = False,
) -> Iterator[dict[str, Any]]:
    """POST a pull or push as docker-py does (same auth header) and yield the daemon's lines,
    but with the stall timeout as the socket's read timeout: docker-py sends pulls with none,
    so a silent daemon would be waited on forever.

    Raises:
        Stalled: no line (no byte) for the stall timeout.
        docker.errors.APIError: the Engine API refused the request.
    """
    import requests
    import urllib3
    from docker import auth

    seconds = stall_timeout()
    api = client.api
    registry, _ = auth.resolve_repository_name(repository)
    headers = {"Content-Type": "application/json"} if json_body else {}
    header = auth.get_config_header(api, registry)
    if header:
        headers["X-Registry-Auth"] = header
    try:
        response = api._post(
            api._url(path, repository),
            params=params,
            headers=headers,
            data="{}" if json_body else None,  # as docker-py's push (_post_json) and pull send
            stream=True,
            timeout=seconds,
        )
        try:
            api._raise_for_status(response)
            yield from api._stream_helper(response, decode=True)
        finally:
            # Hanging up is how the daemon learns nobody reads (#2116: it then stops at its
            # next step); a dropped generator would leak the socket (docker-py#3282).
            response.close()
    except (
        requests.exceptions.ReadTimeout,  # silent before the first line
        urllib3.exceptions.ReadTimeoutError,  # silent after some lines
        TimeoutError,
    ) as exc:
        raise Stalled(registry, seconds, engine_answers(client)) from exc
