"""Sizes and ages the way the docker CLI prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def short_id(image_id: str) -> str:
    """The 12 hex digits the docker CLI shows for an image or layer ID."""
    return image_id.removeprefix("sha256:")[:12]


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


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30m``, ``12h``, ``7d``, ``1w``, ``1h30m`` or ``90s``.

    Raises:
        InvalidInput: anything else (no unit, unknown unit, zero, negative).
    """
    import re

    from dockops.errors import InvalidInput

    parts = re.findall(r"(\d+)([smhdw])", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise InvalidInput(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 30m, 12h, 7d"
        )
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidInput(f"invalid duration {text!r}: must be longer than zero")
    return float(seconds)


def human_duration(seconds: float) -> str:
    """The inverse of parse_duration for display: 90000 → '1d1h'."""
    remaining = int(seconds)
    out = ""
    for unit in ("w", "d", "h", "m", "s"):
        count, remaining = divmod(remaining, _DURATION_UNITS[unit])
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def parse_timestamp(text: str) -> datetime | None:
    """An image config's `created` (RFC 3339, Go's nanoseconds) as an aware datetime; None when
    it is missing or unreadable."""
    import re
    from datetime import datetime, timezone

    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    iso = base + (f".{fraction[:6].ljust(6, '0')}" if fraction else "")
    iso += "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc)
    except ValueError:
        return None


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``20GB``, ``500MB``, ``1.5TB`` or ``20GiB``: SI units as
    human_size prints them (and `docker system df`), binary ones when spelt ``KiB``..``TiB``;
    a bare number is bytes.

    Raises:
        InvalidInput: anything else (no number, an unknown unit, a negative size).
    """
    import re

    from dockops.errors import InvalidInput

    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _SIZE_UNITS:
        raise InvalidInput(
            f"invalid size {text!r}: use a number and a unit (B, kB, MB, GB, TB, or KiB..TiB), "
            "e.g. 20GB"
        )
    return int(float(found.group(1)) * _SIZE_UNITS[unit])
