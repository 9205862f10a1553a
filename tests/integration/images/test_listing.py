"""`dockops images` end to end on the disposable engine."""

from __future__ import annotations

import json

import docker

from tests.conftest import Cli


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
    docker_env: docker.DockerClient, cli: Cli
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
    answer = docker_env.api.remove_image("dockops-test/dangle:v1", force=True)
    assert answer == [{"Untagged": "dockops-test/dangle:v1"}]
    dangling = json.loads(cli("images", "--dangling", "--json").out)
    assert [(r["id"], r["repository"], r["tag"], r["containers"]) for r in dangling] == [
        (image_id, "<none>", "<none>", ["dockops-runner"])
    ]
    runner.remove(force=True)
