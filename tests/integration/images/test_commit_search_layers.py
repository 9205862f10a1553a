"""search, commit, history, layers and tag end to end on the disposable engine; where podman
does otherwise, the difference is pinned beside docker's case."""

from __future__ import annotations

import json
import socket
import time

import docker
import pytest

from dockops.units import human_size
from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import LOOPBACK, search_index

HITS = [
    {"name": "team/alpha", "description": "first", "star_count": 7, "is_official": False,
     "is_automated": True},
    {"name": "alpha", "description": "the official one", "star_count": 120, "is_official": True,
     "is_automated": False},
    {"name": "alphabet", "description": "few stars", "star_count": 1, "is_official": False,
     "is_automated": False},
]  # fmt: skip


def _tags(client: docker.DockerClient, reference: str) -> list[str]:
    """The image's tags as docker writes them (podman stores docker.io/team/app:1)."""
    tags = client.images.get(reference).tags
    return [t.removeprefix("docker.io/").removeprefix("library/") for t in tags]


def _container(client: docker.DockerClient, script: str, name: str) -> str:
    box = client.containers.run(
        "busybox:latest", ["sh", "-c", script], name=name, network_mode="none", detach=True
    )
    assert box.wait(timeout=60)["StatusCode"] == 0
    return str(box.id)


