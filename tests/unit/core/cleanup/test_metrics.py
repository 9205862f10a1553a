"""The prune metrics file (core/cleanup/metrics.py): Prometheus text format, pure file work."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dockops.core.cleanup.dangling import GONE, IN_USE, Failure, Kept, PruneResult, Removal
from dockops.core.cleanup.metrics import write_prune_metrics

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
