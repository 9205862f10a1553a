"""The client factory: which engine it picks, and how failures read; the stall timeout setting."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from dockops.engine import connect
from dockops.engine.address import (
    DEFAULT_STALL_TIMEOUT,
    context_params,
    engine_address,
    stall_timeout,
)
from dockops.errors import EngineUnreachable, InvalidInput
from tests.conftest import Cli


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
        connect()


def test_docker_context_env_beats_config(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_context(docker_config, "a", "unix:///a.sock")
    _add_context(docker_config, "b", "unix:///b.sock")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "a"}))
    monkeypatch.setenv("DOCKER_CONTEXT", "b")
    assert engine_address() == "unix:///b.sock"


@pytest.fixture
def dialed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every connection attempted from here on, refused before it is made: a test that goes
    wrong can never reach an engine of this machine (/var/run/docker.sock above all)."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused (no connection from this test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_a_context_that_does_not_exist_is_bad_input(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, dialed: list[object]
) -> None:
    """Not the local socket instead: a prune meant for a remote engine must not prune this one."""
    monkeypatch.setenv("DOCKER_CONTEXT", "nope")
    message = 'context "nope" does not exist (set by DOCKER_CONTEXT)'
    lock = str(docker_config / "prune.lock")
    for command in (
        ["images"],
        ["prune-dangling", "--dry-run", "--lock-file", lock],
        ["tag", "busybox", "bb:x"],
        ["doctor"],
    ):
        result = cli(*command)
        assert (result.code, result.out, result.err) == (2, "", f"dockops: error: {message}\n")
    with pytest.raises(InvalidInput, match=re.escape(message)):
        engine_address()
    with pytest.raises(InvalidInput, match=re.escape(message)):
        connect()
    assert dialed == []


def test_a_current_context_that_does_not_exist_names_the_config(
    docker_config: Path, dialed: list[object]
) -> None:
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "gone"}))
    with pytest.raises(InvalidInput) as info:
        connect()
    assert info.value.message == (
        f'context "gone" does not exist (set by currentContext in {docker_config}/config.json)'
    )
    assert dialed == []


@pytest.mark.parametrize(
    ("meta", "reason"),
    [("{not json", "not JSON"), ('{"Name": "lab", "Endpoints": {}}', "no docker endpoint")],
)
def test_a_context_that_cannot_be_read_is_bad_input(
    docker_config: Path,
    monkeypatch: pytest.MonkeyPatch,
    dialed: list[object],
    meta: str,
    reason: str,
) -> None:
    _add_context(docker_config, "lab", "unix:///lab.sock")
    meta_file = (
        docker_config / "contexts" / "meta" / hashlib.sha256(b"lab").hexdigest() / "meta.json"
    )
    meta_file.write_text(meta)
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    with pytest.raises(InvalidInput) as info:
        connect()
    assert info.value.message == f'context "lab" cannot be read: {meta_file}: {reason}'
    assert dialed == []


def test_a_context_is_found_where_the_docker_cli_keeps_it(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dialed: list[object]
) -> None:
    # No config.json beside the contexts: the docker CLI still finds them there.
    (docker_config / "config.json").unlink()
    sock = f"unix://{tmp_path}/lab.sock"
    _add_context(docker_config, "lab", sock)
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    assert engine_address() == sock
    with pytest.raises(EngineUnreachable, match=f"at {sock}: "):
        connect()
    assert dialed == [f"{tmp_path}/lab.sock"]


def test_a_context_brings_its_tls_files(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_context(docker_config, "remote", "tcp://127.0.0.1:2376")
    tls = docker_config / "contexts" / "tls" / hashlib.sha256(b"remote").hexdigest() / "docker"
    tls.mkdir(parents=True)
    for name in ("ca", "cert", "key"):
        (tls / f"{name}.pem").write_text("-")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    params: dict[str, Any] = context_params()
    assert params["base_url"] == "tcp://127.0.0.1:2376"
    assert params["tls"].ca_cert == str(tls / "ca.pem") and params["tls"].verify is True
    assert params["tls"].cert == (str(tls / "cert.pem"), str(tls / "key.pem"))


def test_bad_timeout_is_bad_input(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_TIMEOUT", "soon")
    with pytest.raises(InvalidInput):
        connect()


# --- the stall timeout (DOCKOPS_STALL_TIMEOUT) ----------------------------------------------


def test_stall_timeout_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKOPS_STALL_TIMEOUT", raising=False)
    assert stall_timeout() == DEFAULT_STALL_TIMEOUT == 120
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "2.5")
    assert stall_timeout() == 2.5


@pytest.mark.parametrize("bad", ["soon", "0", "-5", "nan", "inf", "1e999"])
def test_a_bad_stall_timeout_is_bad_input_before_the_engine(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # 3 if anything reached it
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", bad)
    for command in (["pull", "busybox"], ["push", "127.0.0.1:5000/x:1"], ["save", "x", "-o", "-"]):
        result = cli(*command)
        assert (result.code, result.out) == (2, ""), (command, result)
        assert result.err == (
            f"dockops: error: DOCKOPS_STALL_TIMEOUT={bad!r} is not a positive number of seconds\n"
        )
