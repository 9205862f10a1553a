"""Registry faults on the disposable engine and loopback only: a registry that stalls (accepts a
request, then says nothing), connection resets on pull and push, and the exit code and single
line for a registry that is down. The 503 cases and push-private's resets are in
test_transfer.py and registry/test_push.py.

Podman differs in what it does with the registry request once dockops hangs up: it abandons it
(the held connection is closed), where the 20.10 daemon keeps it until the registry lets go.
And it retries a connection reset itself (c/common's retry of the whole copy), so dockops sees
one attempt where the daemon fails and dockops tries again."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import docker
import pytest

from dockops import retry
from dockops.core.registry import client as registry_api
from dockops.core.registry.client import MANIFEST_TYPES
from dockops.retry import RetryPolicy
from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import FaultProxy, Registry, fault_proxy, free_port
from tests.support.tools import error_line, make_image

STALL = 3.0  # DOCKOPS_STALL_TIMEOUT in these tests
BOUND = STALL + 12.0  # a stall ends well within this (start-up and the engine check included)


@pytest.fixture
def stall_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", f"{STALL:g}")
    return STALL


def _manifest_get(line: str) -> bool:
    return "/manifests/" in line and not line.startswith("PUT ")


def _blob_get(line: str) -> bool:
    return line.startswith("GET ") and "/blobs/sha256:" in line


def _manifest_put(line: str) -> bool:
    return line.startswith("PUT ") and "/manifests/" in line


def _upload_start(line: str) -> bool:
    return line.startswith("POST ") and "/blobs/uploads/" in line


def _head_digest(address: str, repository: str, tag: str) -> str | None:
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _released(proxy: FaultProxy, seconds: float = 10.0) -> list[str]:
    """The stalled requests whose client hung up, once there are as many as were stalled."""
    deadline = time.monotonic() + seconds
    while len(proxy.released) < len(proxy.faulted) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proxy.released


def _has(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _seeded(client: docker.DockerClient, reg: Registry, cli: Cli, ref: str) -> str:
    """Push an image with a layer of its own to `reg` as `ref` (a path in it), then remove it
    locally, so a pull has to fetch that layer; returns its manifest digest."""
    image_id = make_image(client, f"{reg.address}/{ref}", megabytes=2)
    pushed = cli("push", f"{reg.address}/{ref}", "--quiet")
    assert pushed.code == 0, pushed.err
    client.api.remove_image(image_id, force=True)
    digest = _head_digest(reg.address, *ref.split(":"))
    assert digest
    return digest


@pytest.mark.parametrize(
    ("where", "match"),
    [("before any line", _manifest_get), ("mid-stream", _blob_get)],
    ids=["manifest", "blob"],
)
def test_a_stalled_pull_exits_4_in_bounded_time_and_a_rerun_pulls(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    stall_timeout: float,
    where: str,
    match: Callable[[str], bool],
    engine: Engine,
) -> None:
    digest = _seeded(docker_env, reg, cli, "dockops/stall:v1")
    with fault_proxy(reg.port, faults=1, stall=True, match=match) as proxy:
        ref = f"{proxy.address}/dockops/stall:v1"
        started = time.monotonic()
        stalled = cli("pull", ref)
        took = time.monotonic() - started
        assert proxy.stalled.is_set() and len(proxy.faulted) == 1
        assert error_line(stalled, 4, progress=True) == (
            f"dockops: error: pull {ref}: registry {proxy.address} stalled: no progress for "
            f"{stall_timeout:g} s (DOCKOPS_STALL_TIMEOUT); abandoned, run it again when the "
            "registry answers"
        )
        assert "Traceback" not in stalled.err
        assert stall_timeout <= took < BOUND, took
        if where == "mid-stream":  # the daemon had said something before it went quiet
            # podman names a blob only once its answer has begun ("Copying blob").
            said = "Trying to pull" if engine.kind == "podman" else "Pulling fs layer"
            assert said in stalled.err
        assert not _has(docker_env, ref)  # nothing half-pulled under that name
        # The stalled request still hangs in the daemon (the proxy holds it), yet a rerun
        # through the same, now healthy, registry pulls at once.
        again = cli("pull", ref, "--json")
        assert again.code == 0, again.err
        assert json.loads(again.out)["tags"][0]["digest"] == digest
        if engine.kind == "podman":  # it dropped the request when dockops hung up
            assert _released(proxy) == proxy.faulted
        else:
            assert proxy.released == []


def test_a_stalled_manifest_push_exits_4_and_a_rerun_pushes(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, stall_timeout: float
) -> None:
    with fault_proxy(reg.port, faults=1, stall=True, match=_manifest_put) as proxy:
        ref = f"{proxy.address}/dockops/pushstall:v1"
        make_image(docker_env, ref, megabytes=2)
        started = time.monotonic()
        stalled = cli("push", ref)
        took = time.monotonic() - started
        line = error_line(stalled, 4, progress=True)
        assert f"registry {proxy.address} stalled: no progress for 3 s" in line
        assert stall_timeout <= took < BOUND, took
        assert _head_digest(reg.address, "dockops/pushstall", "v1") is None  # no half push
        again = cli("push", ref, "--json")
        assert again.code == 0, again.err
        pushed = json.loads(again.out)["tags"][0]["digest"]
    assert _head_digest(reg.address, "dockops/pushstall", "v1") == pushed


def test_a_stalled_layer_upload_stays_bounded_until_the_registry_lets_go(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    stall_timeout: float,
    engine: Engine,
) -> None:
    """The daemon's upload of a layer hangs on the silent registry, and a second push of that
    layer waits on the same upload inside the daemon (moby's transfer manager shares it).
    dockops cannot cancel it; what it promises is that each try ends in bounded time, and that
    once the registry drops the hung connection (as a restarted one does) a rerun pushes.
    podman drops the upload itself when dockops hangs up: the rerun pushes at once."""
    with fault_proxy(reg.port, faults=1, stall=True, match=_upload_start) as proxy:
        ref = f"{proxy.address}/dockops/upload:v1"
        make_image(docker_env, ref, megabytes=2)
        if engine.kind == "podman":
            started = time.monotonic()
            stalled = cli("push", ref)
            assert "stalled: no progress" in error_line(stalled, 4, progress=True)
            assert time.monotonic() - started < BOUND
            assert _released(proxy) == proxy.faulted
            again = cli("push", ref, "--json")
            assert again.code == 0, again.err
            pushed = json.loads(again.out)["tags"][0]["digest"]
            assert _head_digest(reg.address, "dockops/upload", "v1") == pushed
            return
        for _ in range(2):
            started = time.monotonic()
            stalled = cli("push", ref)
            assert "stalled: no progress" in error_line(stalled, 4, progress=True)
            assert time.monotonic() - started < BOUND
        assert len(proxy.faulted) == 1  # the second try stalled on the daemon's hung upload
        proxy.drop_stalled()
        again = cli("push", ref, "--json")
        assert again.code == 0, again.err
        pushed = json.loads(again.out)["tags"][0]["digest"]
    assert _head_digest(reg.address, "dockops/upload", "v1") == pushed


@pytest.fixture
def up(docker_env: docker.DockerClient, cli: Cli) -> Iterator[str]:
    port = free_port()
    result = cli(
        "registry", "up", "--name", "dockops-rel", "--network", "host",
        "--bind", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    assert result.code == 0, result.err
    yield f"127.0.0.1:{port}"
    cli("registry", "down", "--name", "dockops-rel", "--purge")


def _local_tags(client: docker.DockerClient, address: str) -> list[str]:
    return [t for i in client.api.images() for t in i["RepoTags"] or () if address in t]


def test_a_stalled_push_private_exits_4_leaves_no_tag_and_a_rerun_pushes(
    docker_env: docker.DockerClient, up: str, cli: Cli, stall_timeout: float
) -> None:
    """Through the daemon's push (--via daemon); --via direct uploads with the registry API
    client, whose bound is the next test's."""
    port = int(up.rsplit(":", 1)[1])
    with fault_proxy(port, faults=1, stall=True, match=_manifest_put) as proxy:
        push = ["push-private", "busybox", "--registry", proxy.address, "--via", "daemon"]
        started = time.monotonic()
        stalled = cli(*push)
        assert f"registry {proxy.address} stalled" in error_line(stalled, 4, progress=True)
        assert time.monotonic() - started < BOUND
        assert _local_tags(docker_env, proxy.address) == []  # the temporary tag is gone
        again = cli(*push, "--json")
        assert again.code == 0, again.err
        doc = json.loads(again.out)
    assert _head_digest(up, "busybox", "latest") == doc["digest"]
    assert _local_tags(docker_env, proxy.address) == []


def test_a_registry_api_that_stalls_is_a_bounded_exit_4(
    docker_env: docker.DockerClient, up: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """push-private asks the registry itself first (api.py, not the daemon); that client's own
    read timeout (60 s, three tries) bounds a stall there; shortened here."""
    monkeypatch.setattr(registry_api, "TIMEOUT", (2.0, 1.5))
    port = int(up.rsplit(":", 1)[1])
    ping = retry.REQUEST.attempts
    with fault_proxy(
        port, faults=ping, stall=True, match=lambda line: line.startswith("GET /v2/ ")
    ) as proxy:
        started = time.monotonic()
        stalled = cli("push-private", "busybox", "--registry", proxy.address)
        took = time.monotonic() - started
    assert stalled.code == 4, stalled
    assert stalled.err.count("\n") == 1
    assert stalled.err.startswith(f"dockops: error: {proxy.address} timed out: ")
    assert len(proxy.faulted) == ping
    assert took < ping * 1.5 + (ping - 1) * retry.REQUEST.max_wait + 5, took
    assert _local_tags(docker_env, proxy.address) == []


@pytest.mark.parametrize("command", ["pull", "push"])
def test_connection_resets_are_retried_and_succeed(
    docker_env: docker.DockerClient,
    reg: Registry,
    cli: Cli,
    fast_retries: RetryPolicy,
    command: str,
    engine: Engine,
) -> None:
    """A reset on the manifest request fails the daemon's attempt (it retries blobs itself);
    dockops's retry then succeeds. podman retries the whole copy itself: one attempt."""
    if command == "pull":
        digest = _seeded(docker_env, reg, cli, "dockops/reset:v1")
    match = _manifest_get if command == "pull" else _manifest_put
    with fault_proxy(reg.port, faults=1, reset=True, match=match) as proxy:
        ref = f"{proxy.address}/dockops/reset:v1"
        if command == "push":
            docker_env.api.tag("busybox:latest", f"{proxy.address}/dockops/reset", "v1")
        result = cli(command, ref, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    if engine.kind == "podman":
        assert doc["attempts"] == 1 and len(proxy.faulted) == 1
        assert "attempt 1/3 failed (" not in result.err
    else:
        assert doc["attempts"] == 2 and len(proxy.faulted) == 1
        assert "attempt 1/3 failed (" in result.err and "retrying in" in result.err
    if command == "pull":
        assert doc["tags"][0]["digest"] == digest
    else:
        assert _head_digest(reg.address, "dockops/reset", "v1") == doc["tags"][0]["digest"]
