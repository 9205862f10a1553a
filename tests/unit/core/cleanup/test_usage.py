"""The usage record and the engine's events as last uses: the record's round trip and every kind
of damage (read as damaged with a floor, never raised), what each engine's events name, how a
name or an ID in them becomes an image, and the newest use winning."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dockops.core.cleanup import usage_record
from dockops.core.cleanup.retention import LastUse, TaggedImage
from dockops.core.cleanup.usage import (
    EVENTS_OVERLAP,
    FIRST_WINDOW,
    Sighting,
    UsageRecord,
    default_record_path,
    engine_sightings,
    merge_usage,
    read_record,
    write_record,
)
from dockops.errors import InvalidInput

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
BUSYBOX = "sha256:" + "b" * 64
APP = "sha256:" + "a" * 64
APP2 = "sha256:" + "a" * 12 + "c" * 52  # shares APP's first 12 digits
LOCAL = "sha256:" + "1" * 64
IMAGES = (
    TaggedImage(id=BUSYBOX, tags=("busybox:latest",), size=1, created=NOW - timedelta(days=30)),
    TaggedImage(id=APP, tags=("probe/x:t1", "registry.local:5000/app:1"), size=1, created=NOW),
    TaggedImage(id=APP2, tags=(), size=1, created=NOW),
    TaggedImage(id=LOCAL, tags=("localhost/app:1",), size=1, created=NOW),
)


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def record_of(**kw: Any) -> UsageRecord:
    return UsageRecord(path=Path("unused"), **kw)


# -- the file ---------------------------------------------------------------------------------


def test_a_record_reads_back_as_written_keeping_only_present_images(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dockops" / "usage" / "k.json"
    uses = {
        BUSYBOX: LastUse(ago(hours=3), "container 1a2b3c4d5e6f started (engine event)"),
        "a" * 64: LastUse(ago(days=2), "usage record: created"),  # podman's bare hex ID
        "sha256:" + "d" * 64: LastUse(ago(days=1), "created"),  # gone since: dropped
    }
    until = NOW.replace(microsecond=123456)
    write_record(path, uses, [BUSYBOX, APP], until, engine="unix:///run/docker.sock")
    record = read_record(path, now=NOW + timedelta(seconds=1))
    assert record.state == "read" and record.problem is None and record.floor is None
    assert record.events_until == until
    assert record.uses == {
        BUSYBOX: LastUse(ago(hours=3), "container 1a2b3c4d5e6f started (engine event)"),
        APP: LastUse(ago(days=2), "created"),  # the prefix merge_usage adds is not stored
    }
    document = json.loads(path.read_text())
    assert document["version"] == 1 and document["engine"] == "unix:///run/docker.sock"
    assert document["events_until"] == "2026-06-01T12:00:00.123456Z"
    assert path.read_text().count("\n") == 1  # compact: one line


def test_the_record_is_private_and_its_new_folders_too(tmp_path: Path) -> None:
    path = tmp_path / "new" / "usage" / "k.json"
    old_umask = os.umask(0)
    try:
        write_record(path, {}, [], NOW)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["k.json"]  # no temp file left


def test_an_entry_costs_about_170_bytes(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_record(path, {}, [], NOW)
    empty = path.stat().st_size
    ids = [f"sha256:{n:064x}" for n in range(2000)]
    source = "container 1a2b3c4d5e6f started (engine event)"
    write_record(path, {i: LastUse(NOW, source) for i in ids}, ids, NOW)
    per_entry = (path.stat().st_size - empty) / len(ids)
    assert 160 <= per_entry <= 180, per_entry  # the closing note: 2,000 images take 0.34 MB


def test_a_missing_record_is_the_first_run_without_a_floor(tmp_path: Path) -> None:
    record = read_record(tmp_path / "none.json", now=NOW)
    assert (record.state, record.uses, record.events_until, record.floor) == (
        "missing",
        {},
        None,
        None,
    )


GOOD = {
    "version": 1,
    "engine": "unix:///run/docker.sock",
    "events_until": "2026-06-01T11:00:00Z",
    "images": {BUSYBOX: {"last_used": "2026-06-01T10:00:00Z", "source": "created"}},
}


def _with(path: tuple[str, ...], value: Any) -> bytes:
    document = json.loads(json.dumps(GOOD))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(document).encode()


DAMAGE = {
    "garbage": (b"\x00\xff not json at all", "not UTF-8 text"),
    "empty": (b"", "not JSON (Expecting value at line 1 column 1)"),
    "truncated": (json.dumps(GOOD).encode()[:-9], "not JSON"),
    "array": (b"[1, 2]", "not a JSON object"),
    "version 2": (_with(("version",), 2), "version 2, expected 1"),
    "version text": (_with(("version",), "1"), 'version "1", expected 1'),
    "version true": (_with(("version",), True), "version true, expected 1"),
    "no version": (b'{"images": {}}', "version null, expected 1"),
    "engine number": (_with(("engine",), 5), "engine is not text"),
    "until number": (_with(("events_until",), 1767323045), "events_until 1767323045 is not"),
    "until bad date": (_with(("events_until",), "2026-13-45T99:00:00Z"), "events_until"),
    "until future": (_with(("events_until",), "2026-06-02T00:00:00Z"), "in the future"),
    "images list": (_with(("images",), []), "images is not an object"),
    "bad key": (_with(("images",), {"busybox": {}}), 'image key "busybox" is not an image ID'),
    "entry text": (_with(("images", BUSYBOX), "x"), "not an object with a source"),
    "source number": (_with(("images", BUSYBOX, "source"), 3), "not an object with a source"),
    "bad last_used": (_with(("images", BUSYBOX, "last_used"), "yesterday"), '"yesterday" is not'),
    "future last_used": (
        _with(("images", BUSYBOX, "last_used"), "2027-01-01T00:00:00Z"),
        "last_used 2027-01-01T00:00:00Z is in the future",
    ),
    "control chars": (_with(("version",), "\x1b[31m\n"), "version"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_every_kind_of_damage_reads_as_damaged_with_the_files_mtime_as_floor(
    tmp_path: Path, name: str
) -> None:
    data, problem = DAMAGE[name]
    path = tmp_path / "k.json"
    path.write_bytes(data)
    written = ago(hours=5)
    os.utime(path, (written.timestamp(), written.timestamp()))
    record = read_record(path, now=NOW)
    assert record.state == "damaged", record
    assert record.problem is not None and problem in record.problem
    assert record.problem.isprintable() and "\x1b" not in record.problem
    assert record.uses == {} and record.events_until is None
    assert record.floor == written


def test_a_good_record_is_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(json.dumps(GOOD).encode())
    assert read_record(path, now=NOW).state == "read"


def test_the_floor_of_a_record_written_in_the_future_is_now(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(b"{")
    later = NOW + timedelta(days=3)
    os.utime(path, (later.timestamp(), later.timestamp()))
    assert read_record(path, now=NOW).floor == NOW


def test_a_record_that_cannot_be_read_is_bad_input_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "k.json"
    folder.mkdir()
    with pytest.raises(InvalidInput, match=r"^cannot read the usage record .*k\.json: is a dir"):
        read_record(folder)

    def denied(self: Path, *args: Any, **kw: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(InvalidInput, match=r"^cannot read .*: permission denied$"):
        read_record(tmp_path / "other.json")


def test_a_record_that_cannot_be_written_is_bad_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match=r"^cannot write the usage record .*: not a directory$"):
        write_record(tmp_path / "file" / "k.json", {}, [], NOW)


def test_each_engine_has_its_own_record_under_root_or_the_users_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = default_record_path("unix:///var/run/docker.sock")
    assert root.parent == Path("/var/lib/dockops/usage") and root.suffix == ".json"
    assert root == default_record_path("unix:///var/run/docker.sock")  # stable
    assert root != default_record_path("unix:///run/podman/podman.sock")
    assert len(root.stem) == 16

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_record_path("x").parent == tmp_path / "state" / "dockops" / "usage"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/state"):  # XDG: a relative path is ignored
        monkeypatch.setenv("XDG_STATE_HOME", unset)
        expected = tmp_path / "home" / ".local" / "state" / "dockops" / "usage"
        assert default_record_path("x").parent == expected


# -- what the engines' events name ------------------------------------------------------------


def _event(kind: str, action: str, actor: str, nanos: int, **attributes: str) -> dict[str, Any]:
    return {
        "Type": kind,
        "Action": action,
        "status": action,
        "Actor": {"ID": actor, "Attributes": attributes},
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }


T0 = int(ago(hours=1).timestamp()) * 1_000_000_000
CID = "8d3f74cab59c50c585c07f217809b31f4f83c8b357a1168a3b8abfc0e1b00705"
# As the probes of this change saw them: dockerd 20.10, then Podman 4.3's compat API.
DOCKER_EVENTS = [
    _event("container", "create", CID, T0, image="busybox:latest", name="x"),
    _event("network", "connect", "44b50e4ca37a", T0 + 1_000, name="none"),
    _event("container", "start", CID, T0 + 2_000, image="busybox:latest", name="x"),
    _event("container", "die", CID, T0 + 3_000, image="busybox:latest", name="x"),
    _event("container", "destroy", CID, T0 + 4_000, image="busybox:latest", name="x"),
    _event("image", "tag", APP, T0 + 5_000, name="probe/x:t1"),
    _event("container", "create", CID, T0 + 6_000, image="aaaaaaaaaaaa", name="y"),
    _event("image", "untag", APP, T0 + 7_000, name=APP),
    _event("image", "load", BUSYBOX, T0 + 8_000, name=BUSYBOX),
    _event("image", "pull", "busybox:latest", T0 + 9_000, name="busybox"),
]
PODMAN_EVENTS = [
    _event("container", "create", CID, T0, image="docker.io/library/busybox:latest", name="x"),
    _event(
        "container", "init", CID, T0 + 1_000, image="docker.io/library/busybox:latest", name="x"
    ),
    _event(
        "container", "died", CID, T0 + 2_000, image="docker.io/library/busybox:latest", name="x"
    ),
    _event("image", "tag", "a" * 64, T0 + 3_000, image="", name="docker.io/probe/x:t1"),
    {
        "Type": "image",
        "Action": "loadfromarchive",
        "Actor": {"ID": "", "Attributes": {"name": "/var/tmp/api_load.tar1335148543"}},
        "timeNano": T0 + 4,
    },
    _event("image", "pull", "b" * 64, T0 + 5_000, name="docker.io/library/busybox:latest"),
]
MALFORMED = [
    {"Type": "container", "Action": "start", "timeNano": T0},  # no Actor
    {"Type": "container", "Action": {"x": 1}, "Actor": {}, "timeNano": T0},
    {"Type": "container", "Action": "start", "Actor": {"ID": 5, "Attributes": []}, "time": 1},
    {"Type": "container", "Action": "start", "Actor": {"ID": CID}},  # no time
    {"Type": "image", "Action": "tag", "Actor": {"ID": None, "Attributes": None}, "time": 1},
]


class FakeEngine:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.found = events
        self.asked: list[tuple[datetime | None, datetime, dict[str, list[str]]]] = []

    def events(
        self, since: datetime | None, until: datetime, filters: dict[str, list[str]], what: str
    ) -> list[dict[str, Any]]:
        self.asked.append((since, until, filters))
        return self.found


def _sightings(events: list[dict[str, Any]], since: datetime | None = None) -> list[Sighting]:
    engine = FakeEngine(events)
    found = engine_sightings(engine, since, NOW)  # type: ignore[arg-type]
    assert engine.asked[0][1:] == (NOW, {"type": ["container", "image"]})
    return found


def test_dockerd_names_a_containers_image_as_typed_and_an_image_by_id_or_reference() -> None:
    found = _sightings(DOCKER_EVENTS)
    assert found[0].when == datetime.fromtimestamp(T0 // 1_000_000_000, timezone.utc)
    assert found[-1].when == found[0].when + timedelta(microseconds=9)
    assert [(s.subject, s.source) for s in found] == [
        ("busybox:latest", "container 8d3f74cab59c created (engine event)"),
        ("busybox:latest", "container 8d3f74cab59c started (engine event)"),
        ("busybox:latest", "container 8d3f74cab59c finished (engine event)"),
        (APP, "image tagged probe/x:t1 (engine event)"),
        ("probe/x:t1", "image tagged probe/x:t1 (engine event)"),
        ("aaaaaaaaaaaa", "container 8d3f74cab59c created (engine event)"),
        (BUSYBOX, "image loaded (engine event)"),
        ("busybox:latest", "image pulled (engine event)"),
        ("busybox", "image pulled (engine event)"),
    ]


def test_podman_names_images_in_full_and_by_bare_hex_and_its_load_names_none() -> None:
    found = [(s.subject, s.source) for s in _sightings(PODMAN_EVENTS)]
    assert found == [
        ("docker.io/library/busybox:latest", "container 8d3f74cab59c created (engine event)"),
        ("docker.io/library/busybox:latest", "container 8d3f74cab59c finished (engine event)"),
        ("a" * 64, "image tagged probe/x:t1 (engine event)"),
        ("docker.io/probe/x:t1", "image tagged probe/x:t1 (engine event)"),
        ("b" * 64, "image pulled (engine event)"),
        ("docker.io/library/busybox:latest", "image pulled (engine event)"),
    ]


def test_malformed_events_name_nothing() -> None:
    assert _sightings(MALFORMED) == []


def test_without_a_record_or_after_the_clock_went_back_the_last_week_is_read() -> None:
    for since in (None, NOW + timedelta(hours=1)):
        engine = FakeEngine([])
        engine_sightings(engine, since, NOW)  # type: ignore[arg-type]
        assert engine.asked[0][0] == NOW - FIRST_WINDOW == NOW - timedelta(days=7)
    # From a record: a little before its end, for the events Podman logs late.
    engine = FakeEngine([])
    engine_sightings(engine, ago(hours=1), NOW)  # type: ignore[arg-type]
    assert engine.asked[0][0] == ago(hours=1, seconds=5) == ago(hours=1) - EVENTS_OVERLAP


# -- merging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "image"),
    [
        (BUSYBOX, BUSYBOX),
        ("b" * 64, BUSYBOX),  # podman's bare hex
        ("bbbbbbbbbbbb", BUSYBOX),  # a short ID
        ("sha256:bbbbbbbbbbbbbbbb", BUSYBOX),
        ("aaaaaaaaaaaa", None),  # a prefix of two images: names neither
        ("aaaaaaaaaaaac", APP2),
        ("sha256:" + "e" * 64, None),  # an image that is gone
        ("busybox", BUSYBOX),  # latest by default
        ("busybox:latest", BUSYBOX),
        ("docker.io/library/busybox:latest", BUSYBOX),  # podman's full names
        ("index.docker.io/library/busybox", BUSYBOX),
        ("docker.io/probe/x:t1", APP),
        ("registry.local:5000/app:1", APP),
        ("localhost/app:1", LOCAL),  # podman's local names stay as they are
        ("app:1", LOCAL),  # ...and a bare name typed on podman finds them
        ("busybox@sha256:" + "f" * 64, None),  # a digest names a manifest, not an image
        ("busybox:1.36", None),
        ("/var/tmp/api_load.tar1335148543", None),
        ("", None),
    ],
)
def test_a_subject_resolves_to_the_image_the_engine_would_find(
    subject: str, image: str | None
) -> None:
    sighting = Sighting(subject=subject, when=ago(hours=1), source="s")
    merged = merge_usage(record_of(), [sighting], IMAGES)
    assert merged == ({image: LastUse(ago(hours=1), "s")} if image else {})


def test_the_newest_use_wins_with_its_source() -> None:
    record = record_of(
        state="read",
        uses={
            BUSYBOX: LastUse(ago(hours=2), "container 1a2b3c4d5e6f started (engine event)"),
            APP: LastUse(ago(hours=9), "usage record: created"),
            "sha256:" + "d" * 64: LastUse(ago(hours=1), "created"),  # gone: dropped
        },
    )
    sightings = [
        Sighting("busybox", ago(hours=3), "container 0000 created (engine event)"),
        Sighting("probe/x:t1", ago(hours=8), "image tagged probe/x:t1 (engine event)"),
        Sighting("probe/x:t1", ago(hours=4), "container 1111 started (engine event)"),
        Sighting("probe/x:t1", ago(hours=5), "container 1111 created (engine event)"),
    ]
    assert merge_usage(record, sightings, IMAGES) == {
        BUSYBOX: LastUse(
            ago(hours=2), "usage record: container 1a2b3c4d5e6f started (engine event)"
        ),
        APP: LastUse(ago(hours=4), "container 1111 started (engine event)"),
    }


def test_a_damaged_record_counts_every_image_as_used_at_its_floor_at_least() -> None:
    record = record_of(state="damaged", problem="not JSON", floor=ago(hours=6))
    sightings = [Sighting("busybox", ago(hours=1), "container 0000 started (engine event)")]
    merged = merge_usage(record, sightings, IMAGES)
    assert merged[BUSYBOX] == LastUse(ago(hours=1), "container 0000 started (engine event)")
    floor = merged[APP]
    assert floor.when == ago(hours=6)
    assert floor.source.startswith("usage record: damaged (not JSON)")
    assert set(merged) == {BUSYBOX, APP, APP2, LOCAL}
    assert merge_usage(record_of(state="missing"), [], IMAGES) == {}  # a missing one has none


def test_a_record_written_then_merged_then_written_keeps_its_source_plain(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    ids = [i.id for i in IMAGES]
    write_record(path, {BUSYBOX: LastUse(ago(hours=2), "created")}, ids, ago(hours=1))
    for _ in range(2):
        merged = merge_usage(read_record(path, now=NOW), [], IMAGES)
        assert merged[BUSYBOX].source == "usage record: created"
        write_record(path, merged, ids, ago(hours=1))
    assert usage_record.RECORD_SOURCE == "usage record: "
