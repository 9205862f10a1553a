"""Which Engine API version dockops speaks with an engine, negotiated as the docker CLI does.

The docker CLI sends its requests under the lower of the engine's newest API version and its
own; dockops does the same with the newest version it is verified against, so a newer engine
(Docker 25 says 1.44) answers in the 1.41 shapes dockops reads. An engine it cannot speak with
is refused at connect, before any request: one whose newest version is below dockops's oldest,
or one whose oldest (MinAPIVersion) is above dockops's newest. Both transports ask this module.

Connect reads the engine's newest version where the docker CLI reads it, from GET /_ping's
`Api-Version` header, and asks GET /version only of an engine whose ping names none: Podman 4.3
answers /version by running runc, conmon and dpkg queries, 0.3 to 1 s on every command, where
its /_ping takes 0.3 ms. A ping names no oldest version; an engine that needs a newer API than
dockops's refuses each request in its own words (exit 1), as it refuses the docker CLI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockops.errors import EngineUnreachable

# Docker 20.10 (Debian 12's docker.io): the oldest engine dockops is tested against, and the
# newest API it is verified against. Podman 4.3's compat API says 1.41 too.
OLDEST = (1, 41)
NEWEST = (1, 41)


class Unsupported(EngineUnreachable):
    """The engine answers, but speaks no Engine API version dockops can use (exit 3, as an
    engine dockops cannot reach: nothing was asked of it)."""


def _parse(text: str) -> tuple[int, int] | None:
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def from_ping(status: int, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """What a /_ping answer says of the engine, as a /version-like document for `negotiate`
    ({"ApiVersion": …, "Podman": bool}); None when it names no API version."""
    offered = headers.get("api-version") if status == 200 else None
    if not offered:
        return None
    # Podman's compat service adds its own API's version; Docker's ping has no such header.
    return {"ApiVersion": offered, "Podman": "libpod-api-version" in headers}


def negotiate(server: Mapping[str, Any], address: str) -> str:
    """The API version to send requests under, from the engine's GET /version document.

    Raises:
        Unsupported: the engine's versions leave none dockops can speak; the message says
            which side is too old, in one line.
    """
    engine = f"the engine at {address}"
    if server.get("Version"):
        engine += f" ({server['Version']})"
    offered = str(server.get("ApiVersion") or "")
    newest = _parse(offered)
    if newest is None:
        raise Unsupported(f"{engine} names no Engine API version dockops can read: {offered!r}")
    if newest < OLDEST:
        raise Unsupported(
            f"{engine} speaks Engine API {offered} at most; dockops needs {_text(OLDEST)} or "
            "newer (Docker 20.10, Podman 4)"
        )
    required = str(server.get("MinAPIVersion") or "")
    oldest = _parse(required)
    if oldest is not None and oldest > NEWEST:
        raise Unsupported(
            f"{engine} needs Engine API {required} or newer; this dockops speaks "
            f"{_text(NEWEST)} at most"
        )
    return _text(min(newest, NEWEST))
