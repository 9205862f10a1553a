"""`dockops doctor` end to end on the disposable engine, and on the Podman service."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.integration.conftest import ENGINE_KINDS


def test_doctor_on_a_healthy_engine(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    version = docker_env.version()
    assert (report["engine_product"], report["engine_version"]) == (
        "Docker Engine",
        version["Version"],
    )
    assert report["api_version"] == "1.41" == version["ApiVersion"] == report["engine_api_version"]
    assert report["storage_driver"] == docker_env.info()["Driver"]
    assert report["images"] >= 3 and report["images_bytes"] > 0
    assert [c["name"] for c in report["checks"]] == ["engine", "api", "storage", "disk"]
    assert all(c["ok"] for c in report["checks"])
    human = cli("doctor")
    assert human.code == 0 and human.out.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert human.out.splitlines()[1].endswith(f"answers, Docker Engine {version['Version']}")


@pytest.mark.skipif("podman" not in ENGINE_KINDS, reason="podman is not in DOCKOPS_TEST_ENGINES")
def test_doctor_names_podman_as_podman(
    podman_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: Cli
) -> None:
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKOPS_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_HOST", podman_engine.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    client = docker.DockerClient(base_url=podman_engine.host, version="auto")
    version = client.version()
    [podman] = [c for c in version["Components"] if c["Name"] == "Podman Engine"]
    images = {i["Id"] for i in client.api.images()}
    client.close()

    result = cli("doctor", "--json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    assert (report["engine_product"], report["engine_version"]) == (
        "Podman Engine",
        podman["Version"],
    )
    assert report["api_version"] == "1.41" == version["ApiVersion"] == report["engine_api_version"]
    # Its df lists an image once per tag and says 0 bytes of layers: counted by ID, size unknown.
    assert report["images"] == len(images) and report["images_bytes"] is None
    assert report["storage_driver"] == "overlay"
    human = cli("doctor").out.splitlines()
    assert human[1].endswith(f"answers, Podman Engine {podman['Version']}")
    assert human[2].split(None, 2)[2] == (
        f"API 1.41 (the engine offers {version['MinAPIVersion']} to 1.41)"
    )
