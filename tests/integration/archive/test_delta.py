"""Delta archives on the real engine: v1 -> v2 -> v3 built by commits on a common base; a delta
leaves out what the base holds, loads (with dockops and with a plain docker load) where the base
is, refuses cleanly where it is not, and chains. Podman cuts its own save stream the same way;
its load wants every layer file in the tar, so `dockops load` puts back the ones a delta left
out, from Podman's own save (a plain `docker load` against Podman fails). A delta cut in each
engine's layout (tests/support/archives.py) loads on both; archives in Docker 25's layout
load, serve as bases, and are what a delta is cut from when the engine's save answers in it."""

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
from tests.support import archives
from tests.support.archives import Image, converting, on_top, read_images
from tests.support.saving_engine import SavingEngine
from tests.support.tools import commit, docker_cli

# What Podman says of a docker-archive without the layer files a delta leaves out.
PODMAN_NO_LAYERS = "Some layer tarfiles are missing in the tarball"


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
    plain = docker_cli(engine.host, "load", "-i", str(tmp_path / "d.tar"))
    if engine.kind == "podman":
        # Podman reads a docker-archive only with every layer file in it, even of layers it
        # holds: a plain load fails in Podman's words, and loads nothing.
        assert plain.returncode != 0 and PODMAN_NO_LAYERS in plain.stderr
        assert versions["v2"] not in _images(docker_env)
    else:  # a plain docker load reads it as it is
        assert plain.returncode == 0, plain.stderr
        assert docker_env.images.get("delta/app:v2").id == versions["v2"]
        docker_env.api.remove_image("delta/app:v2")
    # dockops loads it on both (on Podman, with the layers put back from Podman's own save).
    loaded = cli("load", "-i", str(tmp_path / "d.tar"), "--json")
    assert loaded.code == 0, loaded.err
    assert json.loads(loaded.out)["images"] == [{"reference": "delta/app:v2", "id": versions["v2"]}]
    assert docker_env.api.inspect_image("delta/app:v2")["Id"] == versions["v2"]


