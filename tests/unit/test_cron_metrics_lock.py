"""The cron entry, the metrics file and the lock: pure file work, no engine."""

from __future__ import annotations

import getpass
import json
import stat
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockops.core import cron
from dockops.core.cleanup import GONE, IN_USE, Failure, Kept, PruneResult, Removal
from dockops.core.lock import exclusive
from dockops.core.metrics import write_prune_metrics
from dockops.errors import InvalidInput, LockHeld
from tests.conftest import Cli


def _entry(**overrides: object) -> str:
    args: dict[str, object] = {
        "schedule": "17 3 * * *",
        "user": "root",
        "command": ["/opt/dockops/bin/dockops", "prune-dangling", "--quiet", "--older-than", "24h"],
        "env": {"DOCKER_HOST": "unix:///run/x.sock", "HOME": "/root"},
    }
    args.update(overrides)
    return cron.render_entry(**args)  # type: ignore[arg-type]


def test_entry_has_path_env_and_one_job_line() -> None:
    text = _entry()
    lines = text.splitlines()
    assert lines[0].startswith(cron.MARKER)
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
    assert "DOCKER_HOST=unix:///run/x.sock" in lines and not any("HOME" in x for x in lines)
    assert lines[-1] == (
        "17 3 * * * root /opt/dockops/bin/dockops prune-dangling --quiet --older-than 24h "
        "2>&1 | logger -t dockops"
    )


def test_entry_to_a_log_file_and_percent_escaped() -> None:
    text = _entry(
        log_file=Path("/var/log/dockops.log"),
        command=["/x/dockops", "prune-dangling", "--keep-label", "a=50%"],
    )
    assert text.splitlines()[-1].endswith(
        "/x/dockops prune-dangling --keep-label a=50\\% >> /var/log/dockops.log 2>&1"
    )


@pytest.mark.parametrize("schedule", ["17 3 * * *", "*/15 * * * 1-5", "@daily", "0 4 * * sun"])
def test_good_schedules(schedule: str) -> None:
    assert cron.validate_schedule(schedule) == schedule


@pytest.mark.parametrize("schedule", ["", "* * * *", "@often", "1 2 3 4 5 6", "1 2 3 4 $(x)"])
def test_bad_schedules(schedule: str) -> None:
    with pytest.raises(InvalidInput):
        cron.validate_schedule(schedule)


def test_install_is_idempotent_and_remove_only_ours(tmp_path: Path) -> None:
    path = tmp_path / "dockops"
    assert cron.install(path, _entry()).action == "written"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert cron.install(path, _entry()).action == "unchanged"
    assert cron.install(path, _entry(schedule="0 1 * * *")).action == "written"
    assert cron.remove(path).action == "removed" and not path.exists()
    assert cron.remove(path).action == "absent"
    path.write_text("0 0 * * * root something-else\n")
    with pytest.raises(InvalidInput, match="not written by dockops"):
        cron.install(path, _entry())
    with pytest.raises(InvalidInput, match="not written by dockops"):
        cron.remove(path)


def test_cron_d_names_with_dots_are_refused() -> None:
    with pytest.raises(InvalidInput, match="cron ignores"):
        cron.install(Path("/etc/cron.d/dockops.cron"), _entry())


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


def test_lock_is_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "prune.lock"
    with exclusive(path):
        with pytest.raises(LockHeld) as info, exclusive(path):
            pass
        assert info.value.exit_code == 75
    with exclusive(path):  # released when the block ends
        pass


def test_cli_cron_install_twice_then_remove(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/fleet/docker.sock")
    path = tmp_path / "dockops"
    args = (
        "cron",
        "install",
        "prune-dangling",
        "--file",
        str(path),
        "--schedule",
        "0 4 * * *",
        "--older-than",
        "7d",
        "--keep-label",
        "keep",
        "--json",
    )
    first = cli(*args)
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert report["action"] == "written" and report["path"] == str(path)
    lines = path.read_text().splitlines()
    assert "DOCKER_HOST=unix:///run/fleet/docker.sock" in lines
    job = lines[-1].split()
    assert job[:6] == ["0", "4", "*", "*", "*", getpass.getuser()]
    assert Path(job[6]).is_absolute()
    assert lines[-1].endswith(
        "prune-dangling --quiet --older-than 7d --keep-label keep 2>&1 | logger -t dockops"
    )
    assert json.loads(cli(*args).out)["action"] == "unchanged"
    assert cli("cron", "install", "other-job", "--file", str(path)).code == 2
    assert (
        cli("cron", "install", "prune-dangling", "--file", str(path), "--schedule", "bad").code == 2
    )
    removed = cli("cron", "remove", "--file", str(path))
    assert removed.code == 0 and removed.out.startswith("removed") and not path.exists()
