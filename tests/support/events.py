"""Waiting for an engine's event to be logged before a run that must see it."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from dockops.core.cleanup.usage import engine_sightings
from dockops.engine import connect


def wait_for_event(since: datetime, source: str) -> None:
    """Podman logs an event 50-100 ms after the request that made it returned (more on a busy
    machine): a run started at once would not see it yet, and sees it the next time (its
    window starts before where the last one stopped). Wait, bounded, until it is logged.

    Raises:
        AssertionError: not logged within 10 s.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = datetime.now(timezone.utc)
        if any(s.source == source for s in engine_sightings(connect(), since, now)):
            return
        time.sleep(0.1)
    raise AssertionError(f"the engine never logged {source!r}")
