"""The contract: every Engine method answers alike over both transports, on the disposable
engine. The same scenario runs over each (on objects named after the transport); their
answers must have the same shape, their errors the same kind and status, their streams the
same bytes. Then the faults: a stream the engine cuts, one it leaves silent, an engine gone.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from dockops.engine.api import Engine
from dockops.engine.errors import Refused
from dockops.engine.negotiate import NEWEST
from dockops.engine.wire import Lost, StreamBroken
from dockops.errors import EngineUnreachable
from tests.harness.engine import Engine as HarnessEngine
from tests.integration.conftest import ENGINE_KINDS
from tests.integration.engine.conftest import TRANSPORTS, Connect, open_engine
from tests.support.engine_relay import Relay

BOX = "busybox:latest"
NO_NETWORK = {"NetworkMode": "none"}


def shape(value: Any) -> Any:
    """What a JSON answer looks like, not what it says: a document's keys, a list's first."""
    if isinstance(value, dict):
        return {key: type(item).__name__ for key, item in sorted(value.items())}
    if isinstance(value, list):
        return ["list", shape(value[0])] if value else ["list"]
    return type(value).__name__


def failure(work: Callable[[], Any]) -> tuple[str, int]:
    """The kind and status of the refusal `work` raises."""
    with pytest.raises(Refused) as caught:
        work()
    return type(caught.value).__name__, caught.value.status


def alike(engines: dict[str, Engine], scenario: Callable[[Engine, str], Any]) -> Any:
    """Run `scenario(engine, kind)` over both; their results must be equal."""
    results = {kind: scenario(engine, kind) for kind, engine in engines.items()}
    assert results["unix"] == results["docker-py"]
    return results["unix"]


def _negotiated(version: dict[str, Any]) -> str:
    """What the docker CLI would speak: the lower of the engine's newest and dockops's."""
    offered = tuple(int(part) for part in version["ApiVersion"].split("."))
    return str(version["ApiVersion"]) if offered <= NEWEST else ".".join(map(str, NEWEST))


def test_both_negotiate_as_the_docker_cli_does(engines: dict[str, Engine]) -> None:
    def scenario(engine: Engine, kind: str) -> Any:
        version = engine.version()
        assert engine.api_version == _negotiated(version)
        assert engine.answers() is True
        return engine.api_version, shape(version), shape(engine.info()), shape(engine.disk_usage())

    alike(engines, scenario)


@pytest.mark.skipif("podman" not in ENGINE_KINDS, reason="podman is not in DOCKOPS_TEST_ENGINES")
def test_both_negotiate_alike_with_podman(podman_engine: HarnessEngine) -> None:
    relay = Relay(podman_engine.host.removeprefix("unix://"))
    engines = {
        "unix": open_engine("unix", podman_engine.host),
        "docker-py": open_engine("docker-py", relay.host),
    }
    try:

        def scenario(engine: Engine, kind: str) -> Any:
            version = engine.version()
            assert engine.is_podman and engine.api_version == _negotiated(version) == "1.41"
            return engine.api_version, shape(version), shape(engine.images())

        alike(engines, scenario)
    finally:
        for engine in engines.values():
            engine.close()
        relay.close()


def test_images_answer_and_refuse_alike(engines: dict[str, Engine]) -> None:
    box = engines["unix"].image(BOX)["Id"]

    def scenario(engine: Engine, kind: str) -> Any:
        name = f"contract-{kind}/box"
        engine.tag(BOX, name, "1")
        found = engine.image(f"{name}:1")
        assert found["Id"] == box and engine.find_image(f"{name}:1") == found
        listed = engine.images(filters={"reference": [f"{name}:*"]})
        assert [image["RepoTags"] for image in listed] == [[f"{name}:1"]]
        all_images = engine.images(shared_size=True)
        assert box in {image["Id"] for image in all_images}
        history = engine.history(BOX)
        holder = engine.create_container({"Image": BOX, "HostConfig": NO_NETWORK})
        committed = engine.commit(
            holder, repository=name, tag="2", message="m", changes=['CMD ["x"]']
        )
        assert engine.image(f"{name}:2")["Config"]["Cmd"] == ["x"]
        untagged = engine.remove_image(f"{name}:1")
        assert untagged == [{"Untagged": f"{name}:1"}]
        removed = engine.remove_image(committed, force=True)
        errors = [
            failure(lambda: engine.image("contract/none:1")),
            failure(lambda: engine.history("contract/none:1")),
            failure(lambda: engine.tag("contract/none:1", name, "3")),
            failure(lambda: engine.remove_image("contract/none:1")),
            failure(lambda: engine.remove_image(box)),  # its container holds it
            failure(lambda: engine.search("busybox", 1)),  # no index reachable from here
        ]
        engine.remove_container(holder)
        assert engine.find_image("contract/none:1") is None
        return (
            shape(found),
            shape(listed),
            shape(all_images),
            shape(history),
            shape(removed),
            errors,
        )

    *_, errors = alike(engines, scenario)
    assert errors[:5] == [
        ("Missing", 404),
        ("Missing", 404),
        ("Missing", 404),
        ("Missing", 404),
        ("Conflict", 409),
    ]


def test_containers_answer_and_refuse_alike(engines: dict[str, Engine]) -> None:
    def scenario(engine: Engine, kind: str) -> Any:
        name = f"contract-{kind}"
        body = {
            "Image": BOX,
            "Cmd": ["sh", "-c", "echo out; sleep 0.1; echo err >&2"],
            "HostConfig": NO_NETWORK,
        }
        made = engine.create_container(body, name=name)
        engine.start(name)
        assert engine.wait(name)["StatusCode"] == 0
        logs = engine.logs(name)
        engine.rename(name, f"{name}-renamed")
        engine.update_container(f"{name}-renamed", {"CpuShares": 512})
        found = engine.container(f"{name}-renamed")
        assert found["Id"] == made and found["HostConfig"]["CpuShares"] == 512
        assert engine.find_container(f"{name}-renamed") == found
        listed = engine.containers(filters={"name": [f"{name}-renamed"]})
        assert [c["Id"] for c in listed] == [made]
        engine.stop(f"{name}-renamed", timeout=1)  # stopped already: 304, no error
        engine.remove_container(f"{name}-renamed")
        sleeper = engine.create_container(
            {"Image": BOX, "Cmd": ["sleep", "30"], "HostConfig": NO_NETWORK}
        )
        engine.start(sleeper)
        errors = [
            failure(lambda: engine.container(name)),
            failure(lambda: engine.start(name)),
            failure(lambda: engine.remove_container(name)),
            failure(lambda: engine.remove_container(sleeper)),  # running
            failure(lambda: engine.rename(sleeper, "bad name!")),
            failure(lambda: engine.create_container({"Image": "contract/none:1"})),
        ]
        engine.stop(sleeper, timeout=0)
        engine.remove_container(sleeper, force=True, volumes=True)
        assert engine.find_container(name) is None
        return logs, shape(found), shape(listed), errors

    logs, *_, errors = alike(engines, scenario)
    assert logs == b"out\nerr\n"
    assert errors[:4] == [("Missing", 404)] * 3 + [("Conflict", 409)]


def test_networks_and_volumes_answer_and_refuse_alike(engines: dict[str, Engine]) -> None:
    def scenario(engine: Engine, kind: str) -> Any:
        network, volume = f"contract-{kind}-net", f"contract-{kind}-vol"
        made = engine.create_network({"Name": network, "Driver": "bridge", "Internal": True})
        found = engine.network(network)
        assert found["Id"] == made
        assert [n["Id"] for n in engine.networks([network])] == [made]
        assert engine.networks()  # every network, unfiltered
        box = engine.create_container(
            {"Image": BOX, "HostConfig": {**NO_NETWORK, "Binds": [f"{volume}:/data"]}}
        )
        engine.create_volume(f"{volume}-2", labels={"a": "b"})
        volumes = engine.volumes()
        assert {volume, f"{volume}-2"} <= {v["Name"] for v in volumes}
        errors = [
            failure(lambda: engine.connect_network(network, box, aliases=["x"])),  # "none"
            failure(lambda: engine.remove_volume(volume)),  # in use
            failure(lambda: engine.network("contract-none")),
            failure(lambda: engine.remove_network("contract-none")),
            failure(lambda: engine.remove_volume("contract-none")),
            failure(lambda: engine.create_network({"Name": network, "CheckDuplicate": True})),
        ]
        engine.remove_container(box, volumes=True)
        engine.remove_volume(f"{volume}-2")
        engine.remove_network(network)
        labelled = next(v for v in volumes if v["Name"] == f"{volume}-2")
        assert labelled["Labels"] == {"a": "b"}
        return shape(found), shape(labelled), errors

    *_, errors = alike(engines, scenario)
    assert errors[1:5] == [("Conflict", 409)] + [("Missing", 404)] * 3


def _tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_streams_and_uploads_carry_the_same_bytes(
    engines: dict[str, Engine], docker_env: docker.DockerClient
) -> None:
    box = docker_env.containers.create(BOX, name="contract-export", network_mode="none")

    def scenario(engine: Engine, kind: str) -> Any:
        with engine.save([BOX], "save") as body:
            saved = body.read_all()
        with engine.export("contract-export", "export") as body:
            exported = body.read_all()
        name = f"contract-{kind}/imported"
        pieces: list[bytes | memoryview] = [exported[:1000], memoryview(exported)[1000:]]
        imported = engine.import_image(iter(pieces), {"repo": name, "tag": "1"}, "i")
        assert json.loads(imported[-1])["status"].startswith("sha256:")
        assert engine.image(f"{name}:1")["RootFS"]["Type"] == "layers"
        engine.remove_image(f"{name}:1")
        engine.tag(BOX, f"contract-{kind}/loaded", "1")
        with engine.save([f"contract-{kind}/loaded:1"], "save") as body:
            tagged = body.read_all()
        engine.remove_image(f"contract-{kind}/loaded:1")
        loaded = engine.load(iter([tagged]), "load")
        assert [json.loads(line)["stream"] for line in loaded] == [
            f"Loaded image: contract-{kind}/loaded:1\n"
        ]
        engine.remove_image(f"contract-{kind}/loaded:1")
        refused = [
            failure(lambda: engine.save(["contract/none:1"], "save").__enter__()),
            failure(lambda: engine.export("contract-none", "export").__enter__()),
        ]
        # A tar the engine cannot read is said in the answer's lines, after a 200.
        bad = [shape(json.loads(line)) for line in engine.load(iter([b"not a tar"]), "load")]
        return saved, exported, refused, bad

    saved, exported, refused, bad = alike(engines, scenario)
    assert bad == [{"errorDetail": "dict", "error": "str"}]
    assert "manifest.json" in _tar_names(saved) and "bin/sh" in _tar_names(exported)
    assert refused == [("Missing", 404)] * 2
    box.remove()


def test_generic_requests_answer_alike(engines: dict[str, Engine]) -> None:
    def scenario(engine: Engine, kind: str) -> Any:
        ping = engine.call("GET", "/_ping")
        images = engine.json("GET", "/images/json", params={"filters": '{"dangling": ["false"]}'})
        with engine.stream("GET", "/images/json") as body:
            streamed = json.loads(body.read_all())
        return ping, shape(images), shape(streamed)

    assert alike(engines, scenario)[0] == b"OK"


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("marker", [b"/images/get", b"/export"])
def test_a_tar_stream_the_engine_cuts_is_never_taken_for_a_whole_one(
    through_relay: Connect, docker_env: docker.DockerClient, kind: str, marker: bytes
) -> None:
    docker_env.containers.create(BOX, name="contract-cut", network_mode="none")
    engine, relay = through_relay(kind)
    whole, _ = _read_tar(engine, marker)
    relay.break_answer(marker, 300_000, stall=False)
    try:
        got, ends_at_close = _read_tar(engine, marker)
    except EngineUnreachable as exc:  # a framed body: its missing end tells the cut
        assert kind == "docker-py" and exc.message.endswith(": connection closed")
        assert isinstance(exc.__cause__, StreamBroken)
    else:  # an unframed body: only its reader can tell, by the tar's end marker
        assert kind == "unix" and ends_at_close
        assert len(got) < len(whole)
    assert relay.reached.is_set()


def _read_tar(engine: Engine, marker: bytes) -> tuple[bytes, bool]:
    if marker == b"/images/get":
        opened = engine.save([BOX], "save")
    else:
        opened = engine.export("contract-cut", "export")
    with opened as body:
        return body.read_all(), body.ends_at_close


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_progress_stream_the_engine_cuts_is_broken(
    through_relay: Connect, docker_env: docker.DockerClient, kind: str
) -> None:
    chatty = docker_env.containers.run(
        BOX, ["sh", "-c", "while true; do echo line; done"], network_mode="none", detach=True
    )
    engine, relay = through_relay(kind)
    relay.break_answer(b"/logs", 200_000, stall=False)
    params = {"follow": 1, "stdout": 1}
    stream = engine.stream("GET", f"/containers/{chatty.id}/logs", params=params)
    with pytest.raises(EngineUnreachable) as caught, stream as body:
        assert not body.ends_at_close
        body.read_all()
    assert isinstance(caught.value.__cause__, StreamBroken)
    assert caught.value.message.endswith(": connection closed")
    chatty.remove(force=True)


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("limit", [100, 300_000], ids=["before-the-head", "mid-body"])
def test_a_stream_the_engine_leaves_silent_times_out(
    through_relay: Connect, kind: str, limit: int
) -> None:
    engine, relay = through_relay(kind)
    relay.break_answer(b"/images/get", limit, stall=True)
    started = time.monotonic()
    stream = engine.stream("GET", "/images/get", params={"names": [BOX]}, timeout=1.0)
    with pytest.raises(Lost) as caught, stream as body:
        body.read_all()
    assert caught.value.timed_out and time.monotonic() - started < 10
    assert isinstance(caught.value, StreamBroken) == (limit > 1000)
    assert engine.answers() is True  # the engine itself still answers
    relay.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_an_engine_gone_does_not_answer(through_relay: Connect, kind: str) -> None:
    engine, relay = through_relay(kind)
    assert engine.answers() is True
    engine.images()  # a kept-alive connection, then the engine goes
    relay.close()
    assert engine.answers() is False
    with pytest.raises(EngineUnreachable, match=r"^list: lost the Docker engine at "):
        engine.json("GET", "/images/json", what="list")
