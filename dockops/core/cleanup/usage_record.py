"""The usage record: what prune-images knows of each image's last use, kept between runs.

Where: /var/lib/dockops/usage/<key>.json for root, else $XDG_STATE_HOME/dockops/usage/<key>.json
($XDG_STATE_HOME defaults to ~/.local/state); <key> is a short hash of the engine's address,
so two engines on one host keep two records. The file is 0600 in a 0700 folder, written whole
(temp file, then rename).

What (version 1), one JSON object on one line:

    {"version": 1, "engine": "unix:///var/run/docker.sock",
     "events_until": "2026-01-02T03:00:00.123456Z",
     "images": {"sha256:<id>": {"last_used": "2026-01-01T22:14:05.412345Z",
                                "source": "container 1a2b3c4d5e6f started (engine event)"}}}

`events_until` is where the next run starts reading the engine's events. Only images that
exist when it is written are kept, so it grows with the images on the host, never with the
number of runs.

A record that is missing or damaged is never a reason to delete more: a missing one (the first
run) has nothing to add; a damaged one (not JSON, another version, a wrong type, a time that
does not parse or lies in the future) is read as nothing but its floor, the file's mtime: the
run that last wrote it saw every image then present, so each image counts as used at least
then. Every entry it could have held is no newer than that write, so the floor alone keeps at
least what the entries would have kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dockops.atomic import make_folders, write_atomic
from dockops.core.cleanup.retention import LastUse
from dockops.errors import InvalidInput
from dockops.reference import qualified_id
from dockops.text import printable
from dockops.units import parse_timestamp, short_id

RECORD_VERSION = 1
RECORD_SOURCE = "usage record: "
READ, MISSING, DAMAGED = "read", "missing", "damaged"
SYSTEM_FOLDER = Path("/var/lib/dockops/usage")
# Far beyond any host (an entry takes about 170 bytes: 2,000 images, 0.34 MB): a larger file
# is not one dockops wrote, and is not read into memory.
MAX_BYTES = 64 * 1024 * 1024
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class UsageRecord:
    """A record as read. `state` is "read", "missing" or "damaged" (`problem` says why, in one
    line); `floor` is set for a damaged record only: every image counts as used at least then."""

    path: Path
    uses: Mapping[str, LastUse] = field(default_factory=dict)
    events_until: datetime | None = None
    state: str = MISSING
    problem: str | None = None
    floor: datetime | None = None


class _Damaged(Exception):
    pass


def default_record_path(engine_address: str) -> Path:
    """Where the record of the engine at `engine_address` lives for the current user."""
    key = hashlib.sha256(engine_address.encode()).hexdigest()[:16]
    if os.geteuid() == 0:
        folder = SYSTEM_FOLDER
    else:
        state = os.environ.get("XDG_STATE_HOME", "")
        # The XDG spec: a relative path in the variable is invalid and ignored.
        base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
        folder = base / "dockops" / "usage"
    return folder / f"{key}.json"


def read_record(path: Path, now: datetime | None = None) -> UsageRecord:
    """The record at `path`; never raises for what the file holds.

    Raises:
        InvalidInput: the file exists and cannot be read (permissions, a folder).
    """
    now = now or datetime.now(timezone.utc)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
            mtime = os.fstat(handle.fileno()).st_mtime
    except FileNotFoundError:
        return UsageRecord(path=path, state=MISSING)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInput(f"cannot read the usage record {path}: {reason.lower()}") from None
    try:
        uses, until = _parse(data, now)
    except _Damaged as exc:
        return UsageRecord(
            path=path,
            state=DAMAGED,
            problem=printable(str(exc), limit=200),
            floor=min(datetime.fromtimestamp(mtime, timezone.utc), now),
        )
    return UsageRecord(path=path, uses=uses, events_until=until, state=READ)


def _parse(data: bytes, now: datetime) -> tuple[dict[str, LastUse], datetime]:
    if len(data) > MAX_BYTES:
        raise _Damaged(f"larger than {MAX_BYTES // 1024 // 1024} MiB")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Damaged("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _Damaged(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # e.g. a number too long to convert
        raise _Damaged(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _Damaged("not a JSON object")
    version = document.get("version")
    if type(version) is not int or version != RECORD_VERSION:
        raise _Damaged(f"version {_shown(version)}, expected {RECORD_VERSION}")
    if not isinstance(document.get("engine", ""), str):
        raise _Damaged("engine is not text")
    until = _time(document.get("events_until"), "events_until", now)
    images = document.get("images")
    if not isinstance(images, dict):
        raise _Damaged("images is not an object")
    uses: dict[str, LastUse] = {}
    for image_id, entry in images.items():
        if not _IMAGE_ID.fullmatch(image_id):
            raise _Damaged(f"image key {_shown(image_id)} is not an image ID")
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            raise _Damaged(f"image {short_id(image_id)}: not an object with a source")
        when = _time(entry.get("last_used"), f"image {short_id(image_id)} last_used", now)
        uses[image_id] = LastUse(when=when, source=entry["source"])
    return uses, until


def _time(value: Any, what: str, now: datetime) -> datetime:
    when = parse_timestamp(value) if isinstance(value, str) else None
    if when is None:
        raise _Damaged(f"{what} {_shown(value)} is not an RFC 3339 time")
    if when > now:
        raise _Damaged(f"{what} {value} is in the future")
    return when


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def write_record(
    path: Path,
    uses: Mapping[str, LastUse],
    present_ids: Iterable[str],
    until: datetime,
    *,
    engine: str = "",
) -> None:
    """Replace the record at `path`: the uses of the images in `present_ids` (others are
    dropped), and `until`, where the next run's events start. `engine` is the engine's
    address, for a reader of the file.

    Raises:
        InvalidInput: the folder or the file cannot be written (one line, the OS's reason).
    """
    present = {qualified_id(i) for i in present_ids}
    images = {}
    for image_id, use in sorted(uses.items()):
        full = qualified_id(image_id)
        if full in present:
            images[full] = {
                "last_used": _stamp(use.when),
                "source": use.source.removeprefix(RECORD_SOURCE),
            }
    document = {
        "version": RECORD_VERSION,
        "engine": engine,
        "events_until": _stamp(until),
        "images": images,
    }
    data = json.dumps(document, separators=(",", ":")).encode() + b"\n"
    try:
        # 0700: the record says what ran on the host, and when.
        make_folders(path.parent, mode=0o700)
        write_atomic(path, data, mode=0o600)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInput(f"cannot write the usage record {path}: {reason.lower()}") from None


def _stamp(when: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the microsecond: uses are ranked against the engine's own
    times, and a use cut to its second ranks below a tag made earlier in that second."""
    utc = when.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"
