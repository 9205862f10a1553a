"""The client factory: which engine it picks, and how failures read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests

from dockops.engine import engine_address, engine_errors, get_client, root_cause
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKOPS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def _add_context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}})
    )


def test_docker_host_wins(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_context(docker_config, "other", "unix:///ctx.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "other")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine_address() == "tcp://127.0.0.1:2375"


def test_default_is_the_local_socket(docker_config: Path) -> None:
    assert engine_address() == "unix:///var/run/docker.sock"


def test_current_context_from_docker_config(docker_config: Path, tmp_path: Path) -> None:
    sock = f"unix://{tmp_path}/ctx-engine.sock"
    _add_context(docker_config, "lab", sock)
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    assert engine_address() == sock
    # The client really goes there (nothing listens: the error names that socket).
    with pytest.raises(EngineUnreachable, match=f"at {sock}: no such file or directory"):
        get_client()


def test_docker_context_env_beats_config(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_context(docker_config, "a", "unix:///a.sock")
    _add_context(docker_config, "b", "unix:///b.sock")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "a"}))
    monkeypatch.setenv("DOCKER_CONTEXT", "b")
    assert engine_address() == "unix:///b.sock"


def test_bad_timeout_is_bad_input(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_TIMEOUT", "soon")
    with pytest.raises(InvalidInput):
        get_client()


def test_root_cause_finds_the_os_error() -> None:
    inner = ConnectionRefusedError(111, "Connection refused")
    outer = requests.exceptions.ConnectionError(("Connection aborted.", inner))
    assert root_cause(outer) == "connection refused"
    assert root_cause(ValueError("plain\n  text")) == "plain text"


def test_engine_errors_translation(docker_config: Path) -> None:
    import docker

    response = requests.Response()
    response.status_code = 409
    refusal = r"^remove x: conflict: image is in use$"
    with pytest.raises(EngineRefused, match=refusal), engine_errors("remove x"):
        raise docker.errors.APIError("409", response, explanation="conflict: image is\nin use")
    with pytest.raises(EngineUnreachable, match="did not answer in time"), engine_errors():
        raise requests.exceptions.ReadTimeout("slow")
    with pytest.raises(EngineUnreachable, match="lost the Docker engine"), engine_errors():
        raise requests.exceptions.ConnectionError(OSError(104, "Connection reset by peer"))
