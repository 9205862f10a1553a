"""The engine stopped for real in the middle of save, load and prune-dangling: a clear error
(exit 3), no partial output file, and a rerun that finishes the job once the engine is back.

A spare engine of the harness's kind (its own data-root next to the session engine's) is
stopped and started here, so the session engine the other tests use is never touched. A
relay on its socket holds the operation at a chosen byte or request while the engine stops,
so "mid-operation" is where the test says, every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.harness.engine import (
    Engine,
    HarnessUnavailable,
    default_root,
    engine_from_env,
    ping,
    start_engine,
    stop_engine,
)
from tests.support.engine_relay import PausingRelay
from tests.support.imagefactory import FakeImage, load_images, write_save_tar
from tests.support.tools import error_line

MIB = 1024 * 1024


@dataclass
class Spare:
    root: Path
    engine: Engine

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.engine.host, version="auto", timeout=120)

    def up(self) -> None:
        if not ping(Path(self.engine.host.removeprefix("unix://"))):
            self.engine = start_engine(self.root)

    def down(self) -> None:
        stop_engine(self.engine)


@pytest.fixture(scope="module")
def spare() -> Iterator[Spare]:
    if engine_from_env() is not None:
        pytest.skip("DOCKOPS_TEST_DOCKER_HOST names an engine these tests may not stop")
    root = default_root().with_name(default_root().name + "-spare")
    try:
        found = Spare(root, start_engine(root))
    except HarnessUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a spare engine: {exc}", pytrace=False)
        pytest.skip(f"no spare engine here: {exc}")
    try:
        yield found
    finally:
        found.down()


@pytest.fixture
def fresh(spare: Spare) -> Iterator[Spare]:
    """The spare engine, running and holding no images, before and after the test."""
    _wipe(spare)
    yield spare
    _wipe(spare)


def _wipe(spare: Spare) -> None:
    spare.up()
    client = spare.client()
    for image in client.api.images(all=True):
        client.api.remove_image(image["Id"], force=True)
    client.close()


def _stop_engine_midway(
    fresh: Spare, relay: PausingRelay, args: list[str], what: str, *, held: Path | None = None
) -> tuple[int, str, str]:
    """Run dockops ARGS through `relay`; once the relay holds the stream, stop the engine,
    let the stream go on, and return dockops's exit code, stdout and stderr. With `held`, a
    temp file must be in that folder while the stream is held."""
    process = _dockops(relay.host, *args)
    try:
        assert relay.reached.wait(60), f"the {what} never got going"
        if held is not None:
            assert os.listdir(held), "no temp file while the stream is held"
        fresh.down()
        relay.resume()
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
        relay.close()
    return process.returncode, out, err


def _socket(spare: Spare) -> str:
    return spare.engine.host.removeprefix("unix://")


def _dockops(host: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dockops", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DOCKER_HOST": host},
    )


@pytest.mark.parametrize("name", ["big.tar", "big.tar.gz"])
def test_engine_stopped_mid_save_is_exit_3_and_leaves_no_file(
    fresh: Spare, tmp_path: Path, name: str
) -> None:
    client = fresh.client()
    load_images(client, [FakeImage(seed="spare-save", layer_bytes=24 * MIB, tags=("big:1",))])
    client.close()
    relay = PausingRelay(
        tmp_path / "relay.sock", _socket(fresh), marker=b"/images/get", direction="answer",
        limit=8 * MIB,
    )  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    result = _stop_engine_midway(
        fresh, relay, ["save", "big:1", "-o", str(out / name)], "save", held=out
    )
    line = error_line(result, 3, progress=True)
    assert line.startswith("dockops: error: save big:1: the engine's stream broke after "), line
    assert line.endswith(f"the Docker engine at {relay.host} no longer answers)"), line
    assert os.listdir(out) == []


def test_engine_stopped_mid_load_is_exit_3_and_loads_nothing(fresh: Spare, tmp_path: Path) -> None:
    tar = tmp_path / "in.tar"
    with tar.open("wb") as handle:
        write_save_tar(handle, [FakeImage(seed="spare-load", layer_bytes=24 * MIB, tags=("l:1",))])
    size = tar.stat().st_size
    relay = PausingRelay(
        tmp_path / "relay.sock", _socket(fresh), marker=b"/images/load", direction="request",
        limit=8 * MIB,
    )  # fmt: skip
    result = _stop_engine_midway(fresh, relay, ["load", "-i", str(tar)], "load")
    line = error_line(result, 3, progress=True)
    assert line.startswith(f"dockops: error: load {tar}: lost the Docker engine at "), line
    assert tar.stat().st_size == size
    fresh.up()
    client = fresh.client()
    assert client.images.list(name="l") == []  # nothing half-loaded under that name
    client.close()


def test_engine_stopped_mid_prune_is_exit_3_and_a_rerun_finishes(
    fresh: Spare, tmp_path: Path
) -> None:
    client = fresh.client()
    ids = load_images(client, [FakeImage(seed=f"spare-prune-{n}") for n in range(60)])
    client.close()
    relay = PausingRelay(
        tmp_path / "relay.sock", _socket(fresh), marker=b"DELETE /", direction="count", count=10
    )
    lock, metrics = tmp_path / "prune.lock", tmp_path / "textfile" / "dockops.prom"
    args = ["prune-dangling", "--lock-file", str(lock), "--metrics-file", str(metrics)]
    line = error_line(_stop_engine_midway(fresh, relay, args, "prune"), 3, progress=True)
    assert line.startswith(f"dockops: error: prune: lost the Docker engine at {relay.host}: "), line
    assert line.endswith(" of 60 planned images were removed before that, run again to finish")
    done = int(line.split(" of 60 planned")[0].rsplit(" ", 1)[1])
    assert 1 <= done < 60
    assert not metrics.exists()  # no metrics for a run that did not finish (no partial file)

    fresh.up()
    client = fresh.client()
    left = {i["Id"] for i in client.api.images(all=True)} & set(ids)
    assert len(left) <= 60 - done  # at least what it said went is gone
    rerun = _dockops(fresh.engine.host, *args, "--json")  # the lock was released
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert {r["id"] for r in json.loads(out)["removed"]} == left
    assert {i["Id"] for i in client.api.images(all=True)} & set(ids) == set()
    assert metrics.exists()
    client.close()
