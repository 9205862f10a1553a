"""Last use from the engine's events, on both engines: a container that ran and was removed
between two runs still names its image, a tag names its image, and nothing from outside the
window comes back. Each engine names images its own way (dockerd as typed, Podman in full);
both resolve to the same image. Podman logs an event just after the request that made it
returns, so what a test looks for is asked for again until it shows (bounded)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest

from dockops.core.cleanup import usage
from dockops.core.cleanup.retention import TaggedImage
from dockops.core.cleanup.usage import (
    Sighting,
    UsageRecord,
    engine_sightings,
    merge_usage,
    read_record,
    write_record,
)
from dockops.engine import connect
from dockops.reference import familiar_name, qualified_id
from dockops.units import short_id
from tests.harness.engine import Engine as HarnessEngine

REF = "dockops-test/usage:v1"


def _now() -> datetime:
    # The engine stamps events with its own clock (this host's): leave a margin either side.
    time.sleep(0.05)
    moment = datetime.now(timezone.utc)
    time.sleep(0.05)
    return moment


def _commit(client: docker.DockerClient, ref: str) -> str:
    """A runnable image of the test's own (busybox and one file), as `ref`."""
    box = client.api.create_container(
        "busybox:latest",
        ["sh", "-c", "echo usage > /f"],
        host_config=client.api.create_host_config(network_mode="none"),
    )
    client.api.start(box["Id"])
    client.api.wait(box["Id"], timeout=60)
    repository, tag = ref.rsplit(":", 1)
    image_id = qualified_id(client.api.commit(box["Id"], repository=repository, tag=tag)["Id"])
    client.api.remove_container(box["Id"])
    return image_id


def _run(client: docker.DockerClient, image: str) -> str:
    """Create and start a container on `image`, let it exit, remove it; its ID."""
    box = client.api.create_container(
        image, ["true"], host_config=client.api.create_host_config(network_mode="none")
    )
    client.api.start(box["Id"])
    client.api.wait(box["Id"], timeout=60)
    client.api.remove_container(box["Id"])
    return str(box["Id"])


def _images(client: docker.DockerClient) -> list[TaggedImage]:
    """The engine's images as the lead's snapshot gives them: full IDs, familiar tags."""
    return [
        TaggedImage(
            id=qualified_id(i["Id"]),
            tags=tuple(familiar_name(t) for t in i.get("RepoTags") or () if t != "<none>:<none>"),
            size=0,
            created=datetime.fromtimestamp(i["Created"], timezone.utc),
        )
        for i in client.api.images(all=True)
    ]


def _sightings(
    since: datetime, until: datetime, shown: Callable[[list[Sighting]], bool]
) -> list[Sighting]:
    """engine_sightings, asked again for up to 10 s until `shown` holds of its answer."""
    deadline = time.monotonic() + 10
    while True:
        found = engine_sightings(connect(), since, until)
        if shown(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _logged(since: datetime, text: str) -> None:
    """Wait (up to 10 s) until a use the engine logged since `since` says `text`."""
    _sightings(
        since, datetime.now(timezone.utc), lambda found: any(text in s.source for s in found)
    )
    assert any(text in s.source for s in engine_sightings(connect(), since, _now())), text


def _resolved(sighting: Sighting, images: list[TaggedImage]) -> str | None:
    merged = merge_usage(UsageRecord(path=Path("unused")), [sighting], images)
    return next(iter(merged), None)


def test_a_container_that_ran_and_was_removed_names_its_image(
    docker_env: docker.DockerClient, engine: HarnessEngine
) -> None:
    image_id = _commit(docker_env, REF)
    since = _now()
    by_name = _run(docker_env, REF)
    by_id = _run(docker_env, short_id(image_id))
    until = _now()

    died = f"container {short_id(by_id)} finished"
    sightings = _sightings(since, until, lambda found: any(died in s.source for s in found))
    images = _images(docker_env)
    for box in (by_name, by_id):
        mine = [s for s in sightings if f"container {short_id(box)} " in s.source]
        assert [s.source.split()[2] for s in mine] == ["created", "started", "finished"]
        assert all(s.source.endswith(" (engine event)") for s in mine)
        assert all(since <= s.when <= until for s in mine)
        assert {_resolved(s, images) for s in mine} == {image_id}
        subjects = {s.subject for s in mine}
        if engine.kind == "podman":
            # Podman names the image it resolved, in full, whatever the user typed (its
            # compat commit names a new image under docker.io, not localhost).
            assert subjects == {f"docker.io/{REF}"}
        else:
            # dockerd names it as the user typed it: a name, or the short ID.
            assert subjects == {REF if box == by_name else short_id(image_id)}

    merged = merge_usage(UsageRecord(path=Path("unused")), sightings, images)
    assert merged[image_id].source == f"container {short_id(by_id)} finished (engine event)"


def test_a_tag_names_its_image_and_nothing_before_since_comes_back(
    docker_env: docker.DockerClient,
    engine: HarnessEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading starts EVENTS_OVERLAP before `since`: shortened, so the test need not wait it out.
    overlap = timedelta(seconds=0.5)
    monkeypatch.setattr(usage, "EVENTS_OVERLAP", overlap)
    image_id = _commit(docker_env, REF)
    before = _run(docker_env, REF)
    _logged(datetime.now(timezone.utc) - timedelta(minutes=1), f"container {short_id(before)}")
    time.sleep(overlap.total_seconds())
    since = _now()
    docker_env.api.tag(REF, "dockops-test/usage", "v2")
    until = _now()

    source = "image tagged dockops-test/usage:v2 (engine event)"
    sightings = _sightings(since, until, lambda found: any(s.source == source for s in found))
    assert not [s for s in sightings if short_id(before) in s.source]
    assert all(since - overlap <= s.when <= until for s in sightings)
    images = _images(docker_env)
    tagged = [s for s in sightings if s.source == source]
    # Both engines give the ID (dockerd sha256:..., Podman bare hex) and the new name
    # (Podman's in full, docker.io/dockops-test/usage:v2).
    assert len(tagged) == 2
    assert {_resolved(s, images) for s in tagged} == {image_id}

    # The window's end is where the next run starts: the record carries it.
    path = tmp_path / "usage.json"
    uses = merge_usage(read_record(path), sightings, images)
    write_record(path, uses, [i.id for i in images], until, engine=engine.host)
    record = read_record(path)
    assert record.state == "read" and record.events_until == until
    assert record.uses[image_id].source == "image tagged dockops-test/usage:v2 (engine event)"


def test_events_after_until_do_not_come_back(docker_env: docker.DockerClient) -> None:
    # dockerd ends its stream at until; Podman is asked without one (see Engine.events), and
    # the cut is dockops's.
    image_id = _commit(docker_env, REF)
    since = _now()
    until = _now()
    docker_env.api.tag(image_id, "dockops-test/usage", "late")
    _logged(since, "tagged dockops-test/usage:late")
    assert not [s for s in engine_sightings(connect(), since, until) if "late" in s.source]
