"""The prune metrics files (core/cleanup/metrics.py): Prometheus text format, pure file work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dockops.core.cleanup.dangling import GONE, IN_USE, Failure, Kept, PruneResult, Removal
from dockops.core.cleanup.metrics import (
    PruneImagesOutcome,
    write_prune_images_metrics,
    write_prune_metrics,
)
from dockops.core.cleanup.retention import KEEP_LAST, Budget, Eviction, KeptTag, LastUse

RESULT = PruneResult(
    dry_run=False,
    removed=(Removal("sha256:a", 1000), Removal("sha256:b", 24)),
    kept=(Kept("sha256:c", "in use by container web", IN_USE), Kept("sha256:d", "gone", GONE)),
    reclaimed_bytes=1024,
    duration_seconds=1.5,
)


def _samples(path: Path) -> dict[str, float]:
    text = path.read_text()
    out = {}
    for family in text_string_to_metric_families(text):
        assert f"# HELP {family.name} " in text and f"# TYPE {family.name} gauge" in text
        for sample in family.samples:
            key = sample.name + "".join(f"[{v}]" for v in sample.labels.values())
            out[key] = sample.value
    return out


def test_metrics_file_format(tmp_path: Path) -> None:
    path = tmp_path / "dockops.prom"
    write_prune_metrics(path, RESULT, success=True)
    samples = _samples(path)
    assert samples["dockops_prune_removed_images"] == 2
    assert samples["dockops_prune_reclaimed_bytes"] == 1024
    assert samples["dockops_prune_kept_images[in-use]"] == 1
    assert samples["dockops_prune_kept_images[gone]"] == 1
    assert samples["dockops_prune_failed_images"] == 0
    assert samples["dockops_prune_duration_seconds"] == 1.5
    first_success = samples["dockops_prune_last_success_timestamp_seconds"]
    assert first_success > 1.7e9
    assert [p.name for p in tmp_path.iterdir()] == ["dockops.prom"]

    failed = PruneResult(False, (), (), 0, failed=(Failure("sha256:e", "boom"),))
    write_prune_metrics(path, failed, success=False)
    samples = _samples(path)
    assert samples["dockops_prune_failed_images"] == 1
    # A failed run does not move the last-success time.
    assert samples["dockops_prune_last_success_timestamp_seconds"] == first_success


@dataclass(frozen=True)
class ImagesRun:
    """A prune-images result as the metrics read it, made of the planner's own parts."""

    removed: tuple[Eviction, ...] = ()
    kept: tuple[KeptTag, ...] = ()
    failed: tuple[str, ...] = ()
    reclaimed_bytes: int = 0
    duration_seconds: float = 0.0
    budget: Budget | None = None


USE = LastUse(datetime(2024, 1, 1, tzinfo=timezone.utc), "container web")


def _eviction(image: str, tags: tuple[str, ...], delete: bool) -> Eviction:
    return Eviction(image=image, tags=tags, delete=delete, freed=0, last_use=USE, reason="")


def _kept(kind: str) -> KeptTag:
    return KeptTag(reference="app:1", image="sha256:k", kind=kind, reason="", last_use=USE)


def test_prune_images_metrics(tmp_path: Path) -> None:
    path = tmp_path / "images.prom"
    run: PruneImagesOutcome = ImagesRun(
        removed=(
            _eviction("sha256:a", ("app:1", "app:old"), delete=True),
            _eviction("sha256:b", ("app:2",), delete=True),
            _eviction("sha256:c", ("web:1",), delete=False),  # untagged, another tag keeps it
        ),
        kept=(_kept(KEEP_LAST), _kept(KEEP_LAST), _kept(IN_USE)),
        reclaimed_bytes=4096,
        duration_seconds=2.5,
    )
    write_prune_images_metrics(path, run, success=True)
    samples = _samples(path)
    first_success = samples.pop("dockops_prune_images_last_success_timestamp_seconds")
    assert first_success > 1.7e9
    assert samples == {
        "dockops_prune_images_removed_images": 2,
        "dockops_prune_images_untagged_references": 4,
        "dockops_prune_images_reclaimed_bytes": 4096,
        "dockops_prune_images_failed_removals": 0,
        "dockops_prune_images_duration_seconds": 2.5,
        "dockops_prune_images_kept_references[keep-last]": 2,
        "dockops_prune_images_kept_references[in-use]": 1,
    }  # no --max-disk: no over-budget figure at all, rather than a 0 that says "reached"

    short = Budget(limit=100, before=500, after=300, shortfall=200)
    failed = ImagesRun(failed=("sha256:d",), budget=short)
    write_prune_images_metrics(path, failed, success=False)
    samples = _samples(path)
    assert samples["dockops_prune_images_failed_removals"] == 1
    assert samples["dockops_prune_images_over_budget_bytes"] == 200
    assert samples["dockops_prune_images_last_success_timestamp_seconds"] == first_success

    reached = ImagesRun(budget=Budget(limit=100, before=500, after=100, shortfall=0))
    write_prune_images_metrics(path, reached, success=True)
    assert _samples(path)["dockops_prune_images_over_budget_bytes"] == 0
    assert not any(name.startswith("dockops_prune_") and "images_" not in name for name in samples)


def test_each_command_keeps_its_own_last_success(tmp_path: Path) -> None:
    # Both writers read the previous success by their own name: a failed prune-images run
    # written over a prune-dangling file does not take prune-dangling's time as its own.
    path = tmp_path / "shared.prom"
    write_prune_metrics(path, RESULT, success=True)
    write_prune_images_metrics(path, ImagesRun(failed=("x",)), success=False)
    assert "dockops_prune_images_last_success_timestamp_seconds" not in _samples(path)
