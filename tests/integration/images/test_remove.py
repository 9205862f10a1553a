"""rmi on the real engine: every case of its removal semantics, and what dockops says about it.

On podman, dockops never lets the engine remove a container (its forced DELETE does), names are
shown as docker shows them, and each case where podman does otherwise is pinned here.
"""

from __future__ import annotations

import json

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import Registry

OUTCOME_KEYS = {
    "reference", "outcome", "image_id", "message", "untagged", "deleted", "dangling",
    "containers", "removed_containers", "children", "flag",
}  # fmt: skip


def _commit(client: docker.DockerClient, ref: str, base: str = "busybox:latest") -> str:
    box = client.containers.run(
        base, ["sh", "-c", f"echo {ref} > /marker"], network_mode="none", detach=True
    )
    assert box.wait(timeout=60)["StatusCode"] == 0
    repository, tag = ref.rsplit(":", 1)
    image = box.commit(repository=repository, tag=tag)
    box.remove()
    return str(image.id)


def _run(client: docker.DockerClient, image: str, name: str) -> docker.models.containers.Container:
    return client.containers.run(
        image, ["sleep", "300"], name=name, network_mode="none", detach=True
    )


def _tags(client: docker.DockerClient, image_id: str) -> list[str]:
    """The image's tags as docker writes them (podman stores docker.io/team/app:1)."""
    tags = client.images.get(image_id).tags
    return [t.removeprefix("docker.io/").removeprefix("library/") for t in tags]


