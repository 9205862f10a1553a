"""bench/retention.py's pure parts: the images it loads, the raw reads it times beside dockops,
and the growth table (the suites themselves need an engine: `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import results, retention


def test_both_suites_are_listed() -> None:
    assert bench_main.SUITES["retention-plan"] == ("bench.retention", "plan")
    assert bench_main.SUITES["retention-remove"] == ("bench.retention", "remove")


def test_ten_tags_a_repository_each_on_an_image_of_its_own() -> None:
    images = retention._plan_images(range(20, 40))
    assert len(images) == 200
    tags = [image.tags for image in images]
    assert all(len(t) == 1 for t in tags)
    repos = {t[0].rpartition(":")[0] for t in tags}
    assert repos == {f"benchplan/r{n:03d}" for n in range(20, 40)}
    assert len({image.seed for image in images}) == 200  # no two share a layer
    for repo in repos:
        created = [i.created for i in images if i.tags[0].startswith(f"{repo}:")]
        assert len(set(created)) == retention.TAGS_PER_REPO  # an order to keep the last by


def test_the_raw_reads_are_the_listing_and_every_inspect(tmp_path: Path) -> None:
    config = tmp_path / "urls"
    found = retention._plan_contenders("/run/e.sock", ["sha256:a", "sha256:b"], config)
    assert config.read_text().splitlines() == [
        'url = "http://x/images/json"',
        'url = "http://x/images/sha256:a/json"',
        'url = "http://x/images/sha256:b/json"',
    ]
    assert found["docker image inspect (every image, one call)"][-2:] == ["sha256:a", "sha256:b"]
    # On the engine before the images came there is nothing to inspect, and docker refuses
    # an inspect of no name.
    assert "docker image inspect (every image, one call)" not in retention._plan_contenders(
        "/run/e.sock", [], config
    )


def test_growth_is_judged_after_the_fixed_cost() -> None:
    medians = {
        200: {retention.PLAN: 1.0, "raw": 0.1},
        2000: {retention.PLAN: 5.2, "raw": 0.5},
    }
    lines = retention._growth(medians, {retention.PLAN: 0.5, "raw": 0.05})
    [section] = results.parse("retention-plan", lines)
    assert [(r.label, r.time, r.ratio) for r in section.rows] == [
        (retention.PLAN, "5200.0 ms", "x5.20"),
        ("raw", "500.0 ms", "x5.00"),
    ]
    assert section.rows[0].notes == (
        "at 200: 1000.0 ms; less the fixed 500.0 ms: x9.40; ms per image added 2.33"
    )
    assert section.notes[-1].endswith("x9.40 <= 10: met")
    medians[2000][retention.PLAN] = 6.0
    assert retention._growth(medians, {retention.PLAN: 0.5})[-1].endswith("MISSED")


def test_a_middle_size_tells_linear_from_quadratic() -> None:
    medians = {n: {retention.PLAN: 0.3 + n * 0.0005} for n in (200, 1000, 2000)}
    last = retention._growth(medians, {retention.PLAN: 0.3})[-1]
    assert last.endswith("costs x1.00 what one added from 200 to 1000 did <= 1.50: met")
    medians = {n: {retention.PLAN: 0.3 + n * n * 1e-7} for n in (200, 1000, 2000)}
    assert retention._growth(medians, {retention.PLAN: 0.3})[-1].endswith(
        "x2.50 what one added from 200 to 1000 did <= 1.50: MISSED"
    )


def test_a_fixed_cost_as_large_as_the_small_run_is_no_ratio() -> None:
    # Seen on the shared machine: the fixed cost measured 373.9 ms, 200 images 374.4 ms.
    medians = {200: {retention.PLAN: 0.3744}, 2000: {retention.PLAN: 1.3266}}
    lines = retention._growth(medians, {retention.PLAN: 0.3739})
    assert (
        lines[1]
        .split("   ")[-1]
        .startswith("at 200: 374.4 ms; less the fixed 373.9 ms: within noise of it;")
    )
    assert "growth less the fixed cost: not measured" in lines[2]


@pytest.mark.parametrize("host", [None, "tcp://127.0.0.1:2375"])
def test_without_a_local_engine_both_suites_skip(
    host: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", host)
    [plan] = retention.plan()
    [remove] = retention.remove()
    assert plan.startswith("## retention-plan: skipped")
    assert remove.startswith("## retention-remove: skipped")