def test_delta_refuses_where_the_base_is_missing(
    docker_env: docker.DockerClient,
    engine: Engine,
    versions: dict[str, str],
    cli: Cli,
    tmp_path: Path,
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
    docker_env: docker.DockerClient,
    engine: Engine,
    versions: dict[str, str],
    cli: Cli,
    tmp_path: Path,
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


# --- Docker 25's layout (tests/support/archives.py), and Podman's stream read as a base ---------


def _engine_image(client: docker.DockerClient, reference: str) -> Image:
    """An image the engine holds, read back from its own save stream (in its own layout)."""
    return read_images(b"".join(client.api.get_image(reference)))[0]


def _load(client: docker.DockerClient, archive: bytes) -> None:
    for line in client.api.load_image(archive):
        assert "error" not in line, line


@pytest.mark.parametrize("layout", ["legacy", "docker25", "podman"])
def test_each_engines_archive_loads_here(
    docker_env: docker.DockerClient, engine: Engine, cli: Cli, tmp_path: Path, layout: str
) -> None:
    # What `dockops save` writes is the engine's own layout: each engine loads the others'.
    image = on_top(_engine_image(docker_env, "busybox:latest"), {"l": layout.encode()}, "ly/a:1")
    archive = tmp_path / "a.tar"
    archive.write_bytes(getattr(archives, layout)([image]))
    loaded = cli("load", "-i", str(archive), "--json")
    assert loaded.code == 0, loaded.err
    assert [i["id"] for i in json.loads(loaded.out)["images"]] == [image.id]
    tags = docker_env.api.inspect_image(image.id)["RepoTags"]
    if engine.kind != "podman":
        assert tags == ["ly/a:1"]
    elif layout == "docker25":  # read as OCI: index.json's io.containerd.image.name
        assert tags == ["docker.io/ly/a:1"]
    else:  # a docker-archive's short name goes to localhost/; Podman's own writes it in full
        assert tags == ["docker.io/ly/a:1" if layout == "podman" else "localhost/ly/a:1"]


def test_a_docker25_archive_loads_and_serves_as_a_delta_base(
    docker_env: docker.DockerClient, engine: Engine, cli: Cli, tmp_path: Path
) -> None:
    busybox = _engine_image(docker_env, "busybox:latest")
    one = on_top(busybox, {"one": b"1\n" * 100_000}, "layout/app:1")
    two = on_top(one, {"two": b"2\n"}, "layout/app:2")
    base = tmp_path / "one.tar"
    base.write_bytes(archives.docker25([one]))

    # Both engines load Docker 25's archive (Podman reads a one-image one as OCI).
    loaded = cli("load", "-i", str(base), "--json")
    assert loaded.code == 0, loaded.err
    assert [image["id"] for image in json.loads(loaded.out)["images"]] == [one.id]
    tags = docker_env.api.inspect_image(one.id)["RepoTags"]
    # Podman names it after index.json's io.containerd.image.name, in full.
    assert tags == (["docker.io/layout/app:1"] if engine.kind == "podman" else ["layout/app:1"])

    # As a --delta-from base, the archive's image provides its layers.
    _load(docker_env, archives.docker25([two]))
    delta = tmp_path / "two.tar"
    saved = cli("save", "layout/app:2", "--delta-from", str(base), "-o", str(delta), "--json")
    assert saved.code == 0, saved.err
    doc = json.loads(saved.out)
    assert [o["diff_id"] for o in doc["omitted"]] == one.diff_ids
    assert {tuple(o["provided_by"]) for o in doc["omitted"]} == {(f"{base}:layout/app:1",)}
    assert doc["bytes"] < doc["full_bytes"] - 200_000

    docker_env.api.remove_image(two.id, force=True)
    again = cli("load", "-i", str(delta), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["images"][0]["id"] == two.id


def test_a_delta_cut_from_a_docker25_save_stream_loads_on_both_engines(
    docker_env: docker.DockerClient,
    engine: Engine,
    versions: dict[str, str],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The engine's save answers in Docker 25's layout: the delta leaves out blobs by name.
    delta = tmp_path / "d.tar"
    with SavingEngine(tmp_path / "e.sock", engine.host, converting(archives.docker25)) as saving:
        monkeypatch.setenv("DOCKER_HOST", saving.host)
        saved = cli(
            "save", "delta/app:v2", "--delta-from", "delta/app:v1", "-o", str(delta), "--json"
        )  # fmt: skip
        monkeypatch.setenv("DOCKER_HOST", engine.host)
    assert saved.code == 0, saved.err
    assert saving.saves == 1
    doc = json.loads(saved.out)
    v2_layers = docker_env.api.inspect_image(versions["v2"])["RootFS"]["Layers"]
    assert [o["diff_id"] for o in doc["omitted"]] == v2_layers[:-1]
    assert all(o["size"] for o in doc["omitted"])  # each cut where it passed
    members = _members(delta)
    assert members[0] == "dockops-delta.json" and "oci-layout" in members
    assert not {f"blobs/sha256/{d[7:]}" for d in v2_layers[:-1]} & set(members)
    assert f"blobs/sha256/{v2_layers[-1][7:]}" in members

    # Both engines load it where v1 is: Docker by manifest.json, Podman as OCI (one image).
    docker_env.api.remove_image("delta/app:v3")
    docker_env.api.remove_image("delta/app:v2")
    loaded = cli("load", "-i", str(delta), "--json")
    assert loaded.code == 0, loaded.err
    assert json.loads(loaded.out)["images"][0]["id"] == versions["v2"]


@pytest.mark.parametrize("kind", ["legacy", "docker25", "podman"])
def test_a_delta_of_two_images_in_each_layout_loads_on_both_engines(
    docker_env: docker.DockerClient,
    engine: Engine,
    versions: dict[str, str],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    # Two images: Podman reads even Docker 25's layout as a docker-archive then, by its
    # manifest.json, so each layout's layer names are put back as that layout gives them.
    delta = tmp_path / ("d.tar.gz" if kind == "legacy" else "d.tar")
    writer = getattr(archives, kind)
    with SavingEngine(tmp_path / "e.sock", engine.host, converting(writer)) as saving:
        monkeypatch.setenv("DOCKER_HOST", saving.host)
        saved = cli(
            "save", "delta/app:v2", "delta/app:v3", "--delta-from", "delta/app:v1",
            "-o", str(delta), "--json",
        )  # fmt: skip
        monkeypatch.setenv("DOCKER_HOST", engine.host)
    assert saved.code == 0, saved.err
    assert len(json.loads(saved.out)["omitted"]) == 3  # busybox, base, v1
    record = json.loads(_member(delta, "dockops-delta.json"))
    assert record["layout"] == {"legacy": "docker", "docker25": "docker-oci"}.get(kind, kind)

    docker_env.api.remove_image("delta/app:v3")
    docker_env.api.remove_image("delta/app:v2")
    loaded = cli("load", "-i", str(delta), "--json")
    assert loaded.code == 0, loaded.err
    ids = {image["id"] for image in json.loads(loaded.out)["images"]}
    assert ids == {versions["v2"], versions["v3"]}
    for tag in ("v2", "v3"):
        assert docker_env.api.inspect_image(versions[tag])["Id"] == versions[tag]


def _member(path: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(path) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def _members(path: Path) -> list[str]:
    import tarfile

    with tarfile.open(path) as tar:
        return tar.getnames()


def test_an_archive_podman_saved_is_a_base_with_familiar_names(
    docker_env: docker.DockerClient, versions: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    # Podman's layout (<diff id>.tar layers, full names in RepoTags), whichever engine runs.
    base = tmp_path / "v1.tar"
    base.write_bytes(archives.podman([_engine_image(docker_env, "delta/app:v1")]))
    saved = cli("save", "delta/app:v2", "--delta-from", str(base), "-o", str(tmp_path / "d.tar"),
                "--json")  # fmt: skip
    assert saved.code == 0, saved.err
    doc = json.loads(saved.out)
    assert len(doc["omitted"]) == 3  # busybox, base, v1
    assert {tuple(o["provided_by"]) for o in doc["omitted"]} == {(f"{base}:delta/app:v1",)}
