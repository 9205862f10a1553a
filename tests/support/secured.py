"""A registry behind `dockops registry secure` (TLS and a login) on the disposable engine, for the
tests of secure itself and of what meets it (access failures, the password's secrecy).
tests/integration/conftest.py makes `secured` a fixture of every integration test."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import free_port

USER, PASSWORD = "alice", "correct horse battery"


@dataclass(frozen=True)
class Secured:
    address: str  # HOST:PORT of the TLS frontend
    certs_dir: Path
    certs_d: Path
    doc: dict[str, object]  # the JSON of the first `registry secure`


def feed_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


@pytest.fixture
def secured(
    docker_env: docker.DockerClient,
    engine: Engine,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Secured]:
    if engine.certs_d is None:
        pytest.skip("the engine's certs.d is unknown: set DOCKOPS_TEST_CERTS_D")
    # dockops's own HTTPS requests trust what the engine trusts.
    monkeypatch.setenv("DOCKOPS_CERTS_D", str(engine.certs_d))
    up = cli(
        "registry", "up", "--name", "dockops-s", "--network", "host", "--bind", "127.0.0.1",
        "--port", str(free_port()),
    )  # fmt: skip
    assert up.code == 0, up.err
    port = free_port()
    certs_dir = tmp_path / "certs"
    feed_stdin(monkeypatch, PASSWORD + "\n")
    result = cli(
        "registry", "secure", "--name", "dockops-s", "--host", "127.0.0.1", "--port", str(port),
        "--user", USER, "--password-stdin", "--certs-dir", str(certs_dir), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    address = f"127.0.0.1:{port}"
    try:
        yield Secured(address, certs_dir, engine.certs_d, json.loads(result.out))
    finally:
        cli("registry", "down", "--name", "dockops-s", "--purge")
        shutil.rmtree(engine.certs_d / address, ignore_errors=True)
