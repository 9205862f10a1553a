"""The cron entry (core/cleanup/cron.py): its lines, the values the job line cannot carry, and
the dockops it schedules only when no one else can change it. Pure file work, no engine."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import dockops
from dockops.core.cleanup import cron
from dockops.errors import InvalidInput
from tests.conftest import Cli
from tests.support.marks import root_only

DANGLING, IMAGES = cron.JOBS["prune-dangling"], cron.JOBS["prune-images"]


def _entry(**overrides: object) -> str:
    args: dict[str, object] = {
        "job": DANGLING,
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
    assert cron.remove(path, DANGLING).action == "removed" and not path.exists()
    assert cron.remove(path, DANGLING).action == "absent"
    path.write_text("0 0 * * * root something-else\n")
    with pytest.raises(InvalidInput, match="not written by dockops"):
        cron.install(path, _entry())
    with pytest.raises(InvalidInput, match="not written by dockops"):
        cron.remove(path, DANGLING)


# The first line of every entry dockops wrote before prune-images: an existing entry must
# stay exactly what a new install writes, or every host would see a change.
OLD_MARKER = "# Managed by dockops: prune dangling images. Remove with `dockops cron remove`."


def test_each_job_has_its_own_file_schedule_and_marker() -> None:
    assert (DANGLING.file, DANGLING.schedule) == (Path("/etc/cron.d/dockops"), "17 3 * * *")
    assert (IMAGES.file, IMAGES.schedule) == (
        Path("/etc/cron.d/dockops-prune-images"),
        "41 * * * *",
    )
    assert DANGLING.file == cron.DEFAULT_CRON_FILE
    assert DANGLING.marker == OLD_MARKER
    assert IMAGES.marker.startswith(cron.MARKER) and "prune-images" in IMAGES.marker
    assert IMAGES.marker.endswith("Remove with `dockops cron remove prune-images`.")
    assert _entry(job=IMAGES).splitlines()[0] == IMAGES.marker
    for job in (DANGLING, IMAGES):
        cron.validate_schedule(job.schedule)
        cron._check_path(job.file)  # a name cron reads


def test_a_file_holding_one_jobs_entry_is_not_taken_by_the_other(tmp_path: Path) -> None:
    path = tmp_path / "dockops"
    cron.install(path, _entry())
    with pytest.raises(InvalidInput, match="holds the prune-dangling entry; choose another"):
        cron.install(path, _entry(job=IMAGES))
    with pytest.raises(InvalidInput, match="holds the prune-dangling entry, not prune-images's"):
        cron.remove(path, IMAGES)
    assert path.read_text() == _entry()
    assert cron.remove(path, DANGLING).action == "removed"


def test_an_entry_with_a_marker_of_no_known_job_is_still_dockops_own(tmp_path: Path) -> None:
    # Written by some other dockops version: ours to replace or remove, as before.
    path = tmp_path / "dockops"
    path.write_text(f"{cron.MARKER}: something older.\n17 3 * * * root true\n")
    assert cron.install(path, _entry(job=IMAGES)).action == "written"
    path.write_text(f"{cron.MARKER}: something older.\n17 3 * * * root true\n")
    assert cron.remove(path, IMAGES).action == "removed"


def test_unknown_job_names_the_jobs() -> None:
    assert cron.job("prune-images") is IMAGES
    with pytest.raises(InvalidInput, match="choose prune-dangling or prune-images"):
        cron.job("prune")


@pytest.mark.parametrize("text", ["a\nb", "a\\b", "tab\there"])
def test_validate_text_refuses_what_the_line_cannot_carry(text: str) -> None:
    with pytest.raises(InvalidInput, match="--keep"):
        cron.validate_text("--keep", text)
    assert cron.validate_text("--keep", "my app/*:v[0-9]%") == "my app/*:v[0-9]%"


def test_cron_d_names_with_dots_are_refused() -> None:
    with pytest.raises(InvalidInput, match="cron ignores"):
        cron.install(Path("/etc/cron.d/dockops.cron"), _entry())


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


def _install(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = cli("cron", "install", "prune-dangling", "--file", str(tmp_path / "cron"), *args)
    return result.code, result.out, result.err


INJECTED = "\n* * * * * root touch /tmp/dockops-injected"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--log-file", f"/var/log/dockops.log{INJECTED}"),
        ("--lock-file", f"/run/prune.lock{INJECTED}"),
        ("--metrics-file", f"/var/lib/dockops.prom{INJECTED}"),
        ("--user", f"root{INJECTED}"),
        ("--keep-label", f"keep=x{INJECTED}"),
        ("--log-file", "/var/log/dockops\rlog"),
    ],
    ids=["log-file", "lock-file", "metrics-file", "user", "keep-label", "carriage-return"],
)
def test_a_value_with_a_newline_cannot_add_a_cron_line(
    cli: Cli, tmp_path: Path, flag: str, value: str
) -> None:
    code, out, err = _install(cli, tmp_path, flag, value)
    assert (code, out) == (2, "")
    assert err.startswith("dockops: error: ") and err.count("\n") == 1
    assert not (tmp_path / "cron").exists()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--log-file", "dockops.log", "must be an absolute path"),
        ("--lock-file", "run/prune.lock", "must be an absolute path"),
        ("--metrics-file", "dockops.prom", "must be an absolute path"),
        ("--log-file", "/var/log/50\\%.log", "cannot carry a backslash"),
        ("--keep-label", "keep=a\\b", "cannot carry a backslash"),
        ("--user", "no-such-user-dockops", "no such user on this machine"),
        ("--user", "root daemon", "is not a user name"),
        ("--user", "", "is not a user name"),
    ],
)
def test_paths_and_users_the_job_line_cannot_carry_exit_2(
    cli: Cli, tmp_path: Path, flag: str, value: str, says: str
) -> None:
    code, out, err = _install(cli, tmp_path, flag, value)
    assert (code, out) == (2, "")
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "cron").exists()


def cron_command(line: str) -> str:
    """What cron hands `sh -c` for a cron.d line, transcribed from do_command.c of Debian's and
    Red Hat's crons: skip five fields and the user; `\\%` is a %, a bare % ends the command."""
    text = line.split(None, 6)[6]
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
            if ch == "%":
                out[-1] = "%"
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            break
        out.append(ch)
    return "".join(out)


