"""What the prune-images integration tests share: names as each engine stores a loaded image,
the command run with a usage record and lock of the test's own, images loaded in order of use."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import docker

from tests.conftest import Cli
from tests.harness.engine import Engine as HarnessEngine
from tests.support.imagefactory import FakeImage, load_images


def own_repository() -> str:
    """A repository of the test's own. The engines' events name images by name (Podman's
    container events always do, even for a container created by ID), and dockops credits a
    name's use to the image that holds the name now: an earlier test's event must not name
    this test's images."""
    return f"dockops-test/r{uuid.uuid4().hex[:10]}"


def loaded(engine: HarnessEngine, name: str) -> str:
    """A short name a loaded tar gave an image, as the engine stores it and dockops reports
    it: Podman's load puts it under localhost/ (its compat tag and commit do not)."""
    return f"localhost/{name}" if engine.kind == "podman" else name


def prune(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """`prune-images --json` with the test's own lock and usage record."""
    result = cli(
        "prune-images", "--json", "--lock-file", str(tmp_path / "lock"),
        "--usage-file", str(tmp_path / "usage.json"), *args,
    )  # fmt: skip
    assert result.err == "", result.err
    return result.code, json.loads(result.out)


def load_in_order(client: docker.DockerClient, images: list[FakeImage]) -> list[str]:
    """Each image loaded on its own, in this order (least recently used first): a load is a
    use on Docker (its event), not on Podman (its event names no image), so the order of the
    loads and of the creation dates is the same."""
    return [load_images(client, [image])[0] for image in images]