def _exists(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture
def in_use(docker_env: docker.DockerClient) -> str:
    """dockops-test/rmi:v1, with the running container dockops-rmi-runner using it."""
    image_id = _commit(docker_env, "dockops-test/rmi:v1")
    _run(docker_env, "dockops-test/rmi:v1", "dockops-rmi-runner")
    return image_id


def test_tag_in_use_by_a_running_container_is_refused(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    human = cli("rmi", "dockops-test/rmi:v1")
    assert (human.code, human.out) == (1, "")
    assert human.err == (
        "dockops: error: dockops-test/rmi:v1 is used by running container dockops-rmi-runner: "
        "--force removes the tag only (the image stays, dangling); --with-containers --force "
        "removes the container(s) and the image\n"
    )
    result = cli("rmi", "dockops-test/rmi:v1", "--json")
    assert result.code == 1
    [outcome] = json.loads(result.out)
    assert set(outcome) == OUTCOME_KEYS
    assert outcome["outcome"] == "refused" and outcome["image_id"] == in_use
    assert outcome["containers"] == ["dockops-rmi-runner"] and outcome["flag"] == "--force"
    assert _tags(docker_env, in_use) == ["dockops-test/rmi:v1"]


def test_forced_untag_leaves_the_image_dangling_and_says_who_holds_it(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    result = cli("rmi", "-f", "dockops-test/rmi:v1", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {
            "reference": "dockops-test/rmi:v1",
            "outcome": "untagged",
            "image_id": in_use,
            "message": f"dockops-test/rmi:v1: untagged; image {in_use[7:19]} kept, now dangling: "
            "held by container dockops-rmi-runner",
            "untagged": ["dockops-test/rmi:v1"],
            "deleted": [],
            "dangling": True,
            "containers": ["dockops-rmi-runner"],
            "removed_containers": [],
            "children": [],
            "flag": None,
        }
    ]
    assert _exists(docker_env, in_use) and _tags(docker_env, in_use) == []
    assert docker_env.containers.get("dockops-rmi-runner").status == "running"
    dangling = json.loads(cli("images", "--dangling", "--json").out)
    assert [(d["id"], d["containers"]) for d in dangling] == [(in_use, ["dockops-rmi-runner"])]


def test_forced_untag_table_says_dangling(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    result = cli("rmi", "--force", "dockops-test/rmi:v1")
    assert result.code == 0
    header, row, note = result.out.splitlines()
    assert header.split() == ["REFERENCE", "RESULT", "IMAGE", "ID", "DANGLING", "CONTAINERS"]
    assert row.split() == ["dockops-test/rmi:v1", "untagged", in_use[7:19], "yes",
                           "dockops-rmi-runner"]  # fmt: skip
    assert note.endswith("kept, now dangling: held by container dockops-rmi-runner")


def test_by_id_with_a_running_container_cannot_be_forced(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    result = cli("rmi", "-f", in_use[7:19], "--json")
    assert result.code == 1
    [outcome] = json.loads(result.out)
    assert outcome["outcome"] == "refused" and outcome["flag"] == "--with-containers --force"
    assert outcome["containers"] == ["dockops-rmi-runner"]


def test_with_containers_needs_force_for_running_ones_then_deletes(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    refused = cli("rmi", "--with-containers", "dockops-test/rmi:v1", "--json")
    assert refused.code == 1
    [outcome] = json.loads(refused.out)
    assert outcome["flag"] == "--with-containers --force" and outcome["removed_containers"] == []
    assert docker_env.containers.get("dockops-rmi-runner").status == "running"

    done = cli("rmi", "--with-containers", "--force", "dockops-test/rmi:v1", "--json")
    assert done.code == 0, done.err
    [outcome] = json.loads(done.out)
    assert outcome["outcome"] == "deleted" and outcome["removed_containers"] == [
        "dockops-rmi-runner"
    ]
    assert in_use in outcome["deleted"] and outcome["untagged"] == ["dockops-test/rmi:v1"]
    assert not _exists(docker_env, in_use)
    assert docker_env.containers.list(all=True, filters={"name": "dockops-rmi-runner"}) == []


def test_stopped_container(engine: Engine, docker_env: docker.DockerClient, cli: Cli) -> None:
    image_id = _commit(docker_env, "dockops-test/stopped:v1")
    docker_env.containers.create(
        "dockops-test/stopped:v1", ["true"], name="dockops-rmi-stopped", network_mode="none"
    )
    refused = cli("rmi", "dockops-test/stopped:v1", "--json")
    assert refused.code == 1
    [outcome] = json.loads(refused.out)
    # Podman deletes no image a container uses, even forced: --with-containers is the way.
    flag = "--with-containers" if engine.kind == "podman" else "--force"
    assert outcome["flag"] == flag and outcome["containers"] == ["dockops-rmi-stopped"]
    assert "stopped container dockops-rmi-stopped" in outcome["message"]

    removed = cli("rmi", "--with-containers", "dockops-test/stopped:v1", "--json")
    assert removed.code == 0, removed.err
    [outcome] = json.loads(removed.out)
    assert outcome["outcome"] == "deleted"
    assert outcome["removed_containers"] == ["dockops-rmi-stopped"]
    assert not _exists(docker_env, image_id)


def test_forced_removal_under_a_stopped_container_deletes_and_says_so(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    image_id = _commit(docker_env, "dockops-test/orphan:v1")
    docker_env.containers.create(
        "dockops-test/orphan:v1", ["true"], name="dockops-rmi-orphan", network_mode="none"
    )
    result = cli("rmi", "-f", "dockops-test/orphan:v1", "--json")
    assert result.code == 0, result.err
    [outcome] = json.loads(result.out)
    if engine.kind == "podman":
        # Podman cannot delete it under the container: the tag goes, the image stays dangling.
        assert (outcome["outcome"], outcome["dangling"]) == ("untagged", True)
        assert outcome["containers"] == ["dockops-rmi-orphan"]
        assert outcome["message"] == (
            f"dockops-test/orphan:v1: untagged; image {image_id[7:19]} kept, now dangling: held "
            "by container dockops-rmi-orphan; --with-containers removes them and the image"
        )
        assert _exists(docker_env, image_id) and _tags(docker_env, image_id) == []
        assert docker_env.containers.get("dockops-rmi-orphan").status == "created"
        return
    assert outcome["outcome"] == "deleted" and outcome["containers"] == ["dockops-rmi-orphan"]
    assert outcome["message"].endswith("(stopped container dockops-rmi-orphan now has no image)")
    assert not _exists(docker_env, image_id)


def test_several_tags_on_one_image(docker_env: docker.DockerClient, cli: Cli) -> None:
    image_id = _commit(docker_env, "dockops-test/multi:a")
    docker_env.api.tag(image_id, "dockops-test/multi", "b")
    by_id = cli("rmi", image_id[7:19], "--json")
    assert by_id.code == 1
    [outcome] = json.loads(by_id.out)
    assert outcome["flag"] == "--force" and "several tags" in outcome["message"]

    one_tag = cli("rmi", "dockops-test/multi:a", "--json")
    assert one_tag.code == 0
    [outcome] = json.loads(one_tag.out)
    assert (outcome["outcome"], outcome["dangling"]) == ("untagged", False)
    assert outcome["message"].endswith("kept: still tagged dockops-test/multi:b")

    docker_env.api.tag(image_id, "dockops-test/multi", "a")
    forced = cli("rmi", "-f", image_id, "--json")
    assert forced.code == 0
    [outcome] = json.loads(forced.out)
    assert outcome["outcome"] == "deleted"
    assert sorted(outcome["untagged"]) == ["dockops-test/multi:a", "dockops-test/multi:b"]
    assert not _exists(docker_env, image_id)


def test_by_id_with_several_tags_and_a_stopped_container_names_both(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    image_id = _commit(docker_env, "dockops-test/multistop:a")
    docker_env.api.tag(image_id, "dockops-test/multistop", "b")
    docker_env.containers.create(
        "dockops-test/multistop:a", ["true"], name="dockops-rmi-multistop", network_mode="none"
    )
    refused = cli("rmi", image_id[7:19], "--json")
    assert refused.code == 1
    [outcome] = json.loads(refused.out)
    # --with-containers alone would still be refused by ID: the advice must say --force. On
    # podman --force alone deletes nothing a container uses: both are needed.
    assert outcome["flag"] == (
        "--with-containers --force" if engine.kind == "podman" else "--force"
    )
    assert "several tags" in outcome["message"]
    assert "stopped container dockops-rmi-multistop" in outcome["message"]
    assert "--with-containers --force" in outcome["message"]
    assert _exists(docker_env, image_id)


def test_dependent_child_images(engine: Engine, docker_env: docker.DockerClient, cli: Cli) -> None:
    parent = _commit(docker_env, "dockops-test/parent:v1")
    child = _commit(docker_env, "dockops-test/child:v1", base="dockops-test/parent:v1")
    if engine.kind == "podman":
        # Podman deletes a parent image like any other, by ID as by tag (the child keeps its
        # layers) and answers only Untagged: dockops says what happened, deleted.
        by_id = cli("rmi", "-f", parent, "--json")
        assert by_id.code == 0, by_id.err
        [outcome] = json.loads(by_id.out)
        assert (outcome["outcome"], outcome["deleted"]) == ("deleted", [parent])
        assert outcome["untagged"] == ["dockops-test/parent:v1"]
        assert not _exists(docker_env, parent)
        assert _tags(docker_env, child) == ["dockops-test/child:v1"]
        assert cli("rmi", "dockops-test/child:v1").code == 0 and not _exists(docker_env, child)
        return
    by_id = cli("rmi", "-f", parent, "--json")
    assert by_id.code == 1
    [outcome] = json.loads(by_id.out)
    assert outcome["flag"] is None and outcome["children"] == ["dockops-test/child:v1"]
    assert outcome["message"] == (
        f"{parent} is the parent of dockops-test/child:v1: remove those first (no flag forces this)"
    )
    by_tag = cli("rmi", "dockops-test/parent:v1", "--json")
    assert by_tag.code == 0
    [outcome] = json.loads(by_tag.out)
    assert outcome["outcome"] == "untagged" and outcome["children"] == ["dockops-test/child:v1"]
    assert outcome["dangling"] is False  # the engine does not list a parent as dangling
    child = cli("rmi", "dockops-test/child:v1", "--json")
    [outcome] = json.loads(child.out)
    # Removing the child takes the untagged parent with it.
    assert outcome["outcome"] == "deleted" and parent in outcome["deleted"]


def test_by_id_without_holders_is_deleted(docker_env: docker.DockerClient, cli: Cli) -> None:
    image_id = _commit(docker_env, "dockops-test/byid:v1")
    result = cli("rmi", image_id[7:19])
    assert result.code == 0
    assert result.out.splitlines()[1].split() == [image_id[7:19], "deleted", image_id[7:19]]
    assert not _exists(docker_env, image_id)


def test_several_refs_some_failing_is_exit_5_with_each_outcome(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    other = _commit(docker_env, "dockops-test/other:v1")
    result = cli(
        "rmi", "dockops-test/other:v1", "dockops-test/rmi:v1", "dockops-test/none:v1", "--json"
    )
    assert result.code == 5
    outcomes = json.loads(result.out)
    assert [(o["reference"], o["outcome"]) for o in outcomes] == [
        ("dockops-test/other:v1", "deleted"),
        ("dockops-test/rmi:v1", "refused"),
        ("dockops-test/none:v1", "missing"),
    ]
    assert result.err.startswith("dockops: error: rmi: 2 of 3 not removed: ")
    assert result.err.count("\n") == 1
    assert not _exists(docker_env, other)

    table = cli("rmi", "dockops-test/rmi:v1", "busybox:dockops-no-such-tag")
    assert table.code == 1  # nothing removed: a refusal, not a partial success
    assert [line.split()[:2] for line in table.out.splitlines()[1:3]] == [
        ["dockops-test/rmi:v1", "refused"],
        ["busybox:dockops-no-such-tag", "missing"],
    ]


def test_unknown_image_is_exit_2_with_one_line(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("rmi", "dockops-test/none:v1")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "dockops: error: rmi dockops-test/none:v1: No such image: dockops-test/none:v1\n"
    )


def test_with_containers_spares_the_containers_of_an_image_other_tags_keep(
    docker_env: docker.DockerClient, cli: Cli, in_use: str
) -> None:
    docker_env.api.tag(in_use, "dockops-test/rmi", "v2")
    result = cli("rmi", "dockops-test/rmi:v1", "--with-containers", "--force", "--json")
    assert result.code == 0, result.err
    [outcome] = json.loads(result.out)
    assert (outcome["outcome"], outcome["untagged"]) == ("untagged", ["dockops-test/rmi:v1"])
    assert (outcome["containers"], outcome["removed_containers"]) == (["dockops-rmi-runner"], [])
    assert outcome["message"] == (
        f"dockops-test/rmi:v1: untagged; image {in_use[7:19]} kept: still tagged "
        "dockops-test/rmi:v2, so --with-containers kept its container(s): dockops-rmi-runner"
    )
    assert docker_env.containers.get("dockops-rmi-runner").status == "running"
    assert _tags(docker_env, in_use) == ["dockops-test/rmi:v2"]

    # The last tag: now the image really goes, and its container first.
    last = cli("rmi", "dockops-test/rmi:v2", "--with-containers", "--force", "--json")
    assert last.code == 0, last.err
    [outcome] = json.loads(last.out)
    assert outcome["outcome"] == "deleted"
    assert outcome["removed_containers"] == ["dockops-rmi-runner"]
    assert not _exists(docker_env, in_use)


def test_with_containers_by_id_with_several_tags_needs_force_and_removes_nothing(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    image_id = _commit(docker_env, "dockops-test/ids:a")
    docker_env.api.tag(image_id, "dockops-test/ids", "b")
    docker_env.containers.create(
        "dockops-test/ids:a", ["true"], name="dockops-rmi-ids", network_mode="none"
    )
    refused = cli("rmi", image_id[7:19], "--with-containers", "--json")
    assert refused.code == 1
    [outcome] = json.loads(refused.out)
    assert (outcome["outcome"], outcome["flag"]) == ("refused", "--with-containers --force")
    assert outcome["removed_containers"] == [] and "several names" in outcome["message"]
    assert docker_env.containers.get("dockops-rmi-ids").status == "created"

    forced = cli("rmi", image_id[7:19], "--with-containers", "--force", "--json")
    assert forced.code == 0, forced.err
    [outcome] = json.loads(forced.out)
    assert outcome["outcome"] == "deleted" and outcome["removed_containers"] == ["dockops-rmi-ids"]
    assert not _exists(docker_env, image_id)


def test_with_containers_keeps_the_containers_of_a_parent_image(
    docker_env: docker.DockerClient, cli: Cli
) -> None:
    _commit(docker_env, "dockops-test/parent:v1")
    _commit(docker_env, "dockops-test/child:v1", base="dockops-test/parent:v1")
    _run(docker_env, "dockops-test/parent:v1", "dockops-rmi-parent")
    result = cli("rmi", "dockops-test/parent:v1", "--with-containers", "--force", "--json")
    assert result.code == 0, result.err
    [outcome] = json.loads(result.out)
    assert outcome["outcome"] == "untagged" and outcome["removed_containers"] == []
    assert outcome["message"].endswith(
        "kept, untagged: parent of dockops-test/child:v1, so --with-containers kept its "
        "container(s): dockops-rmi-parent"
    )
    assert docker_env.containers.get("dockops-rmi-parent").status == "running"


@pytest.mark.engines("docker")
def test_with_containers_counts_digests(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli, request: pytest.FixtureRequest
) -> None:
    """A digest of another repository keeps the image; one of the tag's own repository goes
    with its last tag (the engine removes it too), so the image is deleted."""
    reg: Registry = request.getfixturevalue("reg")
    repository = f"{reg.address}/dockops-test/dig"
    image_id = _commit(docker_env, f"{repository}:v1")
    docker_env.api.push(repository, "v1")
    [digest] = docker_env.images.get(image_id).attrs["RepoDigests"]
    docker_env.api.tag(image_id, "dockops-test/dig", "local")
    _run(docker_env, image_id, "dockops-rmi-dig")

    by_digest = cli("rmi", digest, "--with-containers", "--force", "--json")
    assert by_digest.code == 0, by_digest.err
    [outcome] = json.loads(by_digest.out)
    assert outcome["outcome"] == "untagged" and outcome["removed_containers"] == []
    assert docker_env.containers.get("dockops-rmi-dig").status == "running"

    docker_env.api.push(repository, "v1")  # the digest back
    assert docker_env.images.get(image_id).attrs["RepoDigests"] == [digest]
    assert cli("rmi", "dockops-test/dig:local").code == 0
    last = cli("rmi", f"{repository}:v1", "--with-containers", "--force", "--json")
    assert last.code == 0, last.err
    [outcome] = json.loads(last.out)
    assert outcome["outcome"] == "deleted"
    assert outcome["removed_containers"] == ["dockops-rmi-dig"]
    assert sorted(outcome["untagged"]) == sorted([f"{repository}:v1", digest])


@pytest.mark.engines("podman")
def test_podman_digests_are_no_names(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    """Podman keeps digests with the image, not as names (every name has the image's digest):
    one cannot go alone while other names remain, so dockops refuses and keeps the container;
    with the last name, the image goes."""
    image_id = _commit(docker_env, "127.0.0.1:5999/dockops-test/dig:v1")
    docker_env.api.tag(image_id, "dockops-test/dig", "local")
    digest = next(d for d in docker_env.images.get(image_id).attrs["RepoDigests"] if "5999" in d)
    _run(docker_env, image_id, "dockops-rmi-dig")

    by_digest = cli("rmi", digest, "--with-containers", "--force", "--json")
    assert by_digest.code == 1
    [outcome] = json.loads(by_digest.out)
    assert (outcome["outcome"], outcome["removed_containers"]) == ("refused", [])
    assert outcome["message"] == (
        f"{digest}: podman keeps digests with the image, not as names: it removes a digest "
        "only with the image's last name (remove the tags, or the image by ID)"
    )
    assert docker_env.containers.get("dockops-rmi-dig").status == "running"

    assert cli("rmi", "dockops-test/dig:local").code == 0
    last = cli("rmi", "127.0.0.1:5999/dockops-test/dig:v1", "--with-containers", "--force",
               "--json")  # fmt: skip
    assert last.code == 0, last.err
    [outcome] = json.loads(last.out)
    assert outcome["outcome"] == "deleted"
    assert outcome["removed_containers"] == ["dockops-rmi-dig"]
    # Podman's answer names the tag only: the digest went with it, unsaid.
    assert outcome["untagged"] == ["127.0.0.1:5999/dockops-test/dig:v1"]
    assert not _exists(docker_env, image_id)


@pytest.mark.engines("podman")
def test_podman_s_own_forced_delete_removes_the_container_dockops_s_does_not(
    engine: Engine, docker_env: docker.DockerClient, cli: Cli
) -> None:
    """Why dockops never sends force to podman: its compat DELETE with force removes the
    running container with the image (4.3), where docker only untags."""
    image_id = _commit(docker_env, "dockops-test/podforce:v1")
    _run(docker_env, "dockops-test/podforce:v1", "dockops-rmi-podforce")
    docker_env.api.remove_image("dockops-test/podforce:v1", force=True)
    assert not _exists(docker_env, image_id)
    assert docker_env.containers.list(all=True, filters={"name": "dockops-rmi-podforce"}) == []

    image_id = _commit(docker_env, "dockops-test/podforce:v1")
    _run(docker_env, "dockops-test/podforce:v1", "dockops-rmi-podforce")
    assert cli("rmi", "-f", "dockops-test/podforce:v1").code == 0
    assert _exists(docker_env, image_id) and _tags(docker_env, image_id) == []
    assert docker_env.containers.get("dockops-rmi-podforce").status == "running"
