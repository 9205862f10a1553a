"""push-private on the disposable engine, against the registry:2 container that `dockops registry
up` itself runs (host network, 127.0.0.1, a free port): verified, untagged, through faults."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import docker
import pytest

from dockops.core.registry.client import MANIFEST_TYPES
from dockops.retry import RetryPolicy
from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.imagefactory import FakeImage, load_images
from tests.support.registry_server import Registry, fault_proxy, free_port


@pytest.fixture
def up(docker_env: docker.DockerClient, cli: Cli) -> Iterator[str]:
    """A registry made by `dockops registry up` on 127.0.0.1:<free port>; yields its address."""
    port = free_port()
    result = cli(
        "registry", "up", "--name", "dockops-t", "--network", "host",
        "--bind", "127.0.0.1", "--port", str(port), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    yield f"127.0.0.1:{port}"
    cli("registry", "down", "--name", "dockops-t", "--purge")


def _head_digest(address: str, repository: str, tag: str) -> str | None:
    """The registry's digest for repository:tag, asked without dockops's code."""
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers.get("Docker-Content-Digest")


def test_push_private_verifies_and_untags(
    docker_env: docker.DockerClient, up: str, cli: Cli
) -> None:
    # The daemon path: a temporary local tag, pushed by the engine, then removed.
    pushed = cli("push-private", "busybox:latest", "--via", "daemon", "--json")  # config.toml
    assert pushed.code == 0, pushed.err
    doc = json.loads(pushed.out)
    assert doc["reference"] == f"{up}/busybox:latest" and doc["via"] == "daemon"
    assert doc["digest"] == _head_digest(up, "busybox", "latest")
    assert doc["tag_removed"] is True and doc["attempts"] == 1
    assert f"{up}/busybox:latest" not in docker_env.images.get("busybox:latest").tags

    # The default on an engine of this machine is the direct path.
    renamed = cli("push-private", "busybox", "--as", "team/tools:v1", "--keep-tag", "--json")
    assert renamed.code == 0, renamed.err
    ref = f"{up}/team/tools:v1"
    assert (
        json.loads(renamed.out)["reference"] == ref and json.loads(renamed.out)["via"] == "direct"
    )
    assert ref in docker_env.images.get("busybox:latest").tags

    # Pull it back through the engine: the same image.
    docker_env.api.remove_image(ref)
    pulled = cli("pull", ref, "--json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["tags"][0]["digest"] == json.loads(renamed.out)["digest"]
    assert docker_env.images.get(ref).id == docker_env.images.get("busybox:latest").id


def _catalog(address: str) -> list[str]:
    with urllib.request.urlopen(f"http://{address}/v2/_catalog", timeout=10) as answer:
        return list(json.load(answer)["repositories"])


def test_push_private_leaves_a_local_tag_on_another_image_unless_moved(
    docker_env: docker.DockerClient, cli: Cli, reg: Registry
) -> None:
    taken = f"{reg.address}/held/app:1"
    [theirs] = load_images(docker_env, [FakeImage(tags=(taken,), seed="theirs")])
    mine = docker_env.images.get("busybox:latest").id
    push = ["push-private", "busybox:latest", "--registry", reg.address, "--as", "held/app:1"]
    for via in (["--via", "daemon"], ["--via", "direct", "--keep-tag"]):
        refused = cli(*push, *via)
        assert (refused.code, refused.out) == (1, ""), via
        assert refused.err == (
            f"dockops: error: push-private busybox:latest: the local tag {taken} names another "
            f"image, {theirs[7:19]}; --move-tag moves it to {mine[7:19]}, leaving {theirs[7:19]} "
            "untagged (a prune would delete it)\n"
        )
        assert docker_env.images.get(taken).id == theirs
    assert _catalog(reg.address) == []  # refused before anything was pushed

    moved = cli(*push, "--via", "daemon", "--move-tag")
    assert moved.code == 0, moved.err
    assert moved.out.rstrip().endswith(f"; moved the local tag {taken} from {theirs[7:19]}")
    assert docker_env.images.get(taken).id == mine  # moved, and left there
    assert docker_env.images.get(theirs).tags == []

    # The tag on the very image pushed is the user's: pushed from, and kept.
    again = cli(*push, "--via", "daemon", "--json")
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert (doc["moved_from"], doc["tag_removed"]) == (None, False)
    assert taken in docker_env.images.get(mine).tags


def test_push_private_bad_input(docker_env: docker.DockerClient, up: str, cli: Cli) -> None:
    missing = cli("push-private", "no-such-image:1")
    assert missing.code == 2 and "no-such-image" in missing.err
    by_id = cli("push-private", docker_env.images.get("busybox:latest").id)
    assert by_id.code == 2 and "--as NAME:TAG" in by_id.err
    host = cli("push-private", "busybox", "--as", "other.io/x:1")
    assert host.code == 2 and "without a registry" in host.err


def test_push_private_without_registry_is_usage(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("push-private", "busybox")
    assert result.code == 2 and "no private registry" in result.err


def test_push_private_registry_down_exits_4_quickly(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    # Bound but not listening, and held: nothing else can take the port meanwhile, and every
    # connection to it is refused.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{held.getsockname()[1]}"
    started = time.monotonic()
    with held:
        result = cli("push-private", "busybox", "--registry", address)
        elapsed = time.monotonic() - started
        doctor = cli("doctor", "--registry", address)
    assert result.code == 4, result.err
    assert "unreachable" in result.err and result.err.count("\n") == 1
    assert elapsed < 15
    assert doctor.code == 4 and "unreachable" in doctor.out
    assert not [t for t in docker_env.images.get("busybox:latest").tags if address in t]


def _manifest_put(line: str) -> bool:
    return line.startswith("PUT ") and "/manifests/" in line


@pytest.mark.parametrize("fast_retries", [4], indirect=True)
@pytest.mark.parametrize("reset", [False, True], ids=["503", "reset"])
def test_push_private_through_faults(
    docker_env: docker.DockerClient,
    up: str,
    cli: Cli,
    fast_retries: RetryPolicy,
    reset: bool,
    engine: Engine,
) -> None:
    port = int(up.rsplit(":", 1)[1])
    # The daemon retries blob uploads itself (for seconds); a manifest PUT it does not, so
    # that is where the fault makes the push fail and dockops's retries count.
    with fault_proxy(port, faults=2, reset=reset, match=_manifest_put) as proxy:
        result = cli(
            "push-private", "busybox", "--registry", proxy.address, "--via", "daemon", "--json"
        )
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert proxy.faulted == ["PUT /v2/busybox/manifests/latest HTTP/1.1"] * 2
    # podman retries a reset itself (the whole copy, by c/common): dockops sees one attempt.
    assert doc["attempts"] == (1 if reset and engine.kind == "podman" else 3)
    # The registry behind the proxy holds exactly what was pushed.
    assert _head_digest(up, "busybox", "latest") == doc["digest"]


@pytest.mark.parametrize("fast_retries", [4], indirect=True)
def test_push_private_faults_outlasting_retries(
    docker_env: docker.DockerClient, up: str, cli: Cli, fast_retries: RetryPolicy
) -> None:
    port = int(up.rsplit(":", 1)[1])
    with fault_proxy(port, faults=100, match=_manifest_put) as proxy:
        result = cli("push-private", "busybox", "--registry", proxy.address, "--via", "daemon")
    assert result.code == 4, result.err
    assert "gave up after 4 attempts" in result.err
    assert not [t for t in docker_env.images.get("busybox:latest").tags if proxy.address in t]


@pytest.mark.parametrize("fast_retries", [1], indirect=True)
def test_push_private_failing_puts_a_moved_tag_back(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, fast_retries: RetryPolicy
) -> None:
    with fault_proxy(reg.port, faults=100, match=_manifest_put) as proxy:
        taken = f"{proxy.address}/held/app:1"
        [theirs] = load_images(docker_env, [FakeImage(tags=(taken,), seed="theirs")])
        result = cli(
            "push-private", "busybox", "--registry", proxy.address, "--as", "held/app:1",
            "--via", "daemon", "--move-tag",
        )  # fmt: skip
    assert result.code == 4, result.err
    assert docker_env.images.get(taken).id == theirs
    assert taken not in docker_env.images.get("busybox:latest").tags


def test_push_private_to_a_stopped_registry_exits_4(
    docker_env: docker.DockerClient, up: str, cli: Cli
) -> None:
    docker_env.api.stop("dockops-t", timeout=1)
    started = time.monotonic()
    result = cli("push-private", "busybox")
    assert result.code == 4 and f"{up} unreachable" in result.err
    assert time.monotonic() - started < 15