def test_percent_signs_in_paths_reach_the_job_intact(tmp_path: Path) -> None:
    """cron ends a command at a bare %: each is escaped as cron reads it, the log file's too."""
    record = tmp_path / "argv.json"
    program = tmp_path / "dockops"
    program.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\nprint('ran')\n"
    )
    program.chmod(0o755)
    folder = tmp_path / "50% full"
    folder.mkdir()
    lock_file, metrics = folder / "prune%d.lock", folder / "%s.prom"
    log = folder / "dockops 100%.log"
    argv = ["prune-dangling", "--lock-file", str(lock_file), "--metrics-file", str(metrics)]
    line = _entry(command=[str(program), *argv], log_file=log).splitlines()[-1]
    subprocess.run(["/bin/sh", "-c", cron_command(line)], check=True, timeout=30)
    assert json.loads(record.read_text()) == argv
    assert log.read_text() == "ran\n"


def _runner(monkeypatch: pytest.MonkeyPatch, folder: Path, mode: int, file_mode: int) -> None:
    """Make `folder`/dockops (a copy of a real program) the dockops that cron would run."""
    folder.mkdir(exist_ok=True)
    program = folder / "dockops"
    shutil.copy("/bin/true", program)
    program.chmod(file_mode)
    folder.chmod(mode)
    monkeypatch.setattr(sys, "argv", [str(program)])


@pytest.mark.parametrize(
    ("mode", "file_mode"),
    [(0o777, 0o755), (0o775, 0o755), (0o755, 0o777)],
    ids=["folder-0777", "folder-0775", "file-0777"],
)
def test_a_dockops_others_can_change_is_not_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int, file_mode: int
) -> None:
    _runner(monkeypatch, tmp_path / "bin", mode, file_mode)
    code, out, err = _install(cli, tmp_path)
    assert (code, out) == (1, "")
    assert err.startswith(f"dockops: error: refusing to schedule {tmp_path / 'bin' / 'dockops'}")
    assert err.count("\n") == 1
    assert not (tmp_path / "cron").exists()


