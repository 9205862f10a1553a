"""Sizes and ages the way the docker CLI prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def human_size(size: int | float) -> str:
    """Bytes the way the docker CLI prints them (SI units, 3 significant digits)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    value = float(size)
    for unit in units:
        if abs(value) < 1000 or unit == units[-1]:
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_age(when: datetime, now: datetime | None = None) -> str:
    """'3 days ago', as `docker images` says it."""
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    seconds = max(0, int((now - when).total_seconds()))
    for unit, length in (
        ("year", 31536000),
        ("month", 2592000),
        ("week", 604800),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "less than a minute ago" if seconds >= 1 else "just now"
