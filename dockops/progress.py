"""Progress of long streams (pull, push, save, load): rich bars when stderr is a terminal,
plain status lines otherwise. Core code reports through a callback and never prints."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a stream: `item` is a layer id or a label (a file name, an image)."""

    item: str
    status: str
    current: int | None = None
    total: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    """The callback for callers that want no progress."""


@contextlib.contextmanager
def reporter(*, enabled: bool = True, stream: IO[str] | None = None) -> Iterator[ProgressCallback]:
    """Yield a callback that shows progress on `stream` (default stderr).

    On a terminal each item gets a rich progress bar; elsewhere (cron, CI, pipes) a line is
    written only when an item's status changes, so logs stay short.
    """
    out = stream or sys.stderr
    if not enabled:
        yield ignore
    elif out.isatty():
        with _rich_bars(out) as callback:
            yield _printable(callback)
    else:
        yield _printable(_PlainLines(out))


def _printable(callback: ProgressCallback) -> ProgressCallback:
    """Layer ids and statuses come from the engine and the registry (error texts among them):
    no escape sequence of theirs reaches the terminal."""
    import dataclasses

    from dockops.text import printable

    def report(event: ProgressEvent) -> None:
        callback(
            dataclasses.replace(event, item=printable(event.item), status=printable(event.status))
        )

    return report


class _PlainLines:
    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._last: dict[str, str] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if self._last.get(event.item) == event.status:
            return
        self._last[event.item] = event.status
        self._out.write(f"{event.item}: {event.status}\n")
        self._out.flush()


@contextlib.contextmanager
def _rich_bars(out: IO[str]) -> Iterator[ProgressCallback]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [
        TextColumn("{task.description}", markup=False),  # a "[/x]" in a status is text
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    ]
    with Progress(*columns, console=Console(file=out), transient=False) as bars:
        tasks: dict[str, Any] = {}

        def callback(event: ProgressEvent) -> None:
            description = f"{event.item[:20]:<20} {event.status}"
            if event.item not in tasks:
                tasks[event.item] = bars.add_task(description, total=event.total)
            bars.update(
                tasks[event.item],
                description=description,
                completed=event.current if event.current is not None else 0,
                total=event.total,
            )

        yield callback
