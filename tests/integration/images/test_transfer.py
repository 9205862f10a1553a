"""pull and push end to end: a registry:2 container on a loopback port, a fault-injecting proxy in
front of it, and the daemon's real streams.

On podman (4.3) the loopback registry is reached because dockops says tlsVerify=false (Docker
takes 127.0.0.0/8 for plain HTTP by itself); what podman says differs, and each test pins it:
its push names no layer, its libpod pull no final status, its texts are c/image's.
"""

from __future__ import annotations

import json
import time

import docker
import pytest

from dockops.retry import RetryPolicy
from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import Registry, fault_proxy, free_port
from tests.support.tools import error_line


def _busybox_id(client: docker.DockerClient) -> str:
    return str(client.images.get("busybox:latest").id)


def test_push_remove_pull_round_trip(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, engine: Engine
) -> None:
    ref = f"{reg.address}/dockops/bb:v1"
    docker_env.api.tag("busybox:latest", f"{reg.address}/dockops/bb", "v1")
    pushed = cli("push", ref, "--json")
    assert pushed.code == 0, pushed.err
    doc = json.loads(pushed.out)
    assert set(doc) == {"action", "reference", "tags", "layers", "status", "attempts"}
    assert doc["action"] == "push" and doc["reference"] == ref and doc["attempts"] == 1
    [tag] = doc["tags"]
    assert tag["tag"] == "v1" and tag["digest"].startswith("sha256:")
    assert set(tag) == {"tag", "digest", "id", "size"}
    if engine.kind == "podman":
        # podman's push stream names no layer: only where it pushes, and the digest line,
        # whose size is the local manifest's, not the pushed one's: dockops gives none.
        assert doc["layers"] == [] and tag["size"] is None
        assert pushed.err.startswith(
            f"{reg.address}/dockops/bb: The push refers to repository [{ref}]\n"
            f"{reg.address}/dockops/bb: v1: digest: {tag['digest']} size: "
        )
        assert pushed.err.count("\n") == 2
    else:
        assert tag["size"] > 0
        # Plain progress lines on stderr (not a TTY), one per layer status change.
        assert f"{doc['layers'][0]}: Pushed\n" in pushed.err

    docker_env.api.remove_image(ref)
    pulled = cli("pull", ref, "--json")
    assert pulled.code == 0, pulled.err
    back = json.loads(pulled.out)
    assert back["action"] == "pull" and back["reference"] == ref
    assert back["tags"] == [
        {"tag": "v1", "digest": tag["digest"], "id": _busybox_id(docker_env), "size": None}
    ]
    assert docker_env.images.get(ref).id == _busybox_id(docker_env)
    human = cli("pull", ref)
    if engine.kind == "podman":
        # Its libpod pull ends with the image IDs and no word on whether it was news; the
        # digest is the one podman recorded (RepoDigests), the layers its "Copying blob" lines.
        assert back["status"] is None and back["layers"]
        assert f"{back['layers'][0]}: Copying blob\n" in pulled.err
        assert human.code == 0 and human.out.endswith(f"pulled {ref}\n")
        return
    assert back["status"].startswith("Downloaded newer image for")
    assert human.code == 0 and f"Image is up to date for {ref}" in human.out


def test_all_tags_push_and_pull(docker_env: docker.DockerClient, reg: Registry, cli: Cli) -> None:
    repo = f"{reg.address}/dockops/many"
    for tag in ("a", "b"):
        docker_env.api.tag("busybox:latest", repo, tag)
    pushed = cli("push", repo, "--all-tags", "--json")
    assert pushed.code == 0, pushed.err
    assert sorted(t["tag"] for t in json.loads(pushed.out)["tags"]) == ["a", "b"]
    for tag in ("a", "b"):
        docker_env.api.remove_image(f"{repo}:{tag}")
    pulled = cli("pull", repo, "-a", "--json")
    assert pulled.code == 0, pulled.err
    assert sorted(t["tag"] for t in json.loads(pulled.out)["tags"]) == ["a", "b"]
    assert {f"{repo}:a", f"{repo}:b"} <= set(docker_env.images.get("busybox:latest").tags)
    both = cli("pull", f"{repo}:a", "--all-tags")
    assert both.code == 2 and "without tag or digest" in both.err