@root_only
def test_a_dockops_another_user_owns_is_not_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runner(monkeypatch, tmp_path / "bin", 0o755, 0o755)
    os.chown(tmp_path / "bin", 65534, 65534)
    code, _, err = _install(cli, tmp_path)
    assert code == 1 and "can be changed by uid 65534" in err
    assert not (tmp_path / "cron").exists()


def test_a_dockops_only_its_owner_can_change_is_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runner(monkeypatch, tmp_path / "bin", 0o755, 0o755)
    code, _, err = _install(cli, tmp_path)
    assert code == 0, err
    assert f" {tmp_path / 'bin' / 'dockops'} prune-dangling " in (tmp_path / "cron").read_text()


def _refused(err: str, program: Path, path: Path) -> bool:
    return (
        err.startswith(
            f"dockops: error: refusing to schedule {program}: {path} can be changed by others"
        )
        and err.count("\n") == 1
    )


def test_a_dockops_package_others_can_change_is_not_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The launcher is safe, but cron runs the package it imports: a group-writable
    # site-packages gives that group the job's user (root). The old check saw only the launcher.
    _runner(monkeypatch, tmp_path / "bin", 0o755, 0o755)
    site = tmp_path / "lib" / "site-packages"
    (site / "dockops").mkdir(parents=True)
    site.chmod(0o775)
    monkeypatch.setattr(dockops, "__file__", str(site / "dockops" / "__init__.py"))
    code, out, err = _install(cli, tmp_path)
    assert (code, out) == (1, "")
    assert _refused(err, tmp_path / "bin" / "dockops", site), err
    assert not (tmp_path / "cron").exists()


def _shared_python(tmp_path: Path) -> Path:
    """A symlink to this Python in a world-writable folder: anyone can point it elsewhere."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = shared / "python"
    link.symlink_to(sys.executable)
    return link


def test_a_launcher_whose_interpreter_others_can_change_is_not_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel runs the #! interpreter as written: the folder holding that symlink counts.
    link = _shared_python(tmp_path)
    _runner(monkeypatch, tmp_path / "bin", 0o755, 0o755)
    launcher = tmp_path / "bin" / "dockops"
    launcher.write_text(f"#!{link}\nimport dockops\n")
    code, out, err = _install(cli, tmp_path)
    assert (code, out) == (1, "")
    assert _refused(err, launcher, link.parent), err


def test_python_m_dockops_through_a_symlink_others_can_change_is_not_scheduled(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No dockops launcher found: the job runs sys.executable as it is, the symlink; the old
    # check resolved it and never looked at the symlink's folder.
    link = _shared_python(tmp_path)
    monkeypatch.setattr(sys, "argv", ["not-the-launcher"])
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(sys, "executable", str(link))
    code, out, err = _install(cli, tmp_path)
    assert (code, out) == (1, "")
    assert _refused(err, link, link.parent), err
    assert not (tmp_path / "cron").exists()


def test_runner_paths_follow_the_shebang_through_env(tmp_path: Path) -> None:
    script = tmp_path / "dockops"
    script.write_text("#!/usr/bin/env sh\n")
    paths = cron.runner_paths(script)
    found = shutil.which("sh", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert Path("/usr/bin/env") in paths and found and Path(found) in paths


def test_this_python_and_dockops_as_installed_here_are_scheduled() -> None:
    # The real layout: the venv's interpreter symlink, the interpreter it points to, the
    # prefixes and the package, all root's (or this user's) and closed to others.
    paths = cron.runner_paths(Path(sys.executable))
    for expected in (
        Path(sys.executable),
        Path(sys.executable).resolve(),
        Path(sys.prefix),
        Path(dockops.__file__).parent,
    ):
        assert expected in paths
    cron.check_runner(Path(sys.executable), os.getuid())
    launcher = Path(sys.executable).parent / "dockops"
    if launcher.exists():
        cron.check_runner(launcher, os.getuid())
