"""Units and times the commands parse (units.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dockops.errors import InvalidInput
from dockops.units import parse_size, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        (
            "2024-01-02T03:04:05.123456789Z",
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        ),
        ("2024-01-02T05:04:05.5+02:00", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)),
        ("2024-13-02T03:04:05Z", None),
        ("", None),
        ("not a time", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20GB", 20 * 10**9),
        ("20gb", 20 * 10**9),
        ("1.5TB", 1_500_000_000_000),
        ("500MB", 500 * 10**6),
        ("20GiB", 20 * 2**30),
        ("1024", 1024),
        ("1k", 1000),
        ("0", 0),
    ],
)
def test_parse_size_reads_si_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "-1GB", "20XB", "20 G B", "1e3", "20%"])
def test_parse_size_refuses_anything_else(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid size"):
        parse_size(text)
