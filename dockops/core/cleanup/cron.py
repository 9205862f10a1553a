"""The cron.d entries that run prune-dangling and prune-images unattended, one file each."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockops.atomic import write_atomic
from dockops.errors import DockopsError, InvalidInput

MARKER = "# Managed by dockops"
PRUNE_DANGLING = "prune-dangling"
PRUNE_IMAGES = "prune-images"


@dataclass(frozen=True)
class Job:
    """A command dockops schedules: its cron.d file and schedule unless the user gives others,
    and the marker line its entry starts with (which says whose entry a file holds)."""

    name: str
    file: Path
    schedule: str
    title: str

    @property
    def marker(self) -> str:
        # prune-dangling's line is the one every entry written before prune-images had: an
        # existing entry must read as unchanged, not as one to rewrite.
        remove = "dockops cron remove" + ("" if self.name == PRUNE_DANGLING else f" {self.name}")
        return f"{MARKER}: {self.title}. Remove with `{remove}`."


JOBS = {
    PRUNE_DANGLING: Job(
        PRUNE_DANGLING, Path("/etc/cron.d/dockops"), "17 3 * * *", "prune dangling images"
    ),
    # Hourly, not daily: prune-images learns that a container used an image from the engine's
    # events since its last run, and dockerd keeps only its last 256 events (and none across a
    # restart), so a container that came and went is seen only if a run comes soon enough. At
    # :41, away from the top of the hour and :17 (Debian's cron.hourly, prune-dangling's 3:17).
    PRUNE_IMAGES: Job(
        PRUNE_IMAGES,
        Path("/etc/cron.d/dockops-prune-images"),
        "41 * * * *",
        "prune tagged images by retention rules (prune-images)",
    ),
}
DEFAULT_CRON_FILE = JOBS[PRUNE_DANGLING].file
# Environment a cron job needs to reach the same engine and config as the installing shell.
CARRIED_ENV = (
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKOPS_CONFIG",
    "DOCKOPS_REGISTRY",
)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FIELD = re.compile(r"[0-9A-Za-z*/,-]+")
_SPECIAL = {
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
}


@dataclass(frozen=True)
class CronResult:
    path: Path
    action: str  # written, unchanged, removed, absent
    entry: str | None = None


def validate_schedule(text: str) -> str:
    """Five cron fields or an @-word; returned unchanged.

    Raises:
        InvalidInput: anything else.
    """
    fields = text.split()
    if (len(fields) == 1 and fields[0] in _SPECIAL) or (
        len(fields) == 5 and all(_FIELD.fullmatch(f) for f in fields)
    ):
        return " ".join(fields)
    raise InvalidInput(f"invalid --schedule {text!r}: expected 5 cron fields, e.g. '17 3 * * *'")


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_text(what: str, text: str) -> None:
    r"""Refuse a value the job line cannot carry as it is.

    A newline would end the job and start a line of its own (any job, as that user). cron also
    ends the command at a `%`, so render_entry escapes each as `\%`; and a backslash is refused,
    as crons differ on what one does there (Debian's and cronie's take `\%` as that escape
    whatever comes before it, FreeBSD's also turns `\\` into `\`): a value holding one could
    reach the shell changed, or cut at its `%`.
    """
    if _has_control(text):
        raise InvalidInput(f"{what} {text!r} holds a control character (newline, tab...)")
    if "\\" in text:
        raise InvalidInput(f"{what} {text!r}: a cron job line cannot carry a backslash")


def job(name: str) -> Job:
    """The job called `name`.

    Raises:
        InvalidInput: no such job.
    """
    if name not in JOBS:
        raise InvalidInput(f"unknown cron job {name!r}: choose {' or '.join(JOBS)}")
    return JOBS[name]


def validate_text(flag: str, text: str) -> str:
    """A value (a glob, a label) the job line can carry as it is; returned unchanged.

    Raises:
        InvalidInput: one `_check_text` refuses.
    """
    _check_text(flag, text)
    return text


def validate_path(flag: str, path: Path) -> Path:
    """An absolute path that can go into the job line; returned unchanged.

    Raises:
        InvalidInput: a relative path (cron would take it from the user's home), or one
            `_check_text` refuses.
    """
    _check_text(flag, str(path))
    if not path.is_absolute():
        raise InvalidInput(f"{flag} {str(path)!r} must be an absolute path")
    return path


def validate_user(name: str) -> int:
    """The uid of `name`, a user of this machine the job may run as.

    Raises:
        InvalidInput: no such user, or a name that is not one word of printable characters.
    """
    if not name or _has_control(name) or any(c.isspace() for c in name):
        raise InvalidInput(f"--user {name!r} is not a user name")
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise InvalidInput(f"--user {name!r}: no such user on this machine") from None


def runner_paths(program: Path) -> list[Path]:
    """Every path whose content the job runs as code: the program on the job line (as written
    and resolved), the interpreter its #! line names, this Python (sys.executable as written
    and resolved, sys.prefix, sys.base_prefix) and the dockops package it imports."""
    import dockops

    interpreters = [*_shebang(program), Path(sys.executable)]
    paths = [program, *interpreters]
    paths += [_resolved(path) for path in paths]
    paths += [Path(sys.prefix), Path(sys.base_prefix), Path(dockops.__file__).parent]
    return list(dict.fromkeys(paths))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: check_paths cannot stat it, and says so
        return path


def _shebang(program: Path) -> list[Path]:
    """The interpreter a script's #! line names; through `env`, also the one cron's PATH finds."""
    try:
        with program.open("rb") as file:
            first = file.readline(4096)
    except OSError:
        return []  # check_paths says what is wrong with it
    words = first[2:].split() if first.startswith(b"#!") else []
    if not words or not words[0].startswith(b"/"):
        return []
    named = [Path(os.fsdecode(words[0]))]
    if named[0].name == "env" and len(words) > 1:
        found = shutil.which(os.fsdecode(words[1]), path=_PATH)
        named += [Path(found)] if found else []
    return named


def check_runner(program: Path, uid: int) -> None:
    """Refuse a job whose code someone other than root and the job's user could change.

    Checks every path of runner_paths with check_paths.

    Raises:
        DockopsError: (exit 1) one of them, or a folder above one, is writable by others.
    """
    check_paths(program, runner_paths(program), uid)


def check_paths(program: Path, paths: Iterable[Path], uid: int) -> None:
    """Refuse to schedule `program` if any of `paths` could be changed by someone else.

    cron would run whatever those files hold by then, as the job's user (root, as a rule): so
    each path and every folder above it must belong to root or that user, and no one else may
    write them (a sticky folder, like /tmp, lets no one replace what another owns). Paths are
    taken as written and their folders walked as such: a symlink's folder is where it can be
    replaced, whatever it points to (runner_paths adds the resolved path too).

    Raises:
        DockopsError: (exit 1) a path or one of its folders is writable by others.
        InvalidInput: a path that cannot be looked at.
    """
    seen: set[Path] = set()
    for start in paths:
        for path in (start, *start.parents):
            if path in seen:
                continue
            seen.add(path)
            try:
                info = path.stat()
            except OSError as exc:
                raise InvalidInput(f"cannot check {path}: {exc.strerror}") from None
            sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
            writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky
            if info.st_uid not in (0, uid) or writable:
                who = f"uid {info.st_uid}" if info.st_uid not in (0, uid) else "others"
                raise DockopsError(
                    f"refusing to schedule {program}: {path} can be changed by {who}, and cron "
                    "would run whatever it holds; install dockops and its Python where only "
                    "root can write"
                )


def _check_path(path: Path) -> None:
    # run-parts (and so cron) skips cron.d files whose names hold anything but [A-Za-z0-9_-].
    if path.parent == DEFAULT_CRON_FILE.parent and not re.fullmatch(r"[A-Za-z0-9_-]+", path.name):
        raise InvalidInput(
            f"cron ignores {path}: names in /etc/cron.d may hold only A-Z a-z 0-9 _ -"
        )


def render_entry(
    *,
    job: Job,
    schedule: str,
    user: str,
    command: Sequence[str],
    env: Mapping[str, str],
    log_file: Path | None = None,
) -> str:
    """The whole cron.d file: marker, environment, and one job line.

    Args:
        job: the job the entry runs; its marker line starts the file.
        schedule: validated cron schedule.
        user: the user the job runs as (one that exists).
        command: argv of the job (absolute dockops path first).
        env: variables to set for the job (only CARRIED_ENV names are used).
        log_file: append output there (absolute); None: send it to syslog through `logger`.

    Raises:
        InvalidInput: an unknown user, a relative log file, or a value the line cannot carry
            (a newline would start a job of its own).
    """
    validate_user(user)
    for part in command:
        _check_text("the job's argument", part)
    if log_file is not None:
        validate_path("--log-file", log_file)
    lines = [
        job.marker,
        "SHELL=/bin/sh",
        f"PATH={_PATH}",
    ]
    for name in CARRIED_ENV:
        value = env.get(name)
        if value:
            if _has_control(value) or "%" in value:
                raise InvalidInput(
                    f"cannot carry {name} into a cron entry: a control character or % in it"
                )
            lines.append(f"{name}={value}")
    argv = " ".join(shlex.quote(part) for part in command)
    sink = f">> {shlex.quote(str(log_file))} 2>&1" if log_file else "2>&1 | logger -t dockops"
    # cron ends the command at an unescaped %: escape every one, the log file's included.
    command_text = f"{argv} {sink}".replace("%", "\\%")
    lines.append(f"{schedule} {user} {command_text}")
    return "\n".join(lines) + "\n"


def _holder(text: str) -> Job | None:
    """The job whose entry `text` is, by its marker line; None for any other text."""
    first = text.partition("\n")[0]
    return next((j for j in JOBS.values() if j.marker == first), None)


def install(path: Path, content: str) -> CronResult:
    """Write the entry atomically, mode 0644 (cron ignores group- or world-writable files).

    Returns:
        action `written`, or `unchanged` when the file already holds exactly this entry.

    Raises:
        InvalidInput: the path is one cron would ignore, a file not written by dockops is
            there, or one holding another job's entry (each job has a file of its own).
    """
    _check_path(path)
    entry = content.rstrip("\n").splitlines()[-1]
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if current == content:
        return CronResult(path=path, action="unchanged", entry=entry)
    if current is not None and not current.startswith(MARKER):
        raise InvalidInput(f"{path} exists and was not written by dockops; choose --file")
    held, ours = _holder(current or ""), _holder(content)
    if held is not None and ours is not None and held != ours:
        raise InvalidInput(f"{path} holds the {held.name} entry; choose another --file")
    try:
        write_atomic(path, content.encode(), mode=0o644)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    return CronResult(path=path, action="written", entry=entry)


def remove(path: Path, job: Job) -> CronResult:
    """Remove `job`'s entry if dockops wrote it.

    Raises:
        InvalidInput: the file is not one dockops wrote, or holds another job's entry.
    """
    try:
        current = path.read_text()
    except FileNotFoundError:
        return CronResult(path=path, action="absent")
    if not current.startswith(MARKER):
        raise InvalidInput(f"refusing to remove {path}: it was not written by dockops")
    held = _holder(current)
    if held is not None and held != job:
        raise InvalidInput(
            f"refusing to remove {path}: it holds the {held.name} entry, not {job.name}'s"
        )
    path.unlink()
    return CronResult(path=path, action="removed")
