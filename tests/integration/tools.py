"""Small helpers the engine tests share: build an image by commit, run the docker CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


def commit(client: docker.DockerClient, ref: str, script: str, base: str = "busybox:latest") -> str:
    """Run `script` in a container of `base` (no network), commit it as `ref`; its image ID."""
    box = client.containers.run(base, ["sh", "-c", script], network_mode="none", detach=True)
    try:
        assert box.wait()["StatusCode"] == 0
        repository, tag = ref.rsplit(":", 1)
        return str(box.commit(repository, tag).id)
    finally:
        box.remove(force=True)


def docker_cli(
    host: str, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The plain docker CLI against the engine at `host` (it must behave as dockops expects)."""
    return subprocess.run(
        [shutil.which("docker") or "/usr/bin/docker", *args],
        env={**os.environ, "DOCKER_HOST": host},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
