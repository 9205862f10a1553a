"""dangling and prune-dangling on the disposable engine: real dangling images made three ways
(re-tag, rmi -f under a running container, a loaded save-format tar with old dates); and runs
started together, which end as one run would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockops.core.cleanup.dangling import (
    CHANGED,
    HAS_CHILDREN,
    IN_USE,
    LabelRule,
    execute_plan,
    plan_prune,
)
from dockops.core.cleanup.lock import exclusive
from dockops.core.cleanup.snapshot import engine_state
from dockops.engine import connect
from dockops.engine.address import docker_py_params, engine_address
from dockops.engine.api import Engine
from dockops.engine.dockerpy import DockerPyTransport
from tests.conftest import Cli
from tests.harness.engine import Engine as HarnessEngine
from tests.support.imagefactory import FakeImage, ago, load_images


def _commit(client: docker.DockerClient, ref: str, text: str) -> str:
    box = client.containers.run(
        "busybox:latest", ["sh", "-c", f"echo {text} > /f"], network_mode="none", detach=True
    )
    box.wait(timeout=60)
    repository, tag = ref.rsplit(":", 1)
    image_id = str(box.commit(repository=repository, tag=tag).id)
    box.remove()
    return image_id


def _prune(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("prune-dangling", "--json", "--lock-file", str(tmp_path / "lock"), *args)
    assert result.err == "" or result.code != 0
    return result.code, json.loads(result.out)


def _exists(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.api.inspect_image(image_id)
    except docker.errors.NotFound:
        return False
    return True


def test_retagging_leaves_the_old_image_dangling(docker_env: docker.DockerClient, cli: Cli) -> None:
    first = _commit(docker_env, "dockops-test/app:v1", "one")
    second = _commit(docker_env, "dockops-test/app:v1", "two")
    listed = json.loads(cli("dangling", "--json").out)
    mine = [d for d in listed if d["id"] in (first, second)]
    assert [(d["id"], d["containers"]) for d in mine] == [(first, [])]
    assert set(mine[0]) == {"id", "created", "size", "containers"}


def test_the_size_a_prune_reclaims_is_what_the_image_holds_alone(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    # On busybox (2 MB), a layer of a few bytes: only those go with the image. Podman's compat
    # API says SharedSize 0 for every image, so dockops asks its own df for the unique size.
    first = _commit(docker_env, "dockops-test/small:v1", "small")
    _commit(docker_env, "dockops-test/small:v1", "again")
    code, plan = _prune(cli, tmp_path, "--dry-run")
    assert code == 0
    assert 0 < {r["id"]: r["size"] for r in plan["removed"]}[first] < 100_000


def test_each_rule_and_dry_run_equals_real_run(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    old, labelled, young, tagged, held = load_images(
        docker_env,
        [
            FakeImage(created=ago(days=3), seed="old"),
            FakeImage(created=ago(days=3), seed="labelled", labels={"keep": "yes"}),
            FakeImage(created=ago(hours=1), seed="young"),
            FakeImage(created=ago(days=3), seed="tagged", tags=("dockops-test/kept:v1",)),
            FakeImage(created=ago(days=3), seed="held"),
        ],
    )
    holder = docker_env.containers.create(held, ["sh"], name="dockops-holder", network_mode="none")
    args = ("--older-than", "1d", "--keep-label", "keep")

    code, plan = _prune(cli, tmp_path, "--dry-run", *args)
    assert code == 0 and plan["dry_run"] is True
    assert old in [r["id"] for r in plan["removed"]]
    reasons = {k["id"]: k["reason"] for k in plan["kept"]}
    assert reasons[labelled] == "kept label keep"
    assert reasons[young].startswith("too young (1 hour old, limit 1d)")
    assert reasons[held] == "in use by container dockops-holder"
    assert tagged not in reasons and tagged not in [r["id"] for r in plan["removed"]]

    code, done = _prune(cli, tmp_path, *args)
    assert code == 0 and done["dry_run"] is False
    assert done["removed"] == plan["removed"]  # exactly the plan, sizes included
    assert done["reclaimed_bytes"] == plan["reclaimed_bytes"] > 0
    assert sorted(k["id"] for k in done["kept"]) == sorted(k["id"] for k in plan["kept"])
    assert not _exists(docker_env, old)
    assert all(_exists(docker_env, i) for i in (labelled, young, tagged, held))
    holder.remove()


@pytest.mark.parametrize("transport", ["unix socket", "docker-py"])
def test_images_that_change_after_planning_are_kept(
    docker_env: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    # connect() picks the transport for a local socket; docker-py's serves any other (tcp, ssh).
    if transport == "unix socket":
        engine = connect()
    else:
        engine = Engine(DockerPyTransport.connect(engine_address(), docker_py_params(), 60.0))
    assert engine.api_version == docker_env.api.api_version
    gains_tag, gains_container, stays = load_images(
        docker_env, [FakeImage(seed=f"recheck-{n}") for n in range(3)]
    )
    plan = plan_prune(engine_state(engine), now=ago(seconds=0))
    planned = {r.id for r in plan.remove}
    assert {gains_tag, gains_container, stays} <= planned
    docker_env.api.tag(gains_tag, "dockops-test/late", "v1")
    holder = docker_env.containers.create(gains_container, ["sh"], network_mode="none")

    result = execute_plan(engine, plan, workers=4)
    kept = {k.id: (k.kind, k.reason) for k in result.kept}
    assert kept[gains_tag] == (CHANGED, "tagged since planning (dockops-test/late:v1)")
    in_use = f"in use by container {holder.id[:12]} (since planning)"
    assert kept[gains_container] == (IN_USE, in_use)
    assert stays in {r.id for r in result.removed}
    assert _exists(docker_env, gains_tag) and _exists(docker_env, gains_container)
    assert not _exists(docker_env, stays)


def test_an_image_that_gains_a_child_after_planning(
    engine: HarnessEngine, docker_env: docker.DockerClient
) -> None:
    [parent] = load_images(docker_env, [FakeImage(seed="gains-child")])
    plan = plan_prune(engine_state(connect()), now=ago(seconds=0))
    assert parent in {r.id for r in plan.remove}
    box = docker_env.containers.create(parent, ["sh"], network_mode="none")
    child = str(box.commit(repository="dockops-test/child", tag="v1").id)
    box.remove()

    result = execute_plan(connect(), plan)
    assert result.failed == ()
    if engine.kind == "podman":
        # Podman deletes an image with children (its layers stay, the child's): the engine
        # did remove it, and dockops says so.
        assert parent in {r.id for r in result.removed} and not _exists(docker_env, parent)
    else:
        kept = {k.id: (k.kind, k.reason) for k in result.kept}
        assert kept[parent] == (HAS_CHILDREN, "has dependent child images")
        assert _exists(docker_env, parent)
    assert _exists(docker_env, child)


def _untag_in_use(client: docker.DockerClient, engine: HarnessEngine, ref: str) -> None:
    """Take the only tag off an image a running container or a child image holds, leaving the
    image untagged. Docker does that on rmi (-f under a container); Podman's rmi -f removes
    the container and the image, its rmi removes an image with children, and its own untag
    endpoint (libpod) is what leaves the image there untagged."""
    if engine.kind == "podman":
        answer = client.api.post(client.api.base_url + f"/v4.0.0/libpod/images/{ref}/untag")
        assert answer.status_code == 201, answer.text
    else:
        client.api.remove_image(ref, force=True)


def test_forced_untag_under_a_running_container_is_dangling_and_kept(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    image_id = _commit(docker_env, "dockops-test/busy:v1", "busy")
    runner = docker_env.containers.run(
        image_id, ["sleep", "300"], name="dockops-runner", network_mode="none", detach=True
    )
    _untag_in_use(docker_env, engine, "dockops-test/busy:v1")
    assert docker_env.api.inspect_image(image_id)["RepoTags"] == []
    listed = {d["id"]: d["containers"] for d in json.loads(cli("dangling", "--json").out)}
    assert listed[image_id] == ["dockops-runner"]
    code, done = _prune(cli, tmp_path)
    assert code == 0
    assert {k["id"]: k["reason"] for k in done["kept"]}[image_id] == (
        "in use by container dockops-runner"
    )
    assert _exists(docker_env, image_id)
    runner.remove(force=True)


def test_an_untagged_parent_of_a_tagged_image_is_not_dangling_and_is_kept(
    engine: HarnessEngine, docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    parent = _commit(docker_env, "dockops-test/parent:v1", "parent")
    box = docker_env.containers.run(
        parent, ["sh", "-c", "echo child > /g"], network_mode="none", detach=True
    )
    box.wait(timeout=60)
    box.commit(repository="dockops-test/child", tag="v1")
    box.remove()
    _untag_in_use(docker_env, engine, "dockops-test/parent:v1")  # podman's rmi would delete it
    # Both engines' dangling filter leaves out an image with children (Podman writes the
    # child's ParentId without "sha256:").
    assert parent not in [d["id"] for d in json.loads(cli("dangling", "--json").out)]
    code, done = _prune(cli, tmp_path)
    assert code == 0
    assert {k["id"]: k["reason"] for k in done["kept"]}[parent] == "has dependent child images"
    assert _exists(docker_env, parent)


def _run_dockops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def test_a_second_run_exits_75_while_the_lock_is_held(
    docker_env: docker.DockerClient, tmp_path: Path
) -> None:
    lock = tmp_path / "prune.lock"
    with exclusive(lock):
        blocked = _run_dockops("prune-dangling", "--lock-file", str(lock))
    assert blocked.returncode == 75
    assert blocked.stdout == ""
    assert blocked.stderr == f"dockops: error: another dockops run holds {lock}; try later\n"


def test_runs_started_together_end_as_one_run_would(
    docker_env: docker.DockerClient, tmp_path: Path
) -> None:
    ids = load_images(docker_env, [FakeImage(seed=f"together-{n}") for n in range(12)])
    lock = str(tmp_path / "prune.lock")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "dockops", "prune-dangling", "--quiet", "--lock-file", lock],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    codes = [run.wait(timeout=120) for run in runs]
    assert set(codes) <= {0, 75} and 0 in codes, [run.stderr.read() for run in runs]  # type: ignore[union-attr]
    assert not any(_exists(docker_env, i) for i in ids)


def test_quiet_prints_nothing_and_metrics_are_written(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    [image_id] = load_images(docker_env, [FakeImage(seed="metrics", layer_bytes=4096)])
    metrics = tmp_path / "textfile" / "dockops.prom"
    result = cli(
        "prune-dangling",
        "--quiet",
        "--lock-file",
        str(tmp_path / "lock"),
        "--metrics-file",
        str(metrics),
    )
    assert (result.code, result.out, result.err) == (0, "", "")
    assert not _exists(docker_env, image_id)
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    assert samples["dockops_prune_removed_images"] >= 1
    assert samples["dockops_prune_reclaimed_bytes"] >= 4096
    assert samples["dockops_prune_failed_images"] == 0
    assert "dockops_prune_last_success_timestamp_seconds" in samples


def test_a_delete_the_engine_fails_is_listed_and_exits_5(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    stuck, fine = load_images(docker_env, [FakeImage(seed="stuck"), FakeImage(seed="fine")])
    layer_file = Path(docker_env.api.inspect_image(stuck)["GraphDriver"]["Data"]["UpperDir"])
    layer_file /= "data-0"
    # An immutable file in the layer makes the engine's delete fail for real (EPERM).
    subprocess.run(["chattr", "+i", str(layer_file)], check=True)
    try:
        result = cli("prune-dangling", "--json", "--lock-file", str(tmp_path / "lock"))
    finally:
        subprocess.run(["chattr", "-i", str(layer_file)], check=True)
    assert result.code == 5
    report = json.loads(result.out)
    assert [f["id"] for f in report["failed"]] == [stuck]
    assert "operation not permitted" in report["failed"][0]["error"]
    assert fine in [r["id"] for r in report["removed"]]
    assert result.err.count("\n") == 1 and "could not be removed" in result.err


@pytest.mark.parametrize("bad", [["--older-than", "soon"], ["--keep-label", "="]])
def test_bad_input_exits_2_before_the_engine(
    cli: Cli, bad: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # 3 if anything reached it
    result = cli("prune-dangling", "--lock-file", str(tmp_path / "lock"), *bad)
    assert result.code == 2 and result.err.startswith("dockops: error: invalid")


# --- two and four runs at once: each exits 0 or 75, the engine ends as one run leaves it --------
# With one lock file (as cron and a person at a shell share the default) the lock decides; with
# separate lock files the per-image re-check does, and every run exits 0.


@pytest.mark.parametrize("locks", ["one lock", "own locks"])
@pytest.mark.parametrize("runs", [2, 4])
def test_prunes_started_together_end_as_one_run_would(
    engine: HarnessEngine, docker_env: docker.DockerClient, tmp_path: Path, runs: int, locks: str
) -> None:
    images = [FakeImage(created=ago(days=3), seed=f"together-old-{n}") for n in range(24)]
    images += [FakeImage(created=ago(hours=1), seed=f"together-young-{n}") for n in range(3)]
    images += [
        FakeImage(created=ago(days=3), seed=f"together-label-{n}", labels={"keep": "yes"})
        for n in range(3)
    ]
    images += [FakeImage(created=ago(days=3), seed=f"together-held-{n}") for n in range(2)]
    images += [
        FakeImage(created=ago(days=3), seed=f"together-tag-{n}", tags=(f"dockops-test/t:{n}",))
        for n in range(2)
    ]
    ids = load_images(docker_env, images)
    for image_id in ids[30:32]:
        docker_env.containers.create(image_id, ["sh"], network_mode="none")

    # What one run would do, planned from the same snapshot rules the command uses.
    plan = plan_prune(
        engine_state(connect()),
        now=datetime.now(timezone.utc),
        older_than=86400,
        keep_labels=[LabelRule("keep")],
    )
    planned = {r.id for r in plan.remove}
    assert set(ids[:24]) <= planned and not planned & set(ids[24:])
    before = {i["Id"] for i in docker_env.api.images(all=True)}

    processes = [
        subprocess.Popen(
            [
                sys.executable, "-m", "dockops", "prune-dangling", "--json",
                "--older-than", "1d", "--keep-label", "keep",
                "--lock-file", str(tmp_path / (f"lock{n}" if locks == "own locks" else "lock")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for n in range(runs)
    ]  # fmt: skip
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in processes]  # type: ignore[union-attr]
    codes = [code for code, _, _ in results]
    assert set(codes) <= ({0} if locks == "own locks" else {0, 75}) and 0 in codes, results
    for code, out, err in results:
        if code == 75:
            assert out == "" and err.endswith("try later\n") and err.count("\n") == 1

    removed = [r["id"] for code, out, _ in results if code == 0 for r in json.loads(out)["removed"]]
    if engine.kind == "podman" and locks == "own locks":
        # Podman answers "Deleted" to each of two deletes of one image racing, so two runs
        # may both report it removed: each says what the engine told it.
        assert set(removed) == planned
    else:
        assert sorted(removed) == sorted(planned)  # each planned image removed once, by one run
    after = {i["Id"] for i in docker_env.api.images(all=True)}
    assert after == before - planned
    for code, out, _ in results:
        if code == 0:
            assert json.loads(out)["failed"] == []
