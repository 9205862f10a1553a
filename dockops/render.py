"""The one renderer: human tables (tabulate), exactly one JSON document, or nothing.

Core results are frozen dataclasses; this module turns them into text and is the only place
(with the error boundary) that writes to stdout. Text for a terminal goes through printable():
names, tags and messages from a registry or an engine may carry escape sequences.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePath
from typing import Any, NamedTuple

from dockops.errors import InvalidInput

# ESC or an 8-bit C1 introducer and the rest of its sequence (CSI …final, OSC/DCS/… up to BEL
# or ST, or one more character), then any other C0, DEL or C1 control left alone.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` without terminal control: escape sequences dropped, tabs and line breaks as spaces
    (kept when `newlines`), every other control character dropped."""
    text = _ESCAPE.sub("", text)
    return _CONTROL.sub(lambda m: _blank(m.group(), newlines), text)


def _blank(char: str, newlines: bool) -> str:
    if char == "\n" and newlines:
        return char
    return " " if char in "\t\n\r\x0b\x0c" else ""


class Output(enum.Enum):
    TABLE = "table"
    JSON = "json"
    QUIET = "quiet"


def output_mode(json_flag: bool = False, quiet: bool = False) -> Output:
    if json_flag and quiet:
        raise InvalidInput("--json and --quiet cannot be used together")
    if json_flag:
        return Output.JSON
    return Output.QUIET if quiet else Output.TABLE


class Column(NamedTuple):
    """A table column: its header and how to get the cell text from one row item."""

    header: str
    cell: Callable[[Any], Any]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, paths, enums and tuples as plain JSON values."""
    import dataclasses
    from datetime import datetime, timezone

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    return value


def emit(
    result: Any,
    output: Output,
    *,
    columns: Sequence[Column] = (),
    rows: Iterable[Any] | None = None,
    summary: str | None = None,
) -> None:
    """Print `result` in the chosen form.

    Args:
        result: what --json prints (any dataclass/list/dict).
        output: table, json or quiet.
        columns: the table's columns; without them the table form prints only `summary`.
        rows: the table's row items (default: `result` itself when it is a list).
        summary: a line printed after the table in the human form.
    """
    if output is Output.QUIET:
        return
    if output is Output.JSON:
        import json

        sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")
        return
    if columns:
        from tabulate import tabulate

        items = list(result if rows is None else rows)
        table = [[printable(_cell(c.cell(item))) for c in columns] for item in items]
        headers = [c.header for c in columns]
        sys.stdout.write(tabulate(table, headers=headers, tablefmt="plain", disable_numparse=True))
        sys.stdout.write("\n")
    if summary:
        sys.stdout.write(printable(summary, newlines=True) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
