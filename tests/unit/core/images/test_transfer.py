"""pull and push over a fake engine: the real Engine and daemon_lines run, the daemon is canned;
and the stream reader with its retry loop, fed canned lines."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockops import retry
from dockops.core.images import transfer
from dockops.engine.wire import Lost
from dockops.errors import (
    EngineRefused,
    EngineUnreachable,
    ExitCode,
    InvalidInput,
    RegistryUnreachable,
)
from dockops.progress import ProgressEvent
from dockops.retry import RetryPolicy
from tests.support.fake_engine import FakeTransport, Pieces, fake_engine, transport

FAST = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.002)
DOCKER = {"Version": "20.10.24", "Components": [{"Name": "Engine", "Version": "20.10.24"}]}
PODMAN = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}


def _lines(*docs: object) -> Pieces:
    return Pieces(json.dumps(doc).encode() + b"\r\n" for doc in docs)


@pytest.fixture(autouse=True)
def docker_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake engine is a Docker engine (its /version, as connect() keeps it)."""
    monkeypatch.setattr(FakeTransport, "server", DOCKER)


@pytest.fixture(autouse=True)
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr(retry, "TRANSFER", FAST)
    return tmp_path / "config.json"


PULLED = _lines(
    {"status": "Pulling from r:5000/bb", "id": "v1"},
    {"status": "Downloading", "id": "abc", "progressDetail": {"current": 1, "total": 2}},
    {"status": "Digest: sha256:d1"},
    {"status": "Status: Downloaded newer image for r:5000/bb:v1"},
)


def test_pull_reads_the_stream_and_asks_the_local_id() -> None:
    engine = fake_engine(
        {
            "POST /images/create": (200, PULLED),
            "GET /images/r:5000/bb:v1/json": (200, {"Id": "sha256:1d"}),
        }
    )
    result = transfer.pull_image(engine, "r:5000/bb:v1")
    assert result.tags == (transfer.TagTransfer("v1", "sha256:d1", id="sha256:1d"),)
    assert result.layers == ("abc",) and result.attempts == 1
    assert result.status == "Downloaded newer image for r:5000/bb:v1"
    pull = transport(engine).requests[0]
    assert pull.params == {"fromImage": "r:5000/bb", "tag": "v1"}
    assert "X-Registry-Auth" not in pull.headers


def test_pull_sends_the_stored_login_of_the_registry(no_login: Path) -> None:
    secret = base64.b64encode(b"alice:s3cret").decode()
    no_login.write_text(json.dumps({"auths": {"r:5000": {"auth": secret}}}))
    engine = fake_engine(
        {"POST /images/create": (200, PULLED), "GET /images/r:5000/bb:v1/json": (200, {"Id": "x"})}
    )
    transfer.pull_image(engine, "r:5000/bb:v1")
    header = transport(engine).requests[0].headers["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "username": "alice",
        "password": "s3cret",
        "serveraddress": "r:5000",
    }


def test_an_engine_500_for_a_registry_fault_is_retried_then_reported() -> None:
    fault = (500, {"message": "received unexpected HTTP status: 503 Service Unavailable"})
    engine = fake_engine({"POST /images/create": fault})
    with pytest.raises(RegistryUnreachable) as info:
        transfer.pull_image(engine, "r:5000/bb:v1")
    assert info.value.message == (
        "pull r:5000/bb:v1: received unexpected HTTP status: 503 Service Unavailable "
        "(gave up after 3 attempts)"
    )
    assert transport(engine).paths() == ["POST /images/create"] * 3


def test_a_stall_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "2")
    engine = fake_engine(
        {"POST /images/create": (200, Pieces([Lost("timed out", timed_out=True)]))}
    )
    with pytest.raises(RegistryUnreachable, match=r"^pull r:5000/bb:v1: registry r:5000 stalled"):
        transfer.pull_image(engine, "r:5000/bb:v1")
    assert len(transport(engine).requests) == 1


def test_a_lost_engine_says_what_was_being_done() -> None:
    engine = fake_engine({"POST /images/create": (200, Lost("connection refused"))})
    with pytest.raises(EngineUnreachable) as info:
        transfer.pull_image(engine, "bb")
    assert info.value.message == (
        "pull bb: lost the Docker engine at unix:///fake/docker.sock: connection refused"
    )