def test_pull_of_a_missing_tag_reports_the_daemons_text(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, engine: Engine
) -> None:
    docker_env.api.tag("busybox:latest", f"{reg.address}/dockops/bb", "v1")
    assert cli("push", f"{reg.address}/dockops/bb:v1", "--quiet").code == 0
    missing = cli("pull", f"{reg.address}/dockops/bb:nope")
    assert missing.code == 1
    if engine.kind == "podman":
        assert error_line(missing, 1, progress=True) == (
            f"dockops: error: pull {reg.address}/dockops/bb:nope: initializing source "
            f"docker://{reg.address}/dockops/bb:nope: reading manifest nope in "
            f"{reg.address}/dockops/bb: manifest unknown: manifest unknown"
        )
        return
    assert missing.err.endswith(
        f"dockops: error: pull {reg.address}/dockops/bb:nope: manifest for "
        f"{reg.address}/dockops/bb:nope not found: manifest unknown: manifest unknown\n"
    )


def test_pull_from_a_closed_port_is_exit_4_at_once(
    docker_env: docker.DockerClient, cli: Cli, engine: Engine
) -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = cli("pull", f"{address}/dockops/bb:v1")
    assert result.code == 4
    if engine.kind == "podman":  # after its "Trying to pull" line, over http as asked
        assert error_line(result, 4, progress=True) == (
            f"dockops: error: pull {address}/dockops/bb:v1: initializing source "
            f"docker://{address}/dockops/bb:v1: pinging container registry {address}: "
            f'Get "http://{address}/v2/": dial tcp {address}: connect: connection refused'
        )
    else:
        assert result.err == (
            f'dockops: error: pull {address}/dockops/bb:v1: Get "http://{address}/v2/": dial '
            f"tcp {address}: connect: connection refused\n"
        )
    assert time.monotonic() - started < 5  # connection refused is not retried


def test_push_to_a_stopped_registry_fails_from_the_stream(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, engine: Engine
) -> None:
    docker_env.api.tag("busybox:latest", f"{reg.address}/dockops/bb", "v1")
    docker_env.api.stop(reg.container_id, timeout=1)
    # docker-py's images.push() would return this stream as text and raise nothing.
    result = cli("push", f"{reg.address}/dockops/bb:v1", "--json")
    assert (result.code, result.out) == (4, "")
    refused = f'Get "http://{reg.address}/v2/": dial tcp {reg.address}: connect: connection refused'
    if engine.kind == "podman":
        layer = docker_env.images.get("busybox:latest").attrs["RootFS"]["Layers"][0]
        refused = (
            f"trying to reuse blob {layer} at destination: pinging container registry "
            f"{reg.address}: {refused}"
        )
    assert result.err.splitlines()[-1] == (
        f"dockops: error: push {reg.address}/dockops/bb:v1: {refused}"
    )


