"""`dockops cron install|remove JOB` (cli/cron.py): each job's options on its job line, the
options of one job refused for the other, a file of each job's own. No engine: the entries are
written into tmp_path (the jobs' default files are pointed there)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from dockops.core.cleanup import cron
from tests.conftest import Cli
from tests.unit.core.cleanup.test_cron import cron_command

ALL_IMAGES_OPTIONS = (
    "--reference", "team/*:v*",
    "--reference", "my app/*",
    "--keep-last", "3",
    "--unused-for", "7d",
    "--max-disk", "80%",
    "--keep", "base/*",
    "--keep-label", "tier=base image",
    "--lock-file", "/run/dockops/prune images.lock",
    "--metrics-file", "/var/lib/node_exporter/textfile/dockops-prune-images.prom",
    "--usage-file", "/var/lib/dockops/usage.json",
)  # fmt: skip


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Each job's default file, in tmp_path instead of /etc/cron.d."""
    out = {}
    for name, job in list(cron.JOBS.items()):
        out[name] = tmp_path / job.file.name
        monkeypatch.setitem(cron.JOBS, name, dataclasses.replace(job, file=out[name]))
    return out


def _argv(path: Path) -> list[str]:
    """The job's argv as sh receives it from cron, after the dockops program itself."""
    words = shlex.split(cron_command(path.read_text().splitlines()[-1]))
    assert words[-5:] == ["2>&1", "|", "logger", "-t", "dockops"]
    start = next(i for i, w in enumerate(words) if w.startswith("prune-"))
    return words[start : words.index("2>&1")]


def test_prune_images_line_carries_each_option_as_given(cli: Cli, files: dict[str, Path]) -> None:
    done = cli("cron", "install", "prune-images", *ALL_IMAGES_OPTIONS, "--json")
    assert done.code == 0, done.err
    path = files["prune-images"]
    assert json.loads(done.out)["path"] == str(path)
    lines = path.read_text().splitlines()
    assert lines[0] == cron.JOBS["prune-images"].marker
    assert lines[-1].startswith("41 * * * * ")  # the hourly default
    assert "--max-disk 80\\% " in lines[-1]  # cron would end the command at a bare %
    assert _argv(path) == ["prune-images", "--quiet", *ALL_IMAGES_OPTIONS]
    assert not files["prune-dangling"].exists()
    again = cli("cron", "install", "prune-images", *ALL_IMAGES_OPTIONS, "--json")
    assert json.loads(again.out)["action"] == "unchanged"


def test_prune_images_minimal_line_and_its_own_schedule(cli: Cli, files: dict[str, Path]) -> None:
    schedule = ("--schedule", "7 */2 * * *")
    done = cli("cron", "install", "prune-images", "--max-disk", " 20GB ", *schedule)
    assert done.code == 0, done.err
    assert _argv(files["prune-images"]) == ["prune-images", "--quiet", "--max-disk", "20GB"]
    assert files["prune-images"].read_text().splitlines()[-1].startswith("7 */2 * * * ")


