"""The daemon's pull and push streams, with a bound on how long one may stay silent.

A registry that accepts a request and never answers makes the daemon wait forever (its registry
client has no read timeout) and say nothing: the command would hang. So the request is made
here with the stall timeout as the read timeout of the stream: a stream silent that long is a
stall (exit 4). Hanging up is then all there is to do. Seen on the 20.10 daemon: a registry
request already hung stays in the daemon until the registry closes that connection; a rerun of
a pull works at once, a rerun of a push waits on the hung upload of the same layer (and stalls
again, bounded) until the registry lets it go.

Podman (4.3) differs on both sides of that bound. It abandons the registry request when dockops
hangs up, so a rerun of a stalled push goes through at once. But it reports no progress while it
copies: its push says nothing between "The push refers to repository" and the digest line, its
libpod pull nothing while one blob downloads. There the stall timeout also bounds the silent copy
of the whole push, or of one layer: a push of large layers over a slow link needs a larger one.

The daemon also reports a failure inside a 200 answer, as a JSON line with `errorDetail`
(pull, push, load, import): `engine.errors.daemon_error` reads one, for every stream that may
hold one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dockops.engine.address import STALL_TIMEOUT_ENV, engine_address, stall_timeout
from dockops.engine.wire import Lost, json_lines
from dockops.errors import DockopsError, EngineRefused, EngineUnreachable, RegistryUnreachable

if TYPE_CHECKING:
    from dockops.engine.api import Engine


class Stalled(Exception):
    """A stream that said nothing for `seconds`; `engine_answers` tells whose silence it was."""

    def __init__(
        self, registry: str, seconds: float, engine_answers: bool, address: str | None = None
    ) -> None:
        super().__init__(f"no progress for {seconds:g} s")
        self.registry = registry
        self.seconds = seconds
        self.engine_answers = engine_answers
        self.address = address

    def error(self, what: str) -> DockopsError:
        if not self.engine_answers:
            return EngineUnreachable(
                f"{what}: the Docker engine at {self.address or engine_address()} stopped "
                f"answering ({self.seconds:g} s without a word)"
            )
        # Nearly always a registry that accepted a request and never answered.
        return RegistryUnreachable(
            f"{what}: registry {self.registry} stalled: no progress for {self.seconds:g} s "
            f"({STALL_TIMEOUT_ENV}); abandoned, run it again when the registry answers"
        )


def registry_auth(auth: Mapping[str, str]) -> str:
    """The X-Registry-Auth header for `auth` (an auth config: username, password,
    serveraddress[, identitytoken]), encoded as the docker CLI does: base64url of its JSON."""
    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode("ascii")


def daemon_lines(
    engine: Engine,
    path: str,
    params: dict[str, Any],
    repository: str,
    registry: str,
    *,
    auth: Mapping[str, str] | None = None,
    json_body: bool = False,
) -> Iterator[dict[str, Any]]:
    """POST a pull or push and yield the daemon's lines, with the stall timeout as the read
    timeout of the stream.

    Args:
        engine: the engine.
        path: the Engine API path; "{0}" in it is replaced by `repository`.
        params: the query.
        repository: the image's repository.
        registry: the registry it names, for the stall message.
        auth: the credentials for that registry (registry_auth), or None for none.
        json_body: send an empty JSON body, as docker-py's push does.

    Raises:
        Stalled: no line (no byte) for the stall timeout.
        Refused: the Engine API refused the request (its text, no prefix).
        EngineRefused: a line that is not JSON.
        EngineUnreachable: lost the engine.
    """
    seconds = stall_timeout()
    headers = {"X-Registry-Auth": registry_auth(auth)} if auth else None
    target = path.format(quote(repository, safe="/:@"))
    try:
        with engine.stream(
            "POST",
            target,
            params=params,
            json_body={} if json_body else None,
            headers=headers,
            timeout=seconds,
        ) as body:
            # Leaving the block hangs up: that is how the daemon learns nobody reads (#2116:
            # it then stops at its next step).
            yield from json_lines(body.pieces)
    except Lost as exc:  # only a stall leaves engine.stream as Lost
        raise Stalled(registry, seconds, engine.answers(), engine.address) from exc
    except ValueError as exc:
        raise EngineRefused(f"the engine's answer is not JSON lines: {exc}") from exc
