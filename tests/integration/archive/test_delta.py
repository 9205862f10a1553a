"""Delta archives on the real engine: v1 -> v2 -> v3 built by commits on a common base; a delta
leaves out what the base holds, loads (with dockops and with a plain docker load) where the base
is, refuses cleanly where it is not, and chains."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.tools import commit, docker_cli


@pytest.fixture
def versions(docker_env: docker.DockerClient) -> dict[str, str]:
    """base (2 MiB of its own), then v1, v2, v3: each a small layer on the one before."""
    ids = {"base": commit(docker_env, "delta/app:base", "seq 1 300000 > /b")}
    ids["v1"] = commit(docker_env, "delta/app:v1", "echo 1 > /v", base="delta/app:base")
    ids["v2"] = commit(docker_env, "delta/app:v2", "echo 2 > /v", base="delta/app:v1")
    ids["v3"] = commit(docker_env, "delta/app:v3", "echo 3 > /v", base="delta/app:v2")
    return ids


def _images(client: docker.DockerClient) -> set[str]:
    return {i["Id"] for i in client.api.images(all=True)}


def test_delta_leaves_out_the_base_and_loads_where_it_is(
    docker_env: docker.DockerClient,
    engine: Engine,
    versions: dict[str, str],
    cli: Cli,
    tmp_path: Path,
) -> None:
    full = cli("save", "delta/app:v2", "-o", str(tmp_path / "full.tar"), "--json")
    assert full.code == 0, full.err
    saved = cli(
        "save", "delta/app:v2", "--delta-from", "delta/app:v1", "-o", str(tmp_path / "d.tar"),
        "--json",
    )  # fmt: skip
    assert saved.code == 0, saved.err
    doc = json.loads(saved.out)
    v2_layers = docker_env.api.inspect_image(versions["v2"])["RootFS"]["Layers"]
    assert [o["diff_id"] for o in doc["omitted"]] == v2_layers[:-1]  # all but v2's own
    assert all(o["provided_by"] == ["delta/app:v1"] for o in doc["omitted"])
    assert doc["full_bytes"] == json.loads(full.out)["bytes"]
    assert doc["bytes"] == (tmp_path / "d.tar").stat().st_size
    assert doc["bytes"] < json.loads(full.out)["bytes"] - 2_000_000  # the base's 2 MB stay home

    # Where v1 is, the delta loads, with the same image ID as the full save.
    docker_env.api.remove_image("delta/app:v3")
    docker_env.api.remove_image("delta/app:v2")
    loaded = cli("load", "-i", str(tmp_path / "d.tar"), "--json")
    assert loaded.code == 0, loaded.err
    assert json.loads(loaded.out)["images"] == [{"reference": "delta/app:v2", "id": versions["v2"]}]

    # A plain docker load reads it too.
    docker_env.api.remove_image("delta/app:v2")
    plain = docker_cli(engine.host, "load", "-i", str(tmp_path / "d.tar"))
    assert plain.returncode == 0, plain.stderr
    assert docker_env.images.get("delta/app:v2").id == versions["v2"]


def test_delta_refuses_where_the_base_is_missing(
    docker_env: docker.DockerClient, versions: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    delta = tmp_path / "d.tar.gz"
    saved = cli("save", "delta/app:v2", "--delta-from", "delta/app:v1", "-o", str(delta))
    assert saved.code == 0, saved.err
    for tag in ("v3", "v2", "v1", "base"):
        docker_env.api.remove_image(f"delta/app:{tag}")
    before = _images(docker_env)
    refused = cli("load", "-i", str(delta))
    assert refused.code == 1
    assert "lacks 2 of the layers" in refused.err and "delta/app:v1" in refused.err
    assert refused.err.count("\n") == 1
    assert _images(docker_env) == before  # nothing loaded

    # Through stdin (gzip) as well.
    with delta.open("rb") as handle:
        piped = subprocess.run(
            [sys.executable, "-m", "dockops", "load", "-i", "-"],
            stdin=handle,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert piped.returncode == 1 and "load the base image first" in piped.stderr
    assert _images(docker_env) == before


def test_delta_chains_from_an_archive(
    docker_env: docker.DockerClient, versions: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    v2_full = tmp_path / "v2.tar.gz"
    assert cli("save", "delta/app:v2", "-o", str(v2_full)).code == 0
    v3_delta = tmp_path / "v3.tar"
    saved = cli("save", "delta/app:v3", "--delta-from", str(v2_full), "-o", str(v3_delta), "--json")
    assert saved.code == 0, saved.err
    assert len(json.loads(saved.out)["omitted"]) == 4  # busybox, base, v1, v2
    docker_env.api.remove_image("delta/app:v3")
    piped = subprocess.run(
        [sys.executable, "-m", "dockops", "load", "-i", "-", "--json"],
        input=v3_delta.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["images"][0]["id"] == versions["v3"]


def test_delta_bad_bases(docker_env: docker.DockerClient, cli: Cli, tmp_path: Path) -> None:
    missing = cli("save", "busybox", "--delta-from", "no-such:1", "-o", str(tmp_path / "x.tar"))
    assert missing.code == 2 and "no-such:1" in missing.err
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive at all" * 100)
    bad = cli("save", "busybox", "--delta-from", str(junk), "-o", str(tmp_path / "y.tar"))
    assert bad.code == 2 and "not a readable image archive" in bad.err
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "y.tar").exists()


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_delta_file_is_0600_as_a_full_save_is(
    docker_env: docker.DockerClient, versions: dict[str, str], cli: Cli, tmp_path: Path, umask: int
) -> None:
    plain, packed = tmp_path / "d.tar", tmp_path / "d.tar.gz"
    plain.write_bytes(b"old")
    plain.chmod(0o644)
    before = os.umask(umask)
    try:
        for target in (plain, packed):
            saved = cli(
                "save", "delta/app:v2", "--delta-from", "delta/app:v1", "-o", str(target),
                "--quiet",
            )  # fmt: skip
            assert saved.code == 0, saved.err
    finally:
        os.umask(before)
    assert [stat.S_IMODE(path.stat().st_mode) for path in (plain, packed)] == [0o600, 0o600]
    assert plain.read_bytes() != b"old"
