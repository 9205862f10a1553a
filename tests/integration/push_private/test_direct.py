"""push-private --via direct: dockops reads the image from the engine's save stream, compresses
the layers with isal and uploads them itself. The pushed image must be one the daemon pulls and
runs with the same image ID, that skopeo reads, and re-pushes must send only what is new. The
save stream may be in any layout an engine writes: Docker's before 25, Docker 25's OCI layout
(an engine answering as Docker 25 does, tests/support/archives.py), Podman's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support import archives
from tests.support.archives import converting
from tests.support.containers import output_of
from tests.support.http_faults import http_faults
from tests.support.registry_server import Registry
from tests.support.saving_engine import SavingEngine
from tests.support.tools import commit, docker_cli


@pytest.fixture(autouse=True)
def fresh_blob_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _pull(client: docker.DockerClient, engine: Engine, reference: str) -> None:
    """Pull from the test's plain-HTTP loopback registry: the daemon takes loopback as
    insecure; Podman only as told (its own API's tlsVerify=false: the harness's registries.conf
    names no registry), which is no part of what a direct push is tested for here."""
    if engine.kind != "podman":
        pulled = docker_cli(engine.host, "pull", reference)
        assert pulled.returncode == 0, pulled.stderr
        return
    answer = client.api.post(
        f"{client.api.base_url}/v4.0.0/libpod/images/pull",
        params={"reference": reference, "tlsVerify": "false", "quiet": "true"},
    )
    assert answer.status_code == 200 and '"error"' not in answer.text, answer.text


def test_direct_push_pulls_back_runs_and_resends_nothing(
    docker_env: docker.DockerClient, engine: Engine, reg: Registry, cli: Cli
) -> None:
    v1 = commit(docker_env, "direct/app:1", "echo one > /one; seq 1 50000 > /n")
    args = ["--registry", reg.address, "--via", "direct", "--json"]
    first = cli("push-private", "direct/app:1", *args)
    assert first.code == 0, first.err
    doc = json.loads(first.out)
    assert doc["via"] == "direct" and doc["reference"] == f"{reg.address}/direct/app:1"
    assert doc["layers"] == 2 and doc["uploaded_layers"] == 2 and doc["uploaded_bytes"] > 0
    assert doc["tag_removed"] is False
    assert not [t for t in docker_env.images.get(v1).tags if reg.address in t]

    # The daemon pulls it, with the same image ID (the config is the engine's own bytes),
    # and it runs.
    docker_env.api.remove_image("direct/app:1")
    _pull(docker_env, engine, f"{reg.address}/direct/app:1")
    assert docker_env.images.get(f"{reg.address}/direct/app:1").id == v1
    ran = output_of(docker_env, f"{reg.address}/direct/app:1", ["cat", "/one"])
    assert ran == b"one\n"

    # Again: no layer is sent.
    again = cli("push-private", f"{reg.address}/direct/app:1", "--as", "direct/app:1", *args)
    assert again.code == 0, again.err
    second = json.loads(again.out)
    assert second["uploaded_layers"] == 0 and second["uploaded_bytes"] == 0
    assert second["digest"] == doc["digest"]

    # v2 on top of v1: only its own layer goes.
    v2 = commit(docker_env, "direct/app:2", "echo two > /two", base=f"{reg.address}/direct/app:1")
    pushed = cli("push-private", "direct/app:2", *args)
    assert pushed.code == 0, pushed.err
    third = json.loads(pushed.out)
    assert third["layers"] == 3 and third["uploaded_layers"] == 1

    # Another repository of the same registry mounts the layers instead of uploading them.
    mounted = cli("push-private", "direct/app:2", "--as", "other/app:2", *args)
    assert mounted.code == 0, mounted.err
    assert json.loads(mounted.out)["uploaded_layers"] == 0

    docker_env.api.remove_image("direct/app:2")
    _pull(docker_env, engine, f"{reg.address}/direct/app:2")
    assert docker_env.images.get(f"{reg.address}/direct/app:2").id == v2

    skopeo = shutil.which("skopeo")
    if skopeo is None:
        if os.environ.get("CI") == "true":
            pytest.fail("skopeo is missing (tests/harness installs it)")
        pytest.skip("skopeo not installed")
    inspected = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", f"docker://{reg.address}/direct/app:2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == third["digest"]


def test_direct_keep_tag_makes_the_local_tag(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli
) -> None:
    result = cli(
        "push-private", "busybox", "--registry", reg.address, "--via", "direct", "--keep-tag"
    )
    assert result.code == 0, result.err
    assert f"{reg.address}/busybox:latest" in docker_env.images.get("busybox:latest").tags


@pytest.mark.parametrize("fast_retries", [4], indirect=True)
@pytest.mark.parametrize("reset", [False, True], ids=["503", "reset"])
def test_direct_push_survives_faults(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, reset: bool, fast_retries: object
) -> None:
    commit(docker_env, "direct/faulty:1", "seq 1 20000 > /n")
    with http_faults(
        reg.port, faults=2, reset=reset, match=lambda line: line.startswith(("PATCH ", "PUT "))
    ) as proxy:
        result = cli(
            "push-private", "direct/faulty:1", "--registry", proxy.address, "--via", "direct",
            "--json",
        )  # fmt: skip
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert len(proxy.faulted) == 2 and doc["attempts"] >= 2
    assert "retrying" in result.err


def test_direct_push_gives_up_in_bounded_tries(
    docker_env: docker.DockerClient, reg: Registry, cli: Cli, fast_retries: object
) -> None:
    with http_faults(reg.port, faults=1000, match=lambda line: line.startswith("PATCH ")) as proxy:
        result = cli("push-private", "busybox", "--registry", proxy.address, "--via", "direct")
    assert result.code == 4, result.err
    assert len(proxy.faulted) == 3


def test_unknown_via_is_usage(docker_env: docker.DockerClient, reg: Registry, cli: Cli) -> None:
    result = cli("push-private", "busybox", "--registry", reg.address, "--via", "carrier-pigeon")
    assert result.code == 2 and "choose auto, direct or daemon" in result.err


def test_plain_push_via_direct(docker_env: docker.DockerClient, reg: Registry, cli: Cli) -> None:
    ref = f"{reg.address}/plain/bb:1"
    docker_env.api.tag("busybox:latest", f"{reg.address}/plain/bb", "1")
    result = cli("push", ref, "--via", "direct", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["reference"] == ref and doc["config"] == docker_env.images.get("busybox").id


@pytest.mark.parametrize("layout", ["docker25", "podman"])
def test_direct_push_reads_a_save_stream_in_another_engines_layout(
    docker_env: docker.DockerClient,
    engine: Engine,
    reg: Registry,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
) -> None:
    # The engine's save answers as Docker 25 (or Podman) writes it; the pushed image is the
    # engine's own, pulled back with the same ID. Its layers are named by their diff IDs:
    # each is read once, as it passes.
    image = commit(docker_env, "direct/layout:1", "seq 1 30000 > /n")
    writer = archives.docker25 if layout == "docker25" else archives.podman
    with SavingEngine(tmp_path / "e.sock", engine.host, converting(writer)) as saving:
        monkeypatch.setenv("DOCKER_HOST", saving.host)
        pushed = cli("push-private", "direct/layout:1", "--registry", reg.address, "--via",
                     "direct", "--json")  # fmt: skip
        monkeypatch.setenv("DOCKER_HOST", engine.host)
    assert pushed.code == 0, pushed.err
    assert saving.saves == 1
    doc = json.loads(pushed.out)
    assert doc["uploaded_layers"] == doc["layers"] == 2
    docker_env.api.remove_image("direct/layout:1")
    _pull(docker_env, engine, f"{reg.address}/direct/layout:1")
    assert docker_env.images.get(f"{reg.address}/direct/layout:1").id == image
