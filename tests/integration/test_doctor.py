"""`dockops doctor` end to end on the disposable engine."""

from __future__ import annotations

import json

import docker

from tests.conftest import Cli


def test_doctor_on_a_healthy_engine(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    version = docker_env.version()
    assert report["engine_version"] == version["Version"]
    assert report["api_version"] == version["ApiVersion"]
    assert report["storage_driver"] == docker_env.info()["Driver"]
    assert report["images"] >= 3 and report["images_bytes"] > 0
    assert [c["name"] for c in report["checks"]] == ["engine", "api", "storage", "disk"]
    assert all(c["ok"] for c in report["checks"])
    human = cli("doctor")
    assert human.code == 0 and human.out.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
