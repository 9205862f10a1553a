"""Engine calls on a named image or container, where "no such image/container" is bad input.

The engine answers an unknown name with 404; for a user that is a typo (exit 2, one line), not a
refusal (exit 1), so these helpers turn it into InvalidInput before engine_errors sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockops.engine.address import engine_errors
from dockops.errors import InvalidInput

if TYPE_CHECKING:
    import docker


@contextlib.contextmanager
def named_errors(what: str) -> Iterator[None]:
    """engine_errors(what), except that a 404 becomes InvalidInput with the engine's text.

    Args:
        what: the operation, prefixed to messages ("history busybox").
    """
    import docker

    with engine_errors(what):
        try:
            yield
        except docker.errors.NotFound as exc:
            raise InvalidInput(f"{what}: {engine_text(exc)}") from exc


def engine_text(exc: docker.errors.APIError) -> str:
    """The engine's explanation on one line, said once (said_once)."""
    return said_once(str(exc.explanation or exc))


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


def inspect_image(client: docker.DockerClient, reference: str, what: str) -> dict[str, Any]:
    """The engine's inspect document of an image.

    Args:
        client: the engine.
        reference: an image reference or ID.
        what: the operation, for messages.

    Returns:
        The `GET /images/{name}/json` document.

    Raises:
        InvalidInput: no such image.
        EngineRefused, EngineUnreachable: from the engine.
    """
    with named_errors(what):
        found: dict[str, Any] = client.api.inspect_image(reference)
    return found
