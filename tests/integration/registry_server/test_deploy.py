"""registry up/down/status on the disposable engine: the registry:2 container `dockops registry up`
runs (host network, 127.0.0.1, a free port), its re-runs, and its data on purge."""

from __future__ import annotations

import json
import urllib.request

import docker
import pytest

from dockops.config import load_config
from tests.conftest import Cli
from tests.support.registry_server import free_port


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