def test_push_of_an_unknown_image_is_bad_input(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("push", f"127.0.0.1:{free_port()}/dockops/none:v1")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("dockops: error: push ") and "No such image" in result.err


def test_pull_retries_a_503_and_succeeds(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    fast_retries: RetryPolicy,
    engine: Engine,
) -> None:
    docker_env.api.tag("busybox:latest", f"{reg.address}/dockops/bb", "v1")
    assert cli("push", f"{reg.address}/dockops/bb:v1", "--quiet").code == 0
    # The daemon falls back from HEAD to GET on its own; 503 on both fails its attempt.
    # podman asks GET alone, once per attempt.
    faults = 1 if engine.kind == "podman" else 2
    with fault_proxy(reg.port, faults=faults, match=lambda line: "/manifests/" in line) as proxy:
        result = cli("pull", f"{proxy.address}/dockops/bb:v1", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["attempts"] == 2
    assert len(proxy.faulted) == faults
    said = "received unexpected HTTP status: 503 Service Unavailable"
    if engine.kind == "podman":
        said = (
            f"initializing source docker://{proxy.address}/dockops/bb:v1: reading manifest v1 "
            f"in {proxy.address}/dockops/bb: {said}"
        )
    assert f"attempt 1/3 failed ({said})" in result.err


def test_pull_retries_are_bounded(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    fast_retries: RetryPolicy,
    engine: Engine,
) -> None:
    with fault_proxy(reg.port, faults=100, match=lambda line: "/manifests/" in line) as proxy:
        result = cli("pull", f"{proxy.address}/dockops/bb:v1")
    assert result.code == 4
    said = ""
    if engine.kind == "podman":
        said = (
            f"initializing source docker://{proxy.address}/dockops/bb:v1: reading manifest v1 "
            f"in {proxy.address}/dockops/bb: "
        )
    assert result.err.splitlines()[-1] == (
        f"dockops: error: pull {proxy.address}/dockops/bb:v1: {said}received unexpected HTTP "
        "status: 503 Service Unavailable (gave up after 3 attempts)"
    )
    manifest_gets = [r for r in proxy.requests if r.startswith("GET ") and "/manifests/" in r]
    assert len(manifest_gets) == fast_retries.attempts


def test_pull_is_not_retried_on_a_429_forever_nor_on_a_404(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    fast_retries: RetryPolicy,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if engine.kind == "podman":
        # podman backs off on a 429 by itself (c/image: 2, 4, 8, 16 s per request, then its
        # pull is retried whole), saying nothing: the stall bound is what ends it.
        monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "4")
    with fault_proxy(
        reg.port,
        faults=100,
        status="429 Too Many Requests",
        body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
        match=lambda line: "/manifests/" in line,
    ) as proxy:
        limited = cli("pull", f"{proxy.address}/dockops/bb:v1")
    if engine.kind == "podman":
        assert error_line(limited, 4, progress=True) == (
            f"dockops: error: pull {proxy.address}/dockops/bb:v1: registry {proxy.address} "
            "stalled: no progress for 4 s (DOCKOPS_STALL_TIMEOUT); abandoned, run it again when "
            "the registry answers"
        )
        assert "attempt" not in limited.err
    else:
        assert limited.code == 4 and limited.err.endswith(
            "toomanyrequests: slow down (gave up after 3 attempts)\n"
        )
    with fault_proxy(reg.port, faults=0) as proxy:
        missing = cli("pull", f"{proxy.address}/dockops/bb:v1")
    assert missing.code == 1 and "attempt" not in missing.err
    # One try: HEAD, then GET (docker); GET alone (podman).
    asked = len([r for r in proxy.requests if "/manifests/" in r])
    assert asked == (1 if engine.kind == "podman" else 2)


def test_push_retries_an_error_in_the_stream(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, fast_retries: RetryPolicy
) -> None:
    with fault_proxy(
        reg.port, faults=1, match=lambda line: line.startswith("PUT ") and "/manifests/" in line
    ) as proxy:
        docker_env.api.tag("busybox:latest", f"{proxy.address}/dockops/bb", "v1")
        result = cli("push", f"{proxy.address}/dockops/bb:v1", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["attempts"] == 2 and doc["tags"][0]["digest"].startswith("sha256:")
    assert proxy.faulted == ["PUT /v2/dockops/bb/manifests/v1 HTTP/1.1"]


def test_progress_bars_on_a_terminal(
    docker_env: docker.DockerClient, reg: Registry, engine: Engine
) -> None:
    """With stderr a TTY, each layer gets a rich bar (elsewhere: plain lines, as above); podman
    names no layer in its push, so its one bar is the repository's."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    ref = f"{reg.address}/dockops/tty:v1"
    docker_env.api.tag("busybox:latest", f"{reg.address}/dockops/tty", "v1")
    layer = docker_env.images.get("busybox:latest").attrs["RootFS"]["Layers"][0]
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:  # drain the terminal while the command runs, so it never blocks
        try:
            while chunk := os.read(master, 65536):
                chunks.append(chunk)
        except OSError:  # EIO: the other end is closed and everything was read
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = subprocess.run(
        [sys.executable, "-m", "dockops", "push", ref],
        stderr=slave,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert done.returncode == 0 and done.stdout.endswith(f"pushed {ref}\n")
    text = b"".join(chunks).decode(errors="replace")
    assert "━" in text and "\x1b[" in text  # rich's bar, a live display
    if engine.kind == "podman":
        assert f"The push refers to repository [{ref}]" in text and layer[7:19] not in text
        return
    assert "Pushed" in text  # a bar per layer, not plain lines
    assert f"{layer[7:19]}: Pushed\n" not in text