def test_push_of_an_unknown_image_is_bad_input_before_any_push() -> None:
    engine = fake_engine({"GET /images/r:5000/bb:v1/json": (404, {"message": "No such image"})})
    with pytest.raises(InvalidInput, match=r"^push r:5000/bb:v1: No such image$"):
        transfer.push_image(engine, "r:5000/bb:v1")
    engine = fake_engine({"GET /images/json": (200, [])})
    with pytest.raises(InvalidInput, match="no local image of repository r:5000/bb"):
        transfer.push_image(engine, "r:5000/bb", all_tags=True)
    assert transport(engine).requests[0].params == {
        "all": 0,
        "filters": json.dumps({"reference": ["r:5000/bb"]}),
    }


def test_push_collects_each_tag_and_fails_on_an_error_line() -> None:
    pushed = _lines(
        {"status": "The push refers to repository [r:5000/bb]"},
        {"status": "Pushed", "id": "abc", "progressDetail": {}},
        {"aux": {"Tag": "v1", "Digest": "sha256:d1", "Size": 528}},
    )
    routes = {
        "GET /images/r:5000/bb:v1/json": (200, {"Id": "x"}),
        "POST /images/r:5000/bb/push": (200, pushed),
    }
    result = transfer.push_image(fake_engine(routes), "r:5000/bb:v1")
    assert result.tags == (transfer.TagTransfer("v1", "sha256:d1", size=528),)
    routes["POST /images/r:5000/bb/push"] = (
        200,
        _lines({"errorDetail": {"message": "manifest invalid: x"}, "error": "manifest invalid"}),
    )
    with pytest.raises(EngineRefused, match=r"^push r:5000/bb:v1: manifest invalid: x$"):
        transfer.push_image(fake_engine(routes), "r:5000/bb:v1")


# --- the stream reader and its retry loop, fed canned lines -----------------------------------


