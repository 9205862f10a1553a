"""registry up/down/status and push-private on the disposable engine, against the registry:2
container that `dockops registry up` itself runs (host network, 127.0.0.1, a free port)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import docker
import pytest

from dockops.config import load_config
from dockops.core.registry.client import MANIFEST_TYPES
from dockops.retry import RetryPolicy
from tests.conftest import Cli
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


def test_up_is_idempotent_and_says_what_differs(docker_env: docker.DockerClient, cli: Cli) -> None:
    port = free_port()
    args = ["registry", "up", "--name", "dockops-u", "--network", "host", "--bind", "127.0.0.1"]
    first = cli(*args, "--port", str(port), "--json")
    assert first.code == 0, first.err
    doc = json.loads(first.out)
    assert doc["state"] == "created" and doc["address"] == f"127.0.0.1:{port}"
    assert doc["data"] == "dockops-u-data"
    inspected = docker_env.api.inspect_container("dockops-u")
    assert inspected["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert inspected["HostConfig"]["NetworkMode"] == "host"
    env = inspected["Config"]["Env"]
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in env
    assert f"REGISTRY_HTTP_ADDR=127.0.0.1:{port}" in env
    mounts = {m["Destination"]: m for m in inspected["Mounts"]}
    assert mounts["/var/lib/registry"]["Name"] == "dockops-u-data"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=5) as answer:
        assert answer.status == 200
    # Recorded as the default registry, which doctor then checks too.
    assert load_config().registry == f"127.0.0.1:{port}"
    doctor = cli("doctor", "--json")
    assert doctor.code == 0, doctor.out
    checks = {c["name"]: c["detail"] for c in json.loads(doctor.out)["checks"]}
    assert checks["registry"] == f"127.0.0.1:{port} answers over http"
    assert checks["trust"] == "plain HTTP: fine on loopback"
    assert checks["credentials"] == "not needed"

    again = cli(*args, "--port", str(port), "--json")
    assert again.code == 0 and json.loads(again.out)["state"] == "already up"
    assert json.loads(again.out)["id"] == doc["id"]

    other = cli(*args, "--port", str(port + 1))
    assert other.code == 1
    assert f"port {port} (asked {port + 1})" in other.err and "registry down" in other.err
    assert other.err.count("\n") == 1

    docker_env.api.stop(doc["id"], timeout=1)
    restarted = cli(*args, "--port", str(port), "--json")
    assert restarted.code == 0 and json.loads(restarted.out)["state"] == "started"


def test_status_down_and_purge(docker_env: docker.DockerClient, cli: Cli) -> None:
    port = free_port()
    args = ["registry", "up", "--name", "dockops-u", "--network", "host", "--bind", "127.0.0.1"]
    assert cli(*args, "--port", str(port)).code == 0
    status = cli("registry", "status", "--name", "dockops-u", "--json")
    assert status.code == 0, status.err
    state = json.loads(status.out)
    assert state["registry"]["state"] == "running" and state["registry"]["restart"] == "always"
    assert state["frontend"]["state"] == "absent" and state["tls"] is False
    assert state["address"] == f"127.0.0.1:{port}" and state["answer"] == "200"

    dry = cli("registry", "down", "--name", "dockops-u", "--dry-run", "--json")
    assert dry.code == 0 and json.loads(dry.out)["removed"] == ["container dockops-u"]
    assert docker_env.api.inspect_container("dockops-u")["State"]["Running"]

    down = cli("registry", "down", "--name", "dockops-u", "--json")
    assert down.code == 0, down.err
    assert json.loads(down.out)["kept"] == ["volume dockops-u-data"]
    with pytest.raises(docker.errors.NotFound):
        docker_env.api.inspect_container("dockops-u")
    assert docker_env.api.inspect_volume("dockops-u-data")

    purge = cli("registry", "down", "--name", "dockops-u", "--purge", "--json")
    assert purge.code == 0 and json.loads(purge.out)["removed"] == ["volume dockops-u-data"]
    with pytest.raises(docker.errors.NotFound):
        docker_env.api.inspect_volume("dockops-u-data")

    gone = cli("registry", "status", "--name", "dockops-u")
    assert gone.code == 2 and "no registry named dockops-u" in gone.err


def test_up_refuses_a_container_it_did_not_make(docker_env: docker.DockerClient, cli: Cli) -> None:
    docker_env.api.create_container(
        "busybox:latest",
        name="dockops-theirs",
        command="true",
        host_config=docker_env.api.create_host_config(network_mode="none"),
    )
    result = cli("registry", "up", "--name", "dockops-theirs", "--network", "host")
    assert result.code == 1 and "not made by dockops" in result.err
    down = cli("registry", "down", "--name", "dockops-theirs")
    assert down.code == 1
    assert docker_env.api.inspect_container("dockops-theirs")


def test_up_data_folder_is_kept_on_purge(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: object
) -> None:
    from pathlib import Path

    data = Path(str(tmp_path)) / "registry-data"
    port = free_port()
    result = cli(
        "registry", "up", "--name", "dockops-d", "--network", "host", "--bind", "127.0.0.1",
        "--port", str(port), "--data", str(data), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"] == str(data)
    down = cli("registry", "down", "--name", "dockops-d", "--purge", "--json")
    assert down.code == 0 and json.loads(down.out)["kept"] == [f"folder {data}"]
    assert data.is_dir()


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
    docker_env: docker.DockerClient, up: str, cli: Cli, fast_retries: RetryPolicy, reset: bool
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
    assert doc["attempts"] == 3
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
