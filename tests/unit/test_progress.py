"""Progress output: plain lines off a terminal, only on status changes; nothing when disabled."""

from __future__ import annotations

import io

from dockops.progress import ProgressEvent, reporter


def test_plain_lines_only_on_status_change() -> None:
    out = io.StringIO()
    with reporter(stream=out) as report:
        report(ProgressEvent("abc123", "Downloading", 1, 10))
        report(ProgressEvent("abc123", "Downloading", 5, 10))
        report(ProgressEvent("def456", "Waiting"))
        report(ProgressEvent("abc123", "Pull complete"))
    assert out.getvalue().splitlines() == [
        "abc123: Downloading",
        "def456: Waiting",
        "abc123: Pull complete",
    ]


def test_disabled_reporter_prints_nothing() -> None:
    out = io.StringIO()
    with reporter(enabled=False, stream=out) as report:
        report(ProgressEvent("abc123", "Downloading", 1, 10))
    assert out.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_bars() -> None:
    out = _Terminal()
    with reporter(stream=out) as report:
        report(ProgressEvent("abc123", "Downloading", 5, 10))
        report(ProgressEvent("abc123", "Download complete", 10, 10))
    assert "abc123" in out.getvalue() and "Download complete" in out.getvalue()


def test_lines_carry_no_terminal_control() -> None:
    """A status may quote a registry's error text: its escapes are dropped."""
    out = io.StringIO()
    with reporter(stream=out) as report:
        report(ProgressEvent("abc\x1b[2J123", "attempt failed (\x1b]0;owned\x07denied\r\n)"))
    assert out.getvalue() == "abc123: attempt failed (denied  )\n"


def test_bars_print_statuses_as_text_not_markup() -> None:
    out = _Terminal()
    with reporter(stream=out) as report:
        report(ProgressEvent("abc123", "failed: [/bold] \x1b[31mred"))
    assert "failed: [/bold] red" in out.getvalue()
