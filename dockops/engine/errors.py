"""What an engine's answer or failure means for a user: one line, one exit code.

Every status the Engine API answers with an error passes through `refused`; every failure of
a transport through `lost`. The engine's own words are kept (said once, on one line), after
what dockops was doing ("remove busybox: ...").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from dockops.engine.wire import Lost
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput


class Refused(EngineRefused):
    """The engine answered with an error status (its text is the message)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Missing(Refused):
    """404: no such image, container, network or volume."""


class Conflict(Refused):
    """409: in use, already exists, or otherwise refused for the object's state."""


def refusal_text(body: bytes, status: int) -> str:
    """The engine's error message in an answer body, on one line, said once."""
    try:
        document = json.loads(body)
        text = str(document.get("message") or "") if isinstance(document, dict) else ""
    except ValueError:
        text = body.decode(errors="replace")
    return said_once(text) or f"HTTP {status}"


def said_once(text: str) -> str:
    """An engine text on one line, said once.

    The 20.10 daemon doubles some 404 texts ("no such image: x: No such image: x"); the
    second half is kept then.
    """
    text = " ".join(text.split())
    parts = text.split(": ")
    half = len(parts) // 2
    if len(parts) % 2 == 0 and [p.lower() for p in parts[:half]] == [
        p.lower() for p in parts[half:]
    ]:
        return ": ".join(parts[half:])
    return text


def refused(status: int, body: bytes, what: str = "") -> Refused:
    """The error for an answer with an error status, prefixed by `what` when given."""
    text = (f"{what}: " if what else "") + refusal_text(body, status)
    if status == 404:
        return Missing(text, status)
    if status == 409:
        return Conflict(text, status)
    return Refused(text, status)


@contextlib.contextmanager
def user_named(kind: str = "", name: str = "", what: str = "") -> Iterator[None]:
    """Requests about a name the user typed: a 404 in the block is bad input (exit 2, a typo),
    not a refusal (exit 1), in the engine's own words; or, given `kind` and `name`, in
    Docker's words on every engine, "WHAT: No such image: NAME" (Podman says "failed to find
    image NAME: docker.io/NAME: No such image", 'no container with name or ID "NAME" found')."""
    try:
        yield
    except Missing as exc:
        message = f"{what}: No such {kind}: {name}" if kind else exc.message
        raise InvalidInput(message) from exc


def lost(exc: Lost, address: str, what: str = "") -> EngineUnreachable:
    """A failed connection, in the words the user reads for any engine."""
    prefix = f"{what}: " if what else ""
    if exc.timed_out:
        return EngineUnreachable(f"{prefix}the Docker engine at {address} did not answer in time")
    return EngineUnreachable(f"{prefix}lost the Docker engine at {address}: {exc.reason}")


def daemon_error(line: Mapping[str, Any]) -> str | None:
    """The failure one JSON line of a daemon's stream reports, on one line (its errorDetail's
    message, else its error); None for a line that reports none."""
    if "errorDetail" not in line and "error" not in line:
        return None
    detail = line.get("errorDetail")
    message = detail.get("message") if isinstance(detail, Mapping) else None
    text = " ".join(str(message or line.get("error") or "").split())
    return text or "unknown error"
