"""Deletes that know image indexes (multi-arch images), against a real registry:2: indexes and
their untagged images are pushed by the API, as buildx and `docker manifest push` do."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest
import requests

from tests.conftest import Cli
from tests.support.registry_seed import LIST_TYPE, MANIFEST_TYPE, OCI_INDEX_TYPE, Seeder
from tests.support.registry_server import Registry, free_port

ACCEPT = ", ".join((MANIFEST_TYPE, LIST_TYPE, OCI_INDEX_TYPE))


def _held(address: str, repository: str, reference: str) -> bool:
    """Whether the registry serves that manifest (tag or digest)."""
    got = requests.get(
        f"http://{address}/v2/{repository}/manifests/{reference}",
        headers={"Accept": ACCEPT},
        timeout=30,
    )
    assert got.status_code in (200, 404), got.text
    return got.status_code == 200


def _multiarch(
    seeder: Seeder, repository: str, tag: str, media_type: str = LIST_TYPE, **kw: datetime
) -> tuple[str, list[str]]:
    """Push two untagged images (amd64, arm64) and an index of them under `tag`."""
    children = [
        seeder.tag(repository, None, architecture=arch, created=kw.get(arch))
        for arch in ("amd64", "arm64")
    ]
    return seeder.index(repository, tag, children, media_type), children


def test_rm_refuses_an_image_a_kept_index_references(reg: Registry, cli: Cli) -> None:
    seeder = Seeder.start(reg.address)
    _, (amd64, _) = _multiarch(seeder, "app", "1")
    seeder.same_digest("app", amd64, "1-amd64")  # the amd64 image is tagged too
    args = ["--registry", reg.address]
    for flags in ([], ["--force"], ["--dry-run"]):
        refused = cli("registry", "rm", "app:1-amd64", *flags, *args)
        assert refused.code == 1, refused.err
        assert "the index app:1 references" in refused.err and amd64 in refused.err
    assert _held(reg.address, "app", amd64) and _held(reg.address, "app", "1")
    assert _held(reg.address, "app", "1-amd64")


def test_rm_of_an_index_deletes_it_with_its_images(reg: Registry, cli: Cli) -> None:
    seeder = Seeder.start(reg.address)
    index, (amd64, arm64) = _multiarch(seeder, "app", "1", OCI_INDEX_TYPE)
    seeder.same_digest("app", arm64, "1-arm64")  # tagged: it stays
    args = ["--registry", reg.address]
    planned = cli("registry", "rm", "app:1", "--dry-run", "--json", *args)
    assert planned.code == 0, planned.err
    plan = json.loads(planned.out)
    assert plan["digest"] == index and plan["children_removed"] == [amd64]
    assert _held(reg.address, "app", index) and _held(reg.address, "app", amd64)

    done = cli("registry", "rm", "app:1", "--json", *args)
    assert done.code == 0, done.err
    assert {k: v for k, v in json.loads(done.out).items() if k != "dry_run"} == {
        k: v for k, v in plan.items() if k != "dry_run"
    }
    assert not _held(reg.address, "app", index) and not _held(reg.address, "app", amd64)
    assert _held(reg.address, "app", arm64) and _held(reg.address, "app", "1-arm64")


def test_prune_counts_an_index_with_its_images_as_one(reg: Registry, cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    seeder = Seeder.start(reg.address)
    # Oldest first: old (index, 30 days), mid (image, 20), new (index, 10) listing one of
    # old's images, top (image, now). The images' created times make the indexes' ages.
    day = timedelta(days=1)
    old, (old_amd64, old_arm64) = _multiarch(
        seeder, "svc", "old", amd64=now - 31 * day, arm64=now - 30 * day
    )
    seeder.tag("svc", "mid", created=now - 20 * day)
    new_arm64 = seeder.tag("svc", None, architecture="arm64", created=now - 10 * day)
    new = seeder.index("svc", "new", [old_amd64, new_arm64])
    seeder.tag("svc", "top", created=now)
    args = ["--registry", reg.address]

    planned = cli("registry", "prune", "svc", "--keep", "2", "--dry-run", "--json", *args)
    assert planned.code == 0, planned.err
    plan = json.loads(planned.out)
    # --keep 2 keeps two tags, an index being one: top and new; old and mid go, and of old's
    # images the one that the kept index new also lists stays.
    assert sorted(a["tag"] for a in plan["kept"]) == ["new", "top"]
    assert sorted(a["tag"] for a in plan["removed"]) == ["mid", "old"]
    assert plan["deleted_digests"][0] == old  # the index before its images
    assert plan["deleted_children"] == [old_arm64]
    human = cli("registry", "prune", "svc", "--keep", "2", "--dry-run", *args).out
    assert "delete (an index of 2)" in human and "and 1 manifests of the deleted indexes" in human

    done = cli("registry", "prune", "svc", "--keep", "2", "--json", *args)
    assert done.code == 0, done.err
    result = json.loads(done.out)
    for key in ("removed", "kept", "deleted_digests", "deleted_children"):
        assert result[key] == plan[key]
    assert json.loads(cli("registry", "tags", "svc", "--json", *args).out) == ["new", "top"]
    assert not _held(reg.address, "svc", old) and not _held(reg.address, "svc", old_arm64)
    for kept in (new, old_amd64, new_arm64):
        assert _held(reg.address, "svc", kept)


def test_prune_keeps_an_image_tag_that_a_kept_index_references(reg: Registry, cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    seeder = Seeder.start(reg.address)
    # The images are older than the index would rank them: tagged on their own, they lose
    # --keep 1 to the index, and stay because it references them.
    _, (amd64, _) = _multiarch(
        seeder, "web", "1", amd64=now - timedelta(days=3), arm64=now - timedelta(days=2)
    )
    seeder.same_digest("web", amd64, "1-amd64")
    args = ["--registry", reg.address]
    done = cli("registry", "prune", "web", "--keep", "1", "--json", *args)
    assert done.code == 0, done.err
    result = json.loads(done.out)
    assert result["removed"] == [] and result["deleted_digests"] == []
    reasons = {a["tag"]: a["reason"] for a in result["kept"]}
    assert reasons == {"1": "among the newest 1", "1-amd64": "an image of kept index 1"}
    assert _held(reg.address, "web", amd64) and _held(reg.address, "web", "1")


def test_gc_delete_untagged_refuses_to_delete_the_images_of_an_index(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "registry-data"
    port = free_port()
    up = cli(
        "registry", "up", "--name", "dockops-gcidx", "--network", "host", "--bind", "127.0.0.1",
        "--port", str(port), "--data", str(data),
    )  # fmt: skip
    assert up.code == 0, up.err
    address = f"127.0.0.1:{port}"
    try:
        seeder = Seeder.start(address)
        index, children = _multiarch(seeder, "multi", "1")
        stray = seeder.tag("multi", None)  # untagged, in no index: --delete-untagged's own case
        seeder.tag("multi", "plain")  # a tag that stays: the collector skips a tagless repository
        for flags in (["--dry-run"], []):
            refused = cli("registry", "gc", "--name", "dockops-gcidx", "--delete-untagged", *flags)
            assert refused.code == 1, (refused.out, refused.err)
            assert f"multi@{index}" in refused.err and "distribution#3178" in refused.err
            assert "2 untagged images" in refused.err
        for child in (*children, stray):
            assert _held(address, "multi", child)  # nothing was deleted, and it serves again

        # Once the index is deleted with its images, only untagged strays are left: it runs,
        # and says which manifests it deleted.
        assert cli("registry", "rm", "multi:1").code == 0
        dry = cli("registry", "gc", "--name", "dockops-gcidx", "--delete-untagged", "--dry-run",
                  "--json")  # fmt: skip
        assert dry.code == 0, dry.err
        assert json.loads(dry.out)["manifests_deleted"] == [f"multi@{stray}"]
        gc = cli("registry", "gc", "--name", "dockops-gcidx", "--delete-untagged", "--json")
        assert gc.code == 0, gc.err
        assert json.loads(gc.out)["manifests_deleted"] == [f"multi@{stray}"]
        assert not _held(address, "multi", stray)
    finally:
        cli("registry", "down", "--name", "dockops-gcidx")


pytestmark = pytest.mark.timeout(300)
