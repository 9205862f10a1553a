"""`dockops images` end to end on the disposable engine."""

from __future__ import annotations

import json

import docker

from tests.conftest import Cli
from tests.harness.engine import Engine


def _commit_marker(client: docker.DockerClient, ref: str) -> str:
    box = client.containers.run(
        "busybox:latest",
        ["sh", "-c", f"echo {ref} > /marker"],
        network_mode="none",
        detach=True,
    )
    assert box.wait(timeout=60)["StatusCode"] == 0
    repository, tag = ref.rsplit(":", 1)
    image = box.commit(repository=repository, tag=tag, message="marker")
    box.remove()
    return str(image.id)


def test_images_lists_a_committed_image_with_its_holder(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    image_id = _commit_marker(docker_env, "dockops-test/committed:v1")
    before = cli("images", "dockops-test/committed", "--json")
    assert before.code == 0, before.err
    rows = json.loads(before.out)
    assert rows == [
        {
            "repository": "dockops-test/committed",
            "tag": "v1",
            "id": image_id,
            "created": rows[0]["created"],
            "size": docker_env.images.get(image_id).attrs["Size"],
            "containers": [],
        }
    ]
    docker_env.containers.create(
        "dockops-test/committed:v1", ["cat", "/marker"], name="dockops-holder", network_mode="none"
    )
    after = json.loads(cli("images", "--json").out)
    mine = [r for r in after if r["id"] == image_id]
    assert [r["containers"] for r in mine] == [["dockops-holder"]]
    assert {"busybox", "registry", "nginx"} <= {r["repository"] for r in after}

    table = cli("images", "dockops-test/committed")
    header, line = table.out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "CONTAINERS"]
    assert line.split()[:3] == ["dockops-test/committed", "v1", image_id[7:19]]
    assert line.split()[-1] == "dockops-holder"


def test_forced_untag_of_an_image_in_use_leaves_it_dangling(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    image_id = _commit_marker(docker_env, "dockops-test/dangle:v1")
    runner = docker_env.containers.run(
        "dockops-test/dangle:v1",
        ["sleep", "300"],
        name="dockops-runner",
        network_mode="none",
        detach=True,
    )
    assert json.loads(cli("images", "--dangling", "--json").out) == []
    # The usual way to a dangling image: rmi -f of a tag whose image a container still runs.
    if engine.kind == "podman":
        # Podman's own forced DELETE removes the container and the image (test_remove pins it);
        # dockops's rmi -f untags, as docker does.
        assert cli("rmi", "-f", "dockops-test/dangle:v1").code == 0
    else:
        answer = docker_env.api.remove_image("dockops-test/dangle:v1", force=True)
        assert answer == [{"Untagged": "dockops-test/dangle:v1"}]
    dangling = json.loads(cli("images", "--dangling", "--json").out)
    assert [(r["id"], r["repository"], r["tag"], r["containers"]) for r in dangling] == [
        (image_id, "<none>", "<none>", ["dockops-runner"])
    ]
    runner.remove(force=True)


def test_names_are_shown_familiar_and_a_filter_keeps_the_names_it_matches(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    """Podman stores docker.io/dockops-test/names:v1; dockops shows it as docker does, and keeps
    localhost/ (podman's home for short names). A filter goes to the engine as typed: docker
    keeps the names it matches; podman answers the whole image with all its names, so dockops
    keeps the matching ones, by podman's rule, under which a name without a registry also
    matches its localhost/ twin (as `podman images NAME` finds it)."""
    image_id = _commit_marker(docker_env, "dockops-test/names:v1")
    docker_env.api.tag(image_id, "localhost/dockops-test/names", "v2")
    docker_env.api.tag(image_id, "dockops-test/other", "v3")

    def names(*args: str) -> list[str]:
        result = cli("images", *args, "--json")
        assert result.code == 0, result.err
        rows = json.loads(result.out)
        return sorted(f"{r['repository']}:{r['tag']}" for r in rows if r["id"] == image_id)

    assert names() == [
        "dockops-test/names:v1", "dockops-test/other:v3", "localhost/dockops-test/names:v2",
    ]  # fmt: skip
    assert names("localhost/dockops-test/names") == ["localhost/dockops-test/names:v2"]
    assert names("dockops-test/other") == ["dockops-test/other:v3"]
    assert names("dockops-test/names:v1") == ["dockops-test/names:v1"]
    if engine.kind == "podman":
        assert names("dockops-test/names") == [
            "dockops-test/names:v1", "localhost/dockops-test/names:v2",
        ]  # fmt: skip
        # What the engine itself answers: every name of the image.
        [listed] = docker_env.api.images(filters={"reference": "dockops-test/names"})
        assert len(listed["RepoTags"]) == 3
    else:
        assert names("dockops-test/names") == ["dockops-test/names:v1"]
    assert names("dockops-test/nope") == []
