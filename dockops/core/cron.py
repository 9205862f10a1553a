"""The cron.d entry that runs prune-dangling unattended."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockops.atomic import write_atomic
from dockops.errors import InvalidInput

DEFAULT_CRON_FILE = Path("/etc/cron.d/dockops")
MARKER = "# Managed by dockops"
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


def _check_path(path: Path) -> None:
    # run-parts (and so cron) skips cron.d files whose names hold anything but [A-Za-z0-9_-].
    if path.parent == DEFAULT_CRON_FILE.parent and not re.fullmatch(r"[A-Za-z0-9_-]+", path.name):
        raise InvalidInput(
            f"cron ignores {path}: names in /etc/cron.d may hold only A-Z a-z 0-9 _ -"
        )


def render_entry(
    *,
    schedule: str,
    user: str,
    command: Sequence[str],
    env: Mapping[str, str],
    log_file: Path | None = None,
) -> str:
    """The whole cron.d file: marker, environment, and one job line.

    Args:
        schedule: validated cron schedule.
        user: the user the job runs as.
        command: argv of the job (absolute dockops path first).
        env: variables to set for the job (only CARRIED_ENV names are used).
        log_file: append output there; None: send it to syslog through `logger`.
    """
    lines = [
        f"{MARKER}: prune dangling images. Remove with `dockops cron remove`.",
        "SHELL=/bin/sh",
        f"PATH={_PATH}",
    ]
    for name in CARRIED_ENV:
        value = env.get(name)
        if value:
            if "\n" in value or "%" in value:
                raise InvalidInput(f"cannot carry {name} into a cron entry: newline or % in it")
            lines.append(f"{name}={value}")
    job = " ".join(shlex.quote(part) for part in command)
    # cron turns an unescaped % into a newline: escape it in the job line.
    job = job.replace("%", "\\%")
    sink = f">> {shlex.quote(str(log_file))} 2>&1" if log_file else "2>&1 | logger -t dockops"
    lines.append(f"{schedule} {user} {job} {sink}")
    return "\n".join(lines) + "\n"


def install(path: Path, content: str) -> CronResult:
    """Write the entry atomically, mode 0644 (cron ignores group- or world-writable files).

    Returns:
        action `written`, or `unchanged` when the file already holds exactly this entry.

    Raises:
        InvalidInput: the path is one cron would ignore, or a file not written by dockops is there.
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
        return CronResult(path, "unchanged", entry)
    if current is not None and not current.startswith(MARKER):
        raise InvalidInput(f"{path} exists and was not written by dockops; choose --file")
    try:
        write_atomic(path, content.encode(), mode=0o644)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    return CronResult(path, "written", entry)


def remove(path: Path) -> CronResult:
    """Remove the entry if dockops wrote it.

    Raises:
        InvalidInput: the file is not one dockops wrote.
    """
    try:
        current = path.read_text()
    except FileNotFoundError:
        return CronResult(path, "absent")
    if not current.startswith(MARKER):
        raise InvalidInput(f"refusing to remove {path}: it was not written by dockops")
    path.unlink()
    return CronResult(path, "removed")
