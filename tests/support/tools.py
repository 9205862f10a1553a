"""Small helpers the engine tests share: build an image by commit, run the docker CLI, read
the one error line of a failed command."""

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


def make_image(client: docker.DockerClient, ref: str, megabytes: int = 0) -> str:
    """A small committed image with a marker file (and `megabytes` of random data)."""
    script = f"echo {ref} > /marker"
    if megabytes:
        script += f" && dd if=/dev/urandom of=/random bs=1048576 count={megabytes} 2>/dev/null"
    box = client.containers.run(
        "busybox:latest", ["sh", "-c", script], network_mode="none", detach=True
    )
    assert box.wait(timeout=60)["StatusCode"] == 0
    repository, tag = ref.rsplit(":", 1)
    image = box.commit(repository=repository, tag=tag, changes=['CMD ["cat", "/marker"]'])
    box.remove()
    return str(image.id)


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


def error_line(result: tuple[int, str, str], code: int, *, progress: bool = False) -> str:
    """Assert that a command exited `code` with nothing on stdout and exactly one
    `dockops: error:` line, the last on stderr, and no traceback; return that line. With
    `progress`, plain progress lines may come before it (stderr is no TTY in tests)."""
    got, out, err = result
    assert (got, out) == (code, ""), result
    lines = err.rstrip("\n").splitlines()
    assert lines and lines[-1].startswith("dockops: error: ") and "Traceback" not in err, err
    assert sum(line.startswith("dockops: error") for line in lines) == 1, err
    assert progress or len(lines) == 1, err
    return lines[-1]
