"""Running a container to its end and reading what it printed, the same way on both engines."""

from __future__ import annotations

from typing import Any


def output_of(client: Any, image: str, command: list[str] | None = None) -> bytes:
    """What a container of `image` writes to stdout, run to its end; the container is removed.

    Not docker-py's attached `containers.run`: on Podman 4.3 an attach to a container that
    exits at once can miss the end of its stream and wait forever (seen as a 300 s timeout in
    a clean-clone run). Create, start, wait, then read the logs, which both engines keep.
    """
    box = client.containers.create(image, command, network_mode="none")
    try:
        box.start()
        box.wait(timeout=60)
        return bytes(box.logs(stdout=True, stderr=False))
    finally:
        box.remove(force=True)
