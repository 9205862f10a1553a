"""Two and four prune-dangling runs started at once: each exits 0 or 75, and the engine ends
exactly in the state one run would leave — the plan of a single run removed, every image it
keeps (young, labelled, in use, tagged) still there, nothing deleted twice. With one lock file
(as cron and a person at a shell share the default) the lock decides; with separate lock files
the per-image re-check does, and every run exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import docker
import pytest

from dockops.core.cleanup.dangling import LabelRule, engine_state, plan_prune
from dockops.engine import connect
from tests.support.imagefactory import FakeImage, ago, load_images


@pytest.mark.parametrize("locks", ["one lock", "own locks"])
@pytest.mark.parametrize("runs", [2, 4])
def test_prunes_started_together_end_as_one_run_would(
    docker_env: docker.DockerClient, tmp_path: Path, runs: int, locks: str
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
    assert sorted(removed) == sorted(planned)  # each planned image removed once, by one run
    after = {i["Id"] for i in docker_env.api.images(all=True)}
    assert after == before - planned
    for code, out, _ in results:
        if code == 0:
            assert json.loads(out)["failed"] == []