def _stream(*lines: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from lines


def _run(starts: list[Any]) -> tuple[Any, int, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    calls = iter(starts)

    def start() -> Iterator[dict[str, Any]]:
        return next(calls)()  # type: ignore[no-any-return]

    seen, attempts = transfer._run("push x", "x", start, events.append, FAST)
    return seen, attempts, events


def test_stream_reader_collects_tags_layers_and_progress() -> None:
    seen, attempts, events = _run(
        [
            lambda: _stream(
                {"status": "The push refers to repository [x]"},
                {"status": "Pushing", "id": "abc", "progressDetail": {"current": 5, "total": 9}},
                {"status": "Pushed", "id": "abc", "progressDetail": {}},
                {"aux": {"Tag": "v1", "Digest": "sha256:d1", "Size": 528}},
            )
        ]
    )
    assert attempts == 1
    assert seen.tags == {"v1": transfer.TagTransfer("v1", "sha256:d1", size=528)}
    assert list(seen.layers) == ["abc"]
    assert ProgressEvent("abc", "Pushing", 5, 9) in events


def test_pull_stream_maps_digests_to_tags() -> None:
    seen, _, _ = _run(
        [
            lambda: _stream(
                {"status": "Pulling from bb", "id": "v1"},
                {"status": "Digest: sha256:aa"},
                {"status": "Pulling from bb", "id": "v2"},
                {"status": "Digest: sha256:bb"},
                {"status": "Status: Downloaded newer image for bb"},
            )
        ]
    )
    assert [(t.tag, t.digest) for t in seen.tags.values()] == [
        ("v1", "sha256:aa"),
        ("v2", "sha256:bb"),
    ]
    assert seen.status == "Downloaded newer image for bb"


def test_error_line_is_a_failure_with_the_daemons_text() -> None:
    line = {"errorDetail": {"message": "An image does not exist locally"}, "error": "x"}
    with pytest.raises(EngineRefused, match=r"^push x: An image does not exist locally$"):
        _run([lambda: _stream({"status": "Preparing", "id": "a"}, line)])


def test_transient_error_is_retried_then_succeeds() -> None:
    fault = {"error": "received unexpected HTTP status: 503 Service Unavailable"}
    seen, attempts, events = _run(
        [
            lambda: _stream(fault),
            lambda: _stream({"aux": {"Tag": "v1", "Digest": "sha256:d", "Size": 1}}),
        ]
    )
    assert attempts == 2 and "v1" in seen.tags
    assert any(e.status.startswith("attempt 1/3 failed (") for e in events)


def test_retries_are_bounded_and_end_as_registry_unreachable() -> None:
    fault = {"error": "received unexpected HTTP status: 503 Service Unavailable"}
    calls: list[int] = []

    def start() -> Iterator[dict[str, Any]]:
        calls.append(1)
        return _stream(fault)

    with pytest.raises(RegistryUnreachable, match=r"\(gave up after 3 attempts\)$"):
        _run([start] * 10)
    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def start() -> Iterator[dict[str, Any]]:
        calls.append(1)
        return _stream({"error": "unauthorized: authentication required"})

    with pytest.raises(RegistryUnreachable) as info:
        _run([start] * 3)
    assert len(calls) == 1 and info.value.exit_code == ExitCode.REGISTRY_UNREACHABLE


# --- podman's Docker API (4.3): tlsVerify, the libpod pull, its push stream ----------------------

LOOPBACK = "127.0.0.1:5000"


def _podman(routes: dict[str, Any]) -> Any:
    engine = fake_engine(routes)
    transport(engine).server = PODMAN
    return engine


def test_podman_pulls_through_libpod_with_tls_verification_off_for_loopback() -> None:
    """Its compat pull takes no tlsVerify (4.3): the libpod endpoint does; the digest is the one
    podman recorded, the layers its "Copying blob" lines, and there is no final status."""
    digest = "sha256:" + "d" * 64
    engine = _podman(
        {
            "POST /libpod/images/pull": (
                200,
                _lines(
                    {"stream": f"Trying to pull {LOOPBACK}/bb:v1...\n"},
                    {"stream": "Copying blob sha256:" + "a" * 64 + "\n"},
                    {"stream": "Copying config sha256:" + "c" * 64 + "\n"},
                    {"images": ["c" * 64], "id": "c" * 64},
                ),
            ),
            f"GET /images/{LOOPBACK}/bb:v1/json": (
                200,
                {"Id": "sha256:" + "c" * 64, "RepoDigests": [f"{LOOPBACK}/bb@{digest}"]},
            ),
        }
    )
    events: list[ProgressEvent] = []
    result = transfer.pull_image(engine, f"{LOOPBACK}/bb:v1", on_progress=events.append)
    assert result.tags == (transfer.TagTransfer("v1", digest, id="sha256:" + "c" * 64),)
    assert result.layers == ("a" * 12,) and result.status is None
    assert ProgressEvent("a" * 12, "Copying blob") in events
    [pull] = [r for r in transport(engine).requests if r.path == "/libpod/images/pull"]
    assert pull.params == {
        "reference": f"{LOOPBACK}/bb:v1",
        "policy": "always",
        "tlsVerify": "false",
    }


def test_podman_keeps_tls_verification_for_other_registries_and_sends_the_login(
    no_login: Path,
) -> None:
    secret = base64.b64encode(b"alice:s3cret").decode()
    no_login.write_text(json.dumps({"auths": {"r.example:5000": {"auth": secret}}}))
    engine = _podman(
        {
            "POST /libpod/images/pull": (200, _lines({"images": ["1d"], "id": "1d"})),
            "GET /images/r.example:5000/bb:v1/json": (200, {"Id": "sha256:1d"}),
        }
    )
    result = transfer.pull_image(engine, "r.example:5000/bb:v1")
    assert result.tags == (transfer.TagTransfer("v1", None, id="sha256:1d"),)
    [pull] = [r for r in transport(engine).requests if r.path == "/libpod/images/pull"]
    assert pull.params == {"reference": "r.example:5000/bb:v1", "policy": "always"}
    assert json.loads(base64.urlsafe_b64decode(pull.headers["X-Registry-Auth"])) == {
        "username": "alice",
        "password": "s3cret",
        "serveraddress": "r.example:5000",
    }


def test_podman_pulls_a_short_name_by_its_canonical_name_and_a_digest_as_is() -> None:
    digest = "sha256:" + "e" * 64
    engine = _podman(
        {
            "POST /libpod/images/pull": (200, _lines({"images": ["1d"], "id": "1d"})),
            f"GET /images/busybox@{digest}/json": (200, {"Id": "sha256:1d"}),
        }
    )
    result = transfer.pull_image(engine, f"busybox@{digest}")
    assert result.tags == (transfer.TagTransfer(digest, digest, id="sha256:1d"),)
    [pull] = [r for r in transport(engine).requests if r.path == "/libpod/images/pull"]
    assert pull.params == {"reference": f"docker.io/library/busybox@{digest}", "policy": "always"}


def test_podman_pulls_every_tag_one_by_one_from_a_registry_it_must_not_verify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4.3's allTags lists the tags with TLS verification on whatever tlsVerify says: dockops
    lists them itself and pulls each."""
    from dockops.core.images import podman_transfer as podman

    monkeypatch.setattr(podman, "_registry_tags", lambda registry, repository: ["a", "b"])
    engine = _podman(
        {
            "POST /libpod/images/pull": (200, _lines({"images": ["1d"], "id": "1d"})),
            f"GET /images/{LOOPBACK}/bb:a/json": (200, {"Id": "sha256:1d"}),
            f"GET /images/{LOOPBACK}/bb:b/json": (200, {"Id": "sha256:1d"}),
        }
    )
    result = transfer.pull_image(engine, f"{LOOPBACK}/bb", all_tags=True)
    assert [t.tag for t in result.tags] == ["a", "b"]
    pulls = [r.params for r in transport(engine).requests if r.path == "/libpod/images/pull"]
    assert [p["reference"] for p in pulls] == [f"{LOOPBACK}/bb:a", f"{LOOPBACK}/bb:b"]
    assert all(p["tlsVerify"] == "false" for p in pulls)


def test_podman_pulls_every_tag_of_a_verified_registry_with_all_tags() -> None:
    engine = _podman(
        {
            "POST /libpod/images/pull": (200, _lines({"images": ["1d", "2e"], "id": "2e"})),
            "GET /images/json": (
                200,
                [
                    {"Id": "sha256:1d", "RepoTags": ["r.example/bb:a", "other:a"]},
                    {"Id": "sha256:2e", "RepoTags": ["r.example/bb:b"], "RepoDigests": None},
                    {"Id": "sha256:3f", "RepoTags": ["r.example/bb:old"]},
                ],
            ),
        }
    )
    result = transfer.pull_image(engine, "r.example/bb", all_tags=True)
    assert [(t.tag, t.id) for t in result.tags] == [("a", "sha256:1d"), ("b", "sha256:2e")]
    [pull] = [r for r in transport(engine).requests if r.path == "/libpod/images/pull"]
    assert pull.params == {"reference": "r.example/bb", "allTags": "true", "policy": "always"}


PODMAN_PUSHED = _lines(
    {"status": f"The push refers to repository [{LOOPBACK}/bb:v1]"},
    {"status": "v1: digest: sha256:d1 size: 343"},
)


def test_podman_push_says_tls_verify_false_and_its_digest_line_is_the_tag() -> None:
    engine = _podman(
        {
            f"GET /images/{LOOPBACK}/bb:v1/json": (200, {"Id": "x"}),
            f"POST /images/{LOOPBACK}/bb/push": (200, PODMAN_PUSHED),
        }
    )
    result = transfer.push_image(engine, f"{LOOPBACK}/bb:v1")
    # Its size is the local manifest's, not the pushed one's: none is said.
    assert result.tags == (transfer.TagTransfer("v1", "sha256:d1", size=None),)
    assert result.layers == ()  # podman names none
    [push] = [r for r in transport(engine).requests if r.path.endswith("/push")]
    assert push.params == {"tag": "v1", "tlsVerify": "false"}


def test_docker_is_never_sent_tls_verify() -> None:
    engine = fake_engine(
        {
            f"GET /images/{LOOPBACK}/bb:v1/json": (200, {"Id": "x"}),
            f"POST /images/{LOOPBACK}/bb/push": (200, PODMAN_PUSHED),
            "POST /images/create": (200, PULLED),
            "GET /images/r:5000/bb:v1/json": (200, {"Id": "sha256:1d"}),
        }
    )
    transfer.push_image(engine, f"{LOOPBACK}/bb:v1")
    transfer.pull_image(engine, "r:5000/bb:v1")
    streams = [r for r in transport(engine).requests if r.method == "POST"]
    assert [r.params for r in streams] == [
        {"tag": "v1"},
        {"fromImage": "r:5000/bb", "tag": "v1"},
    ]


def test_podman_pushes_every_local_tag_of_a_repository_one_by_one() -> None:
    """Its compat push of a repository without a tag looks for REPO:latest; docker pushes
    every local tag in one stream, dockops asks podman for each in one stream of its own."""
    engine = _podman(
        {
            "GET /images/json": (
                200,
                [
                    {"Id": "1", "RepoTags": [f"{LOOPBACK}/bb:b", f"{LOOPBACK}/other:z"]},
                    {"Id": "2", "RepoTags": [f"{LOOPBACK}/bb:a"]},
                ],
            ),
            f"POST /images/{LOOPBACK}/bb/push": [
                (200, _lines({"status": "a: digest: sha256:aa size: 1"})),
                (200, _lines({"status": "b: digest: sha256:bb size: 2"})),
            ],
        }
    )
    result = transfer.push_image(engine, f"{LOOPBACK}/bb", all_tags=True)
    assert [(t.tag, t.digest) for t in result.tags] == [("a", "sha256:aa"), ("b", "sha256:bb")]
    pushes = [r.params for r in transport(engine).requests if r.path.endswith("/push")]
    assert pushes == [{"tag": "a", "tlsVerify": "false"}, {"tag": "b", "tlsVerify": "false"}]


def test_podman_pull_asks_the_registry_which_of_several_recorded_digests_it_pulled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """podman records every digest an image was seen with under each of its names (a local
    build's, earlier pulls'): the registry's digest for the tag says which one this pull was."""
    from dockops.core.images import podman_transfer as podman

    local, pulled = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    asked: list[tuple[str, str, str]] = []

    def registry_digest(registry: str, repository: str, tag: str) -> str:
        asked.append((registry, repository, tag))
        return pulled

    monkeypatch.setattr(podman, "_registry_digest", registry_digest)
    image = {
        "Id": "sha256:1d",
        "RepoDigests": [f"{LOOPBACK}/bb@{local}", f"{LOOPBACK}/bb@{pulled}", f"x/y@{local}"],
    }
    engine = _podman(
        {
            "POST /libpod/images/pull": (200, _lines({"images": ["1d"], "id": "1d"})),
            f"GET /images/{LOOPBACK}/bb:v1/json": (200, image),
        }
    )
    assert transfer.pull_image(engine, f"{LOOPBACK}/bb:v1").tags[0].digest == pulled
    assert asked == [(LOOPBACK, "bb", "v1")]
    monkeypatch.setattr(podman, "_registry_digest", lambda *args: None)  # it went away
    assert transfer.pull_image(engine, f"{LOOPBACK}/bb:v1").tags[0].digest is None


def test_podman_is_told_tls_verify_false_for_a_registry_the_user_listed_as_insecure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKOPS_INSECURE_REGISTRIES", "lan.example:5000")
    engine = _podman(
        {
            "GET /images/lan.example:5000/bb:v1/json": (200, {"Id": "x"}),
            "POST /images/lan.example:5000/bb/push": (200, PODMAN_PUSHED),
            "POST /libpod/images/pull": (200, _lines({"images": ["x"], "id": "x"})),
        }
    )
    transfer.push_image(engine, "lan.example:5000/bb:v1")
    transfer.pull_image(engine, "lan.example:5000/bb:v1")
    streams = [r.params for r in transport(engine).requests if r.method == "POST"]
    assert [p.get("tlsVerify") for p in streams] == ["false", "false"]