def test_prune_dangling_entry_is_the_one_installs_before_prune_images_wrote(
    cli: Cli, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for name in cron.CARRIED_ENV:
        monkeypatch.delenv(name, raising=False)
    done = cli("cron", "install", "prune-dangling", "--user", "root")
    assert done.code == 0, done.err
    lines = files["prune-dangling"].read_text().splitlines()
    program = shlex.split(lines[-1])[6:]
    program = program[: program.index("prune-dangling")]
    old = [
        "# Managed by dockops: prune dangling images. Remove with `dockops cron remove`.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"17 3 * * * root {shlex.join(program)} prune-dangling --quiet --older-than 24h "
        "2>&1 | logger -t dockops",
    ]
    assert lines == old
    assert files["prune-dangling"].name == "dockops"
    assert not files["prune-images"].exists()


def test_both_jobs_side_by_side_and_removed_one_by_one(cli: Cli, files: dict[str, Path]) -> None:
    assert cli("cron", "install", "prune-dangling", "--older-than", "3d").code == 0
    assert cli("cron", "install", "prune-images", "--keep-last", "2").code == 0
    dangling, images = files["prune-dangling"].read_text(), files["prune-images"].read_text()
    assert " prune-dangling --quiet --older-than 3d " in dangling
    assert " prune-images --quiet --keep-last 2 " in images
    assert cli("cron", "install", "prune-dangling", "--older-than", "3d").out.startswith(
        "unchanged"
    )
    removed = cli("cron", "remove", "prune-images", "--json")
    assert removed.code == 0 and json.loads(removed.out)["action"] == "removed"
    assert not files["prune-images"].exists() and files["prune-dangling"].read_text() == dangling
    assert json.loads(cli("cron", "remove", "prune-images", "--json").out)["action"] == "absent"
    assert cli("cron", "remove").out.startswith("removed")  # no JOB: prune-dangling, as before
    assert not files["prune-dangling"].exists()


def test_one_jobs_file_is_not_taken_or_removed_as_the_others(
    cli: Cli, files: dict[str, Path]
) -> None:
    assert cli("cron", "install", "prune-dangling").code == 0
    before = files["prune-dangling"].read_text()
    target = ("--file", str(files["prune-dangling"]))
    taken = cli("cron", "install", "prune-images", "--keep-last", "1", *target)
    assert taken.code == 2 and "holds the prune-dangling entry" in taken.err
    removed = cli("cron", "remove", "prune-images", *target)
    assert removed.code == 2 and "not prune-images's" in removed.err
    assert files["prune-dangling"].read_text() == before


@pytest.mark.parametrize(
    ("job", "option"),
    [
        ("prune-dangling", ("--reference", "app/*")),
        ("prune-dangling", ("--keep-last", "3")),
        ("prune-dangling", ("--keep-last", "0")),
        ("prune-dangling", ("--unused-for", "7d")),
        ("prune-dangling", ("--max-disk", "80%")),
        ("prune-dangling", ("--keep", "base/*")),
        ("prune-dangling", ("--usage-file", "/var/lib/dockops/usage.json")),
        ("prune-images", ("--older-than", "24h")),
        ("prune-images", ("--older-than", "")),
    ],
)
def test_an_option_of_the_other_job_is_refused_in_one_line(
    cli: Cli, files: dict[str, Path], job: str, option: tuple[str, str]
) -> None:
    rule = ("--keep-last", "1") if job == "prune-images" else ()
    done = cli("cron", "install", job, *rule, *option)
    other = "prune-images" if job == "prune-dangling" else "prune-dangling"
    assert (done.code, done.out) == (2, "")
    assert done.err == f"dockops: error: {option[0]} is an option of {other}, not of {job}\n"
    assert not any(path.exists() for path in files.values())


INJECTED = "\n* * * * * root touch /tmp/dockops-injected"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "needs at least one of --keep-last N, --unused-for DUR, --max-disk SIZE"),
        (("--reference", "app/*"), "needs at least one of"),
        (("--keep-last", "-1"), "-1 is not in the range x>=0"),
        (("--keep-last", "three"), "'three' is not a valid int"),
        (("--unused-for", "7"), "invalid duration '7'"),
        (("--unused-for", "0d"), "must be longer than zero"),
        (("--max-disk", "101%"), "invalid --max-disk '101%'"),
        (("--max-disk", "lots"), "invalid --max-disk 'lots'"),
        (("--keep-last", "1", "--reference", ""), "--reference needs a pattern"),
        (("--keep-last", "1", "--keep", ""), "--keep needs a pattern"),
        (("--keep-last", "1", "--reference", f"app/*{INJECTED}"), "--reference 'app/*\\n* * "),
        (("--keep-last", "1", "--keep", f"base/*{INJECTED}"), "--keep 'base/*\\n* * "),
        (("--keep-last", "1", "--keep", "base\\*"), "--keep 'base\\\\*': a cron job line cannot"),
        (("--keep-last", "1", "--keep-label", "=x"), "invalid --keep-label '=x'"),
        (("--keep-last", "1", "--usage-file", "usage.json"), "must be an absolute path"),
        (("--keep-last", "1", "--usage-file", f"/u.json{INJECTED}"), "--usage-file '/u.json\\n"),
        (("--keep-last", "1", "--schedule", "hourly"), "invalid --schedule 'hourly'"),
        (("--keep-last", "1", "--file", "/etc/cron.d/dockops.images"), "cron ignores"),
    ],
)
def test_bad_prune_images_input_exits_2_in_one_line(
    cli: Cli, files: dict[str, Path], args: tuple[str, ...], says: str
) -> None:
    done = cli("cron", "install", "prune-images", *args)
    assert (done.code, done.out) == (2, "")
    assert done.err.startswith("dockops: error: ") and done.err.count("\n") == 1
    assert says in done.err
    assert not any(path.exists() for path in files.values())


@pytest.mark.parametrize("command", [("install", "prune"), ("remove", "prune-image")])
def test_an_unknown_job_exits_2(cli: Cli, files: dict[str, Path], command: tuple[str, str]) -> None:
    done = cli("cron", *command)
    assert (done.code, done.out) == (2, "")
    assert done.err == (
        f"dockops: error: unknown cron job {command[1]!r}: choose prune-dangling or prune-images\n"
    )


@pytest.mark.parametrize("job", ["prune-images", "prune-dangling"])
def test_the_job_line_parses_as_the_command_it_runs(
    cli: Cli, files: dict[str, Path], job: str
) -> None:
    """Every option the entry writes is one the command takes, spelt as it takes it: a line
    cron would run into a usage error is never written."""
    import typer.main

    from dockops.cli.main import app

    options = ALL_IMAGES_OPTIONS if job == "prune-images" else ("--older-than", "7d")
    assert cli("cron", "install", job, *options).code == 0
    words = _argv(files[job])
    command = typer.main.get_command(app)
    with command.make_context("dockops", list(words), resilient_parsing=False) as root:
        sub = command.get_command(root, words[0])  # type: ignore[attr-defined]
        assert sub is not None
        with sub.make_context(words[0], words[1:], parent=root) as parsed:
            assert parsed.params["quiet"] is True
            if job == "prune-images":
                assert str(parsed.params["usage_file"]) == "/var/lib/dockops/usage.json"
                assert parsed.params["max_disk"] == "80%"