def test_search_through_the_daemon_with_filters(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    with search_index(HITS) as index:
        everything = cli("search", f"{index.address}/alpha", "--json")
        limited = cli("search", f"{index.address}/alpha", "--limit", "2", "--json")
        starred = cli("search", f"{index.address}/alpha", "--stars", "5", "--json")
        official = cli("search", f"{index.address}/alpha", "--official")
    assert everything.code == 0, everything.err
    # Podman names each hit with the index it came from (pullable as it is); docker does not.
    host = f"{index.address}/" if engine.kind == "podman" else ""
    assert json.loads(everything.out) == [
        {"name": f"{host}team/alpha", "description": "first", "stars": 7, "official": False,
         "automated": True},
        {"name": f"{host}alpha", "description": "the official one", "stars": 120,
         "official": True, "automated": False},
        {"name": f"{host}alphabet", "description": "few stars", "stars": 1, "official": False,
         "automated": False},
    ]  # fmt: skip
    # The daemon really asked the index, passing the limit on.
    assert [q["q"] for q in index.queries] == [["alpha"]] * 4
    assert [q["n"] for q in index.queries][:2] == [["25"], ["2"]]
    assert [h["name"] for h in json.loads(limited.out)] == [f"{host}team/alpha", f"{host}alpha"]
    assert [h["name"] for h in json.loads(starred.out)] == [f"{host}team/alpha", f"{host}alpha"]
    header, row = official.out.splitlines()
    assert header.split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert row.split() == [f"{host}alpha", "the", "official", "one", "120", "[OK]"]


def test_search_when_the_index_is_unreachable_exits_4_at_once(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    if not engine.owned:
        # A named engine may well reach Docker Hub; only the harness's is cut off at loopback.
        pytest.skip("needs the harness engine, whose DNS and proxy stop at loopback")
    if engine.kind == "podman":
        _podman_search_unreachable(cli)
        return
    started = time.monotonic()
    result = cli("search", "busybox")
    assert (result.code, result.out) == (4, "")
    # The harness engine's proxy is a dead loopback port: the daemon's own reason is shown.
    assert result.err.startswith('dockops: error: search busybox: Get "https://index.docker.io/')
    assert result.err.count("\n") == 1 and "connection refused" in result.err
    assert time.monotonic() - started < 5


def _podman_search_unreachable(cli: Cli) -> None:
    # Podman searches a name without a host in registries.conf's unqualified-search-registries
    # (none in the harness): no index asked, no hit, which it answers 404 and dockops says as
    # none. An index that refuses connections is exit 4 at once, in podman's words.
    nowhere = cli("search", "busybox", "--json")
    assert (nowhere.code, json.loads(nowhere.out)) == (0, [])
    with socket.socket() as closed:
        closed.bind((LOOPBACK, 0))
        address = f"{LOOPBACK}:{closed.getsockname()[1]}"
    started = time.monotonic()
    result = cli("search", f"{address}/busybox")
    assert (result.code, result.out) == (4, "")
    assert result.err.startswith(
        f'dockops: error: search {address}/busybox: couldn\'t search registry "{address}": '
    )
    assert result.err.count("\n") == 1 and "connection refused" in result.err
    assert time.monotonic() - started < 5


def test_search_of_a_silent_index_times_out_as_exit_4(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind((LOOPBACK, 0))
        silent.listen(8)
        address = f"{LOOPBACK}:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = cli("search", f"{address}/x", "--timeout", "1")
    assert result.code == 4
    assert (
        result.err == f"dockops: error: search {address}/x: the index did not answer within 1 s\n"
    )
    assert time.monotonic() - started < 10


def test_commit_applies_every_change(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    _container(docker_env, "echo hi > /made", "dockops-commit-src")
    changes = [
        'CMD ["cat", "/made"]',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        "ENV GREETING=hello",
        'LABEL team=ops tier="back end"',
        "EXPOSE 8080/tcp",
        "WORKDIR /srv",
        "USER 1000:1000",
        "VOLUME /data",
        "HEALTHCHECK CMD true",
        "ONBUILD RUN echo child",
    ]
    if engine.kind == "podman":
        changes = _podman_cannot(cli, changes)
    args = [arg for change in changes for arg in ("-c", change)]
    result = cli(
        "commit", "dockops-commit-src", "dockops-test/commit:v1",
        "-m", "made it", "-a", "Ops <ops@example.org>", *args, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    image = docker_env.images.get("dockops-test/commit:v1")
    assert doc == {
        "id": image.id,
        "reference": "dockops-test/commit:v1",
        "container": "dockops-commit-src",
        "message": "made it",
        "author": "Ops <ops@example.org>",
        "changes": changes,
        "paused": True,
    }
    config = image.attrs["Config"]
    assert config["Cmd"] == ["cat", "/made"]
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    assert "GREETING=hello" in config["Env"]
    assert config["Labels"]["team"] == "ops" and config["Labels"]["tier"] == "back end"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["WorkingDir"] == "/srv"
    assert config["User"] == "1000:1000"
    assert config["Volumes"] == {"/data": {}}
    if engine.kind == "docker":
        assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
        assert config["OnBuild"] == ["RUN echo child"]
    assert image.attrs["Comment"] == "made it" and image.attrs["Author"] == "Ops <ops@example.org>"

    human = cli("commit", "dockops-commit-src", "--no-pause")
    assert human.code == 0 and human.out.startswith("sha256:")
    untagged = docker_env.images.get(human.out.strip())
    assert untagged.tags == [] and untagged.attrs["Config"]["Cmd"] == [
        "sh",
        "-c",
        "echo hi > /made",
    ]


def _podman_cannot(cli: Cli, changes: list[str]) -> list[str]:
    """Podman refuses HEALTHCHECK (its words, exit 2) and would drop ONBUILD, which dockops
    refuses before anything is made; the other changes, without these two."""
    health = cli("commit", "dockops-commit-src", "-c", "HEALTHCHECK CMD true")
    assert health.code == 2 and health.err == (
        'dockops: error: commit dockops-commit-src: CommitFailure: invalid change "HEALTHCHECK '
        'CMD true" - invalid instruction HEALTHCHECK\n'
    )
    onbuild = cli("commit", "dockops-commit-src", "-c", "ONBUILD RUN echo child")
    assert onbuild.code == 2 and onbuild.err == (
        "dockops: error: invalid change 'ONBUILD RUN echo child': podman does not keep ONBUILD "
        "in a committed image\n"
    )
    return [c for c in changes if not c.startswith(("HEALTHCHECK", "ONBUILD"))]


def test_commit_of_a_running_container_without_pause(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    runner = docker_env.containers.run(
        "busybox:latest", ["sh", "-c", "echo live > /live; sleep 300"],
        name="dockops-commit-live", network_mode="none", detach=True,
    )  # fmt: skip
    result = cli("commit", "dockops-commit-live", "dockops-test/live", "--no-pause", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["reference"] == "dockops-test/live:latest" and doc["paused"] is False
    runner.reload()
    assert runner.status == "running"


def test_commit_bad_input_is_exit_2(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    _container(docker_env, "true", "dockops-commit-bad")
    unknown = cli("commit", "dockops-no-such-container", "x:v1")
    assert unknown.code == 2 and unknown.err == (
        "dockops: error: commit dockops-no-such-container: "
        "No such container: dockops-no-such-container\n"
    )
    bad_port = cli("commit", "dockops-commit-bad", "-c", "EXPOSE abc")
    assert bad_port.code == 2
    if engine.kind == "podman":  # the engine's own words, a 500 there
        assert bad_port.err == (
            'dockops: error: commit dockops-commit-bad: CommitFailure: invalid change "EXPOSE '
            'abc" - EXPOSE port must be an integer: strconv.Atoi: parsing "abc": invalid syntax\n'
        )
    else:
        assert bad_port.err == (
            "dockops: error: commit dockops-commit-bad: Invalid containerPort: abc\n"
        )
    assert cli("commit", "dockops-commit-bad", "-c", "RUN true").code == 2
    assert cli("commit", "bad name!", "x:v1").code == 2


def test_history_one_row_per_step(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    _container(docker_env, "echo one > /one", "dockops-hist")
    assert cli("commit", "dockops-hist", "dockops-test/hist:v1", "-m", "step one").code == 0
    result = cli("history", "dockops-test/hist:v1", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    engine_rows = docker_env.api.history("dockops-test/hist:v1")
    assert len(rows) == len(engine_rows) == 2
    top, base = rows
    assert set(top) == {"id", "created", "created_by", "size", "comment", "tags"}
    image = docker_env.images.get("dockops-test/hist:v1")
    assert top["id"] == image.id and top["tags"] == ["dockops-test/hist:v1"]
    if engine.kind == "podman":
        # Podman records a commit's step as its shell, "FROM <base>" as the step's comment (the
        # message is the image's Comment), and a layer's size as its uncompressed tar.
        assert (top["created_by"], top["comment"]) == (
            "/bin/sh", "FROM docker.io/library/busybox:latest",
        )  # fmt: skip
        assert image.attrs["Comment"] == "step one"
        assert top["size"] == engine_rows[0]["Size"] and top["size"] % 512 == 0
    else:
        assert (top["created_by"], top["comment"]) == ("sh -c echo one > /one", "step one")
        assert top["size"] == 4  # "one\n"
    assert base["id"] == docker_env.images.get("busybox:latest").id
    assert base["tags"] == ["busybox:latest"]
    assert base["size"] == engine_rows[1]["Size"] > 0
    human = cli("history", "dockops-test/hist:v1")
    assert human.out.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE",
                                                  "COMMENT"]  # fmt: skip
    missing = cli("history", "dockops-test/nope:v1")
    assert missing.code == 2 and missing.err.count("\n") == 1


def test_layers_show_what_is_shared(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    _container(docker_env, "head -c 3000 /dev/zero > /a", "dockops-lay-a")
    assert cli("commit", "dockops-lay-a", "dockops-test/lay-a:v1").code == 0
    _container(docker_env, "head -c 5000 /dev/zero > /b", "dockops-lay-b")
    assert cli("commit", "dockops-lay-b", "dockops-test/lay-b:v1").code == 0
    result = cli("layers", "dockops-test/lay-a:v1", "dockops-test/lay-b:v1", "busybox", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"images", "layers", "stored_bytes", "total_bytes"}
    base = docker_env.images.get("busybox:latest")
    base_size = base.attrs["Size"]
    base_diff = base.attrs["RootFS"]["Layers"][0]
    # A layer's size as the engine gives it: docker counts its files, podman its uncompressed
    # tar (headers and padding: 3000 bytes of file are a 9216-byte layer), and podman's image
    # Size adds the manifest and config to its layers.
    size_a, size_b = 3000, 5000
    if engine.kind == "podman":
        base_size = docker_env.api.history("busybox:latest")[0]["Size"]
        size_a = docker_env.api.history("dockops-test/lay-a:v1")[0]["Size"]
        size_b = docker_env.api.history("dockops-test/lay-b:v1")[0]["Size"]
        assert size_a > 3000 and size_b > 5000 and size_a % 512 == size_b % 512 == 0
    by_ref = {i["reference"]: i for i in report["images"]}
    a, b, bb = by_ref["dockops-test/lay-a:v1"], by_ref["dockops-test/lay-b:v1"], by_ref["busybox"]
    assert set(a) == {"reference", "id", "layers", "size", "shared_bytes", "unique_bytes"}
    assert (a["size"], a["shared_bytes"], a["unique_bytes"]) == (
        base_size + size_a, base_size, size_a,
    )  # fmt: skip
    assert (b["size"], b["shared_bytes"], b["unique_bytes"]) == (
        base_size + size_b, base_size, size_b,
    )  # fmt: skip
    assert (bb["shared_bytes"], bb["unique_bytes"]) == (base_size, 0)
    # Each image's layer sizes add up to what the engine says the image takes.
    for ref, image in by_ref.items():
        engine_size = docker_env.images.get(ref).attrs["Size"]
        if engine.kind == "podman":
            assert 0 < engine_size - image["size"] < 64 * 1024
        else:
            assert image["size"] == engine_size
    layers = report["layers"]
    assert len(layers) == 3
    assert set(layers[0]) == {"digest", "chain_id", "size", "created_by", "images"}
    assert layers[0]["digest"] == layers[0]["chain_id"] == base_diff
    assert layers[0]["images"] == ["dockops-test/lay-a:v1", "dockops-test/lay-b:v1", "busybox"]
    assert [layer["images"] for layer in layers[1:]] == [
        ["dockops-test/lay-a:v1"], ["dockops-test/lay-b:v1"],
    ]  # fmt: skip
    assert [layer["size"] for layer in layers[1:]] == [size_a, size_b]
    assert report["stored_bytes"] == base_size + size_a + size_b
    assert report["total_bytes"] == 3 * base_size + size_a + size_b

    human = cli("layers", "dockops-test/lay-a:v1", "busybox")
    assert human.out.splitlines()[0].split() == ["LAYER", "SIZE", "IMAGES", "CREATED", "BY"]
    assert "dockops-test/lay-a:v1: " in human.out and f"{human_size(size_a)} unique" in human.out
    assert cli("layers", "busybox", "dockops-test/nope").code == 2


def test_tag_and_its_bad_input(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("tag", "busybox", "dockops-test/tagged", "--json")
    assert result.code == 0, result.err
    base = docker_env.images.get("busybox:latest")
    assert json.loads(result.out) == {
        "source": "busybox",
        "target": "dockops-test/tagged:latest",
        "id": base.id,
    }
    assert "dockops-test/tagged:latest" in _tags(docker_env, "busybox:latest")
    human = cli("tag", base.id[7:19], "dockops-test/tagged:v2")
    assert human.code == 0 and human.out == f"tagged {base.id[7:19]} as dockops-test/tagged:v2\n"
    unknown = cli("tag", "dockops-test/nope:v1", "dockops-test/x:v1")
    assert unknown.code == 2 and unknown.err.startswith("dockops: error: tag dockops-test/nope:v1")
    assert cli("tag", "busybox", "Bad/Target").code == 2
