"""The one renderer: JSON shapes pinned, tables, quiet."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops import render
from dockops.core.doctor import Check, DoctorReport
from dockops.core.images.listing import ImageRow
from dockops.errors import InvalidInput
from dockops.text import printable
from dockops.units import human_age, human_size

ROW = ImageRow(
    repository="busybox",
    tag="latest",
    id="sha256:" + "ab" * 32,
    created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    size=1234567,
    containers=("web", "worker"),
)


def test_image_rows_json_shape_is_pinned(capsys: pytest.CaptureFixture[str]) -> None:
    render.emit([ROW], render.Output.JSON)
    assert json.loads(capsys.readouterr().out) == [
        {
            "repository": "busybox",
            "tag": "latest",
            "id": "sha256:" + "ab" * 32,
            "created": "2026-01-02T03:04:05Z",
            "size": 1234567,
            "containers": ["web", "worker"],
        }
    ]


def test_doctor_json_shape_is_pinned(capsys: pytest.CaptureFixture[str]) -> None:
    report = DoctorReport(
        engine="unix:///x.sock",
        engine_product="Docker Engine",
        engine_version="20.10.24",
        api_version="1.41",
        engine_api_version="1.44",
        storage_driver="overlay2",
        images=3,
        images_bytes=10,
        dangling=1,
        data_root_free_bytes=None,
        checks=(Check("engine", True, "fine"),),
    )
    render.emit(report, render.Output.JSON)
    assert json.loads(capsys.readouterr().out) == {
        "engine": "unix:///x.sock",
        "engine_product": "Docker Engine",
        "engine_version": "20.10.24",
        "api_version": "1.41",
        "engine_api_version": "1.44",
        "storage_driver": "overlay2",
        "images": 3,
        "images_bytes": 10,
        "dangling": 1,
        "data_root_free_bytes": None,
        "checks": [
            {"name": "engine", "ok": True, "detail": "fine", "exit_code": 0, "warning": False}
        ],
        "registry": None,
    }


def test_table_has_headers_and_one_line_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    columns = (
        render.Column("REPOSITORY", lambda r: r.repository),
        render.Column("CONTAINERS", lambda r: r.containers),
    )
    render.emit([ROW, ROW], render.Output.TABLE, columns=columns, summary="2 images")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "CONTAINERS"]
    assert lines[1].split() == ["busybox", "web,worker"]
    assert len(lines) == 4 and lines[-1] == "2 images"


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    render.emit([ROW], render.Output.QUIET, columns=(render.Column("X", lambda r: r.tag),))
    assert capsys.readouterr().out == ""


def test_json_and_quiet_together_is_bad_usage() -> None:
    with pytest.raises(InvalidInput) as info:
        render.output_mode(json_flag=True, quiet=True)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (4_860_000, "4.86MB"), (1_230_000_000, "1.23GB")],
)
def test_human_size_matches_docker(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_age() -> None:
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert human_age(now - timedelta(days=3), now) == "3 days ago"
    assert human_age(now - timedelta(hours=1), now) == "1 hour ago"
    assert human_age(now, now) == "just now"


EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mweb\x1b[0m\x9b1m\x00\r\nfake line"


def test_tables_and_summaries_print_no_terminal_control(capsys: pytest.CaptureFixture[str]) -> None:
    """Names and tags come from a registry: its escape sequences never reach the terminal (the
    title, a cleared screen, colours, a carriage return over the line, a made-up next row).
    A summary's lines are dockops's own: a value quoted in one cannot start another."""
    render.emit(
        [EVIL], render.Output.TABLE, columns=(render.Column("TAG", str),), summary=["1", EVIL]
    )
    assert capsys.readouterr().out.splitlines() == ["TAG", "web  fake line", "1", "web  fake line"]
    render.emit([], render.Output.TABLE, summary=f"deleted {EVIL}")
    assert capsys.readouterr().out.splitlines() == ["deleted web  fake line"]
    render.emit([EVIL], render.Output.JSON)  # json.dumps escapes them: kept as said
    out = capsys.readouterr().out
    assert "\x1b" not in out and json.loads(out) == [EVIL]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "alink"),
        ("tab\tcr\rnl\n", "tab cr nl "),
        ("bell\x07del\x7fnul\x00", "belldelnul"),
        ("reset\x1bc", "reset"),
        ("charset\x1b(B", "charset"),
        ("csi8\x9b2J", "csi8"),
        ("unicode é 日本", "unicode é 日本"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


# Cells as emit() makes them: any text, then printable().
_CELL = st.text(max_size=12).map(printable)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda width: st.tuples(
            st.lists(
                st.text(alphabet="ABCDEFGHIJ KLMNOP", min_size=1, max_size=10),
                min_size=width,
                max_size=width,
            ),
            st.lists(st.lists(_CELL, min_size=width, max_size=width), max_size=6),
        )
    )
)
def test_plain_table_prints_what_tabulate_plain_printed(
    table: tuple[list[str], list[list[str]]],
) -> None:
    tabulate = pytest.importorskip("tabulate").tabulate
    headers, rows = table
    headers = [h.strip() or "H" for h in headers]
    expected = tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)
    assert render.plain_table(headers, rows) == expected
