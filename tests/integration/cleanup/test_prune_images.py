"""prune-images on both engines: --keep-last per repository over images with several tags and
images in two repositories, what keeps an image (a container, a label), the re-check of each
image between plan and delete, --dry-run against the real run, and the JSON report.

Images are loaded from save-format tars, one load each, in the order of their creation dates:
Docker's load event makes a load a use, Podman's names no image (neither engine sets a last
tag time on load), so both engines see the same order. Each test has a repository of its own.
Podman's load stores a short name under localhost/ (its tag and commit do not) and dockops
reports it as stored; a --reference typed without it matches it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import docker
import pytest

from dockops.core.cleanup import prune_images as prune_images_module
from dockops.core.cleanup.lock import exclusive
from dockops.core.cleanup.prune_images import execute_plan, plan_images
from dockops.core.cleanup.retention import RetentionRules
from dockops.engine import connect
from dockops.reference import familiar_name
from dockops.units import parse_timestamp
from tests.conftest import Cli
from tests.harness.engine import Engine as HarnessEngine
from tests.support.events import wait_for_event
from tests.support.imagefactory import FakeImage, ago, load_images
from tests.support.pruning import load_in_order, loaded, prune


def tags_of(client: docker.DockerClient, image_id: str) -> set[str] | None:
    """The image's tags as the engine holds them now, familiar; None when it is gone."""
    try:
        return {familiar_name(t) for t in client.api.inspect_image(image_id)["RepoTags"] or ()}
    except docker.errors.NotFound:
        return None


def removed_of(report: dict[str, Any]) -> list[tuple[str, set[str], bool]]:
    return [(r["image"], set(r["tags"]), r["delete"]) for r in report["removed"]]


