"""prune-images' options as text, checked before any engine is asked: the CLI and the cron
entry read them with the same code, so a cron job cannot be installed with an option the run
would refuse."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dockops.errors import InvalidInput
from dockops.units import parse_size


@dataclass(frozen=True)
class DiskLimit:
    """`--max-disk`: bytes, or a percentage of the filesystem the engine keeps images on."""

    text: str
    size: int | None = None
    percent: float | None = None

    def bytes_on(self, filesystem_bytes: int | None) -> int:
        """The limit in bytes; `filesystem_bytes` is needed for a percentage.

        Raises:
            InvalidInput: a percentage, and the engine's filesystem cannot be measured here.
        """
        if self.size is not None:
            return self.size
        if filesystem_bytes is None:
            raise InvalidInput(
                f"--max-disk {self.text}: the engine's filesystem is not on this machine, "
                "so a percentage of it cannot be measured; give a size such as 20GB"
            )
        return int(filesystem_bytes * (self.percent or 0.0) / 100)


def parse_disk_limit(text: str) -> DiskLimit:
    """``20GB`` (see units.parse_size) or ``80%`` (of the engine's filesystem).

    Raises:
        InvalidInput: anything else, or a percentage outside 0..100.
    """
    if text.strip().endswith("%"):
        number = text.strip()[:-1]
        try:
            percent = float(number)
        except ValueError:
            percent = -1.0
        if not 0 <= percent <= 100:
            raise InvalidInput(f"invalid --max-disk {text!r}: a percentage is 0% to 100%")
        return DiskLimit(text=text.strip(), percent=percent)
    try:
        return DiskLimit(text=text.strip(), size=parse_size(text))
    except InvalidInput as exc:
        reason = exc.message.partition(": ")[2]
        raise InvalidInput(f"invalid --max-disk {text!r}: {reason}") from None


def require_a_rule(keep_last: int | None, unused_for: str | None, max_disk: str | None) -> None:
    """Refuse a prune-images without a rule that limits it: with none, every tagged image no
    container uses would go, which `docker image prune -a` does and no cron job should.

    Raises:
        InvalidInput: none of --keep-last, --unused-for, --max-disk.
    """
    if keep_last is None and unused_for is None and max_disk is None:
        raise InvalidInput(
            "prune-images needs at least one of --keep-last N, --unused-for DUR, --max-disk SIZE"
        )


def check_globs(flag: str, globs: list[str] | None) -> tuple[str, ...]:
    """The globs of a repeatable --reference or --keep, refused when one is empty or blank
    (it would match nothing, and a typo like `--reference ""` would plan nothing silently).

    Raises:
        InvalidInput: an empty glob.
    """
    for glob in globs or ():
        if not glob.strip():
            raise InvalidInput(f"invalid {flag} {glob!r}: a glob such as app, ci/* or app:pr-*")
    return tuple(globs or ())


def filesystem_bytes(path: str) -> int | None:
    """The size of the filesystem holding `path` on this machine; None when there is no such
    path here (a remote engine, or one in a VM)."""
    try:
        stats = os.statvfs(Path(path))
    except OSError:
        return None
    return stats.f_blocks * stats.f_frsize