def kept_of(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {k["reference"]: (k["kind"], k["reason"]) for k in report["kept"]}


def test_keep_last_counts_images_per_repository_and_an_image_goes_with_all_its_tags(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    old, middle, newest = load_in_order(
        docker_env,
        [
            FakeImage(created=ago(days=4), seed="kl-a", tags=(f"{repo}:1", f"{repo}:one")),
            FakeImage(created=ago(days=3), seed="kl-b", tags=(f"{repo}:2",)),
            FakeImage(created=ago(days=2), seed="kl-c", tags=(f"{repo}:3", f"{repo}-other:x")),
        ],
    )
    app = loaded(engine, repo)
    code, report = prune(cli, tmp_path, "--reference", repo, "--keep-last", "1")

    assert code == 0 and report["failed"] == []
    # Least recently used first; the two tags of one image rank (and go) together.
    assert removed_of(report) == [
        (old, {f"{app}:1", f"{app}:one"}, True),
        (middle, {f"{app}:2"}, True),
    ]
    # Docker's load is a use (its event); Podman's event names no image: its creation counts.
    loaded_use = "image loaded (engine event)" if engine.kind == "docker" else "created"
    assert report["removed"][1]["last_use"]["source"] == loaded_use
    assert report["removed"][1]["reason"] == "2nd most recently used, beyond --keep-last 1"
    # other:x is outside --reference: not a candidate, not reported, and it does not hold C.
    assert kept_of(report) == {
        f"{app}:3": ("keep-last", f"1st most recently used of {app} (--keep-last 1)")
    }
    assert report["reclaimed_bytes"] == sum(r["freed"] for r in report["removed"]) > 0
    assert tags_of(docker_env, old) is None and tags_of(docker_env, middle) is None
    assert tags_of(docker_env, newest) == {f"{app}:3", loaded(engine, f"{repo}-other:x")}


def test_an_image_with_a_tag_outside_the_plan_is_only_untagged(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    shared, newest = load_in_order(
        docker_env,
        [
            FakeImage(created=ago(days=4), seed="ut-a", tags=(f"{repo}:1", f"{repo}-keep:1")),
            FakeImage(created=ago(days=2), seed="ut-b", tags=(f"{repo}:2",)),
        ],
    )
    app = loaded(engine, repo)
    code, report = prune(cli, tmp_path, "--reference", repo, "--keep-last", "1")

    assert code == 0 and report["failed"] == []
    keeps = loaded(engine, f"{repo}-keep:1")
    assert removed_of(report) == [(shared, {f"{app}:1"}, False)]
    assert report["removed"][0]["freed"] == 0 and report["reclaimed_bytes"] == 0
    assert report["removed"][0]["reason"].endswith(f"untagged only: still tagged {keeps}")
    # Untagged, never deleted: on Podman through its own untag, which never deletes.
    assert tags_of(docker_env, shared) == {keeps}
    assert tags_of(docker_env, newest) == {f"{app}:2"}


def _busybox_image(client: docker.DockerClient, ref: str, text: str) -> str:
    """An image that can run (busybox with one file more), committed under `ref`."""
    box = client.containers.create(
        "busybox:latest", ["sh", "-c", f"echo {text} > /f"], network_mode="none"
    )
    box.start()
    box.wait(timeout=60)
    repository, tag = ref.rsplit(":", 1)
    image_id = str(box.commit(repository=repository, tag=tag).id)
    box.remove()
    return image_id


def test_images_a_container_uses_or_a_label_keeps_stay_and_say_which_rule(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    running_image = _busybox_image(docker_env, f"{repo}:running", "running")
    stopped_image = _busybox_image(docker_env, f"{repo}:stopped", "stopped")
    labelled, free = load_images(
        docker_env,
        [
            FakeImage(seed="rule-l", labels={"keep": "yes"}, tags=(f"{repo}:labelled",)),
            FakeImage(seed="rule-f", tags=(f"{repo}:free",)),
        ],
    )
    running = docker_env.containers.create(running_image, ["sleep", "300"], network_mode="none")
    running.start()
    stopped = docker_env.containers.create(stopped_image, ["sleep", "1"], network_mode="none")
    stopped.start()
    stopped.wait(timeout=60)
    app = loaded(engine, repo)

    code, report = prune(
        cli, tmp_path, "--reference", repo, "--keep-last", "0", "--keep-label", "keep=yes"
    )
    assert code == 0 and report["failed"] == []
    assert removed_of(report) == [(free, {f"{app}:free"}, True)]
    # Committed images keep the name as typed on both engines; loaded ones are localhost/ on
    # Podman: --reference dockops-test/app matches both.
    assert kept_of(report) == {
        f"{repo}:running": ("in-use", f"in use by container {running.id[:12]}"),
        f"{repo}:stopped": ("in-use", f"in use by container {stopped.id[:12]}"),
        f"{app}:labelled": ("kept-label", "kept label keep=yes"),
    }
    # A container's start and finish are uses of its image.
    uses = {k["reference"]: k["last_use"]["source"] for k in report["kept"]}
    assert uses[f"{repo}:running"].startswith(f"container {running.id[:12]} started")
    assert uses[f"{repo}:stopped"].startswith(f"container {stopped.id[:12]} finished")
    assert tags_of(docker_env, free) is None
    for image_id in (running_image, stopped_image, labelled):
        assert tags_of(docker_env, image_id)
    running.remove(force=True)


def test_an_image_that_changes_between_plan_and_delete_is_kept(
    engine: HarnessEngine, docker_env: docker.DockerClient, repo: str
) -> None:
    gains_tag, gains_container, two_tags_gain_container, goes = load_images(
        docker_env,
        [
            FakeImage(created=ago(days=5), seed="rc-tag", tags=(f"{repo}:1",)),
            FakeImage(created=ago(days=5), seed="rc-box", tags=(f"{repo}:2",)),
            FakeImage(created=ago(days=5), seed="rc-box2", tags=(f"{repo}:3", f"{repo}:three")),
            FakeImage(created=ago(days=5), seed="rc-goes", tags=(f"{repo}:4",)),
        ],
    )
    app = loaded(engine, repo)
    rules = RetentionRules(references=(repo,), keep_last=0)
    plan, _ = plan_images(connect(), rules)
    planned = {e.image for e in plan.remove if e.delete}
    assert {gains_tag, gains_container, two_tags_gain_container, goes} <= planned

    docker_env.api.tag(gains_tag, f"{repo}-late", "v1")
    box = docker_env.containers.create(gains_container, ["sh"], network_mode="none")
    box2 = docker_env.containers.create(two_tags_gain_container, ["sh"], network_mode="none")
    result = execute_plan(connect(), plan)

    assert result.failed == ()
    assert [e.image for e in result.removed] == [goes]
    kept = {(k.reference, k.kind, k.reason) for k in result.kept}
    late = f"{repo}-late:v1"  # tagged, not loaded: no localhost/ on Podman
    assert (f"{app}:1", "changed", f"tagged since planning ({late})") in kept
    # One tag: the engine refuses the delete by ID (atomically with it) and names the holder.
    assert (f"{app}:2", "in-use", f"in use by container {box.id[:12]} (since planning)") in kept
    # Two tags: dockops looks before untagging the first, so both stay.
    since = "in use by a container created since planning"
    assert {(f"{app}:3", "in-use", since), (f"{app}:three", "in-use", since)} <= kept
    assert tags_of(docker_env, gains_tag) == {f"{app}:1", late}
    assert tags_of(docker_env, gains_container) == {f"{app}:2"}
    assert tags_of(docker_env, two_tags_gain_container) == {f"{app}:3", f"{app}:three"}
    assert tags_of(docker_env, goes) is None
    box.remove()
    box2.remove()


def test_a_container_made_in_the_instant_before_the_delete_is_reported_as_what_happened(
    engine: HarnessEngine,
    docker_env: docker.DockerClient,
    repo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check for containers and the delete by ID are two requests: a container created
    between them makes the engine refuse the delete after the first tag went. The report says
    that tag was untagged and the last one kept, as the engine holds them."""
    (image,) = load_images(
        docker_env,
        [FakeImage(created=ago(days=5), seed="instant", tags=(f"{repo}:1", f"{repo}:2"))],
    )
    app = loaded(engine, repo)
    plan, _ = plan_images(connect(), RetentionRules(references=(repo,), keep_last=0))
    (eviction,) = plan.remove
    assert eviction.delete and set(eviction.tags) == {f"{app}:1", f"{app}:2"}
    made: list[Any] = []

    def too_late(_engine: object, image_id: str) -> bool:
        made.append(docker_env.containers.create(image_id, ["sh"], network_mode="none"))
        return False  # what the check saw, an instant before the container came

    monkeypatch.setattr(prune_images_module, "_holders", too_late)
    result = execute_plan(connect(), plan)

    first, last = eviction.tags
    assert result.failed == ()
    assert [(e.tags, e.delete, e.freed) for e in result.removed] == [((first,), False, 0)]
    assert [(k.reference, k.kind) for k in result.kept] == [(last, "in-use")]
    assert tags_of(docker_env, image) == {last}
    made[0].remove()


def test_dry_run_touches_nothing_takes_no_lock_and_the_real_run_does_exactly_its_plan(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    ids = load_in_order(
        docker_env,
        [FakeImage(created=ago(days=10), seed="dry-x", tags=(f"{repo}:x", f"{repo}-y:1"))]
        + [
            FakeImage(
                created=ago(days=9 - n), seed=f"dry-{n}", tags=(f"{repo}:{n}", f"{repo}:v{n}")
            )
            for n in range(5)
        ],
    )
    before = {i: tags_of(docker_env, i) for i in ids}
    lock = tmp_path / "lock"
    with exclusive(lock):  # a real run holds the lock: a look still works
        code, plan = prune(cli, tmp_path, "--reference", repo, "--keep-last", "2", "--dry-run")
    assert code == 0 and plan["dry_run"] is True
    assert {i: tags_of(docker_env, i) for i in ids} == before
    assert not (tmp_path / "usage.json").exists()  # nor the usage record
    assert {r["image"] for r in plan["removed"]} == set(ids[:4])

    code, done = prune(cli, tmp_path, "--reference", repo, "--keep-last", "2")
    assert code == 0 and done["dry_run"] is False and done["failed"] == []
    assert done["removed"] == plan["removed"]  # same images, tags, sizes, last uses, reasons
    assert done["kept"] == plan["kept"]
    assert done["reclaimed_bytes"] == plan["reclaimed_bytes"]
    for eviction in plan["removed"]:
        left = (before[eviction["image"]] or set()) - set(eviction["tags"])
        assert tags_of(docker_env, eviction["image"]) == (None if eviction["delete"] else left)
    assert tags_of(docker_env, ids[4]) == before[ids[4]]
    assert tags_of(docker_env, ids[5]) == before[ids[5]]


def test_the_json_report_shape(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    load_in_order(
        docker_env,
        [
            FakeImage(created=ago(days=3), seed="shape-a", tags=(f"{repo}:1",)),
            FakeImage(created=ago(days=2), seed="shape-b", tags=(f"{repo}:2",)),
        ],
    )
    code, report = prune(
        cli, tmp_path, "--reference", repo, "--keep-last", "1", "--max-disk", "1TB"
    )
    assert code == 0
    assert set(report) >= {"dry_run", "removed", "kept", "reclaimed_bytes", "budget", "failed"}
    # Within 1TB already: nothing goes, and each candidate says which rule keeps it.
    assert report["removed"] == []
    kinds = {k["reference"]: k["kind"] for k in report["kept"]}
    assert kinds == {
        f"{loaded(engine, repo)}:2": "keep-last",
        f"{loaded(engine, repo)}:1": "max-disk",
    }
    for kept in report["kept"]:
        assert set(kept) == {"reference", "image", "kind", "reason", "last_use"}
        assert set(kept["last_use"]) == {"when", "source"}
    assert set(report["budget"]) == {"limit", "before", "after", "shortfall", "held"}
    assert report["budget"]["limit"] == 1_000_000_000_000 and report["budget"]["shortfall"] == 0

    code, report = prune(cli, tmp_path, "--reference", repo, "--keep-last", "1")
    assert code == 0 and report["budget"] is None
    [removed] = report["removed"]
    assert set(removed) == {"image", "tags", "delete", "freed", "last_use", "reason"}
    assert set(removed["last_use"]) == {"when", "source"}
    assert removed["last_use"]["when"].endswith("Z")
    assert isinstance(removed["freed"], int) and removed["delete"] is True


@pytest.mark.parametrize("bad", [[], ["--max-disk", "101%"], ["--keep-last", "-1"]])
def test_bad_input_exits_2_before_the_engine(
    cli: Cli, bad: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # 3 if anything reached it
    result = cli("prune-images", "--lock-file", str(tmp_path / "lock"), *bad)
    assert result.code == 2, result


def test_a_name_another_run_removes_just_before_the_untag_is_no_failure(
    engine: HarnessEngine,
    docker_env: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    repo: str,
) -> None:
    # Two runs with their own lock files: both re-check an image, one removes its first name,
    # then the other asks for the same name (Docker answers 404, Podman's untag "tag not
    # known"). The other run deletes the image; this one has nothing left to do.
    [image_id] = load_images(
        docker_env, [FakeImage(created=ago(days=5), seed="race", tags=(f"{repo}:1", f"{repo}:2"))]
    )
    plan, _ = plan_images(connect(), RetentionRules(references=(repo,), keep_last=0))
    [eviction] = [e for e in plan.remove if e.image == image_id]
    real = prune_images_module._untag

    def other_run_first(client: Any, image: str, name: str, podman: bool) -> None:
        real(client, image, name, podman)
        real(client, image, name, podman)

    monkeypatch.setattr(prune_images_module, "_untag", other_run_first)
    result = execute_plan(connect(), plan)
    assert result.failed == ()
    assert {(k.reference, k.kind) for k in result.kept if k.image == image_id} == {
        (tag, "gone") for tag in eviction.tags
    }


def _used_then_removed(client: docker.DockerClient, repo: str) -> tuple[str, str, str]:
    """Two images, `used` made first; then a container of `used` that ran and was removed:
    only the engine's events, or a usage record written meanwhile, know it used `used`."""
    used = _busybox_image(client, f"{repo}:used", "used")
    idle = _busybox_image(client, f"{repo}:idle", "idle")
    since = datetime.now(timezone.utc)
    box = client.containers.create(used, ["true"], network_mode="none")
    box.start()
    box.wait(timeout=60)
    box.remove()
    wait_for_event(since, f"container {str(box.id)[:12]} finished (engine event)")
    return used, idle, str(box.id)[:12]


def test_a_removed_container_counts_through_the_engines_events_alone(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    used, idle, box = _used_then_removed(docker_env, repo)
    assert not (tmp_path / "usage.json").exists()  # no record: the last week's events
    code, report = prune(cli, tmp_path, "--reference", repo, "--keep-last", "1", "--dry-run")
    assert code == 0
    assert [r["image"] for r in report["removed"]] == [idle]
    [kept] = report["kept"]
    assert kept["image"] == used
    assert kept["last_use"]["source"] == f"container {box} finished (engine event)"
    assert report["usage_record"] == f"{tmp_path / 'usage.json'}: missing"


def test_a_removed_container_counts_through_the_usage_record_alone(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, repo: str
) -> None:
    used, idle, box = _used_then_removed(docker_env, repo)
    # Past the events' overlap (5 s): a run now records the use, and the next one reads the
    # events from there on only, which no longer hold the container's.
    time.sleep(6)
    code, first = prune(cli, tmp_path, "--reference", repo, "--keep-last", "5")
    assert code == 0 and first["removed"] == []
    record = json.loads((tmp_path / "usage.json").read_text())
    recorded = record["images"][used]
    assert recorded["source"] == f"container {box} finished (engine event)"
    # The next run reads the events from 5 s before events_until: after the container went.
    window = parse_timestamp(record["events_until"]) - timedelta(seconds=5)
    assert window > parse_timestamp(recorded["last_used"])  # type: ignore[operator]

    code, report = prune(cli, tmp_path, "--reference", repo, "--keep-last", "1", "--dry-run")
    assert code == 0
    assert [r["image"] for r in report["removed"]] == [idle]
    [kept] = report["kept"]
    assert kept["image"] == used
    assert kept["last_use"] == {
        "when": recorded["last_used"],
        "source": f"usage record: container {box} finished (engine event)",
    }
    assert report["usage_record"] == f"{tmp_path / 'usage.json'}: read"
