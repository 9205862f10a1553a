"""The daemon's pull/push stream: lines cut anywhere, error lines, the auth header, stalls."""

from __future__ import annotations

import base64
import json

import pytest

from dockops.engine.daemon_lines import (
    Stalled,
    daemon_lines,
    json_lines,
    registry_auth,
)
from dockops.engine.errors import Refused
from dockops.engine.wire import Lost, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, ExitCode, RegistryUnreachable
from tests.support.fake_engine import Pieces, fake_engine, transport


def test_json_lines_are_whole_however_the_stream_is_cut() -> None:
    text = b'{"status": "a"}\r\n{"status": "b", "id": "x"}\n\n{"aux": {"Tag": "v1"}}'
    expected = [{"status": "a"}, {"status": "b", "id": "x"}, {"aux": {"Tag": "v1"}}]
    for size in (1, 2, 5, 17, len(text)):
        pieces = [memoryview(text[i : i + size]) for i in range(0, len(text), size)]
        assert list(json_lines(pieces)) == expected, size


def test_a_line_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(ValueError, match="b'<html>'"):
        list(json_lines([b'{"status": "a"}\n<html>\n']))
    with pytest.raises(ValueError):
        list(json_lines([b"[1, 2]\n"]))


def test_registry_auth_is_base64url_json_as_the_docker_cli_sends_it() -> None:
    auth = {"username": "u", "password": "p?>~", "serveraddress": "r:5000"}
    header = registry_auth(auth)
    assert "+" not in header and "/" not in header
    assert json.loads(base64.urlsafe_b64decode(header)) == auth


def _lines(*docs: object, size: int = 3) -> Pieces:
    """The docs as the daemon writes them, cut every `size` bytes (lines span pieces)."""
    text = b"".join(json.dumps(doc).encode() + b"\r\n" for doc in docs)
    return Pieces(text[i : i + size] for i in range(0, len(text), size))


def test_a_push_is_posted_with_the_auth_header_and_the_stall_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "7")
    docs = [{"status": "Pushing", "id": "abc"}, {"aux": {"Tag": "v1", "Size": 528}}]
    engine = fake_engine({"POST /images/r:5000/team/app/push": (200, _lines(*docs))})
    auth = {"username": "u", "password": "p", "serveraddress": "r:5000"}
    lines = daemon_lines(
        engine,
        "/images/{0}/push",
        {"tag": "v1"},
        "r:5000/team/app",
        "r:5000",
        auth=auth,
        json_body=True,
    )
    assert list(lines) == docs
    (request,) = transport(engine).requests
    assert request.params == {"tag": "v1"} and request.json_body == {} and request.timeout == 7
    assert json.loads(base64.urlsafe_b64decode(request.headers["X-Registry-Auth"])) == auth


def test_a_pull_without_credentials_sends_no_auth_header() -> None:
    engine = fake_engine({"POST /images/create": (200, _lines({"status": "Pulling fs layer"}))})
    list(daemon_lines(engine, "/images/create", {"fromImage": "bb"}, "bb", "docker.io"))
    (request,) = transport(engine).requests
    assert request.headers == {} and request.json_body is None


@pytest.mark.parametrize("answering", [True, False])
def test_silence_is_a_stall_and_the_ping_says_whose(answering: bool) -> None:
    silent = Lost("read timed out", timed_out=True)
    engine = fake_engine(
        {
            "POST /images/create": (
                200,
                Pieces([b'{"status": "Pulling from bb", "id": "v1"}\n', silent]),
            )
        },
        answering=answering,
    )
    lines = daemon_lines(engine, "/images/create", {}, "r:5000/bb", "r:5000")
    assert next(lines) == {"status": "Pulling from bb", "id": "v1"}
    with pytest.raises(Stalled) as info:
        next(lines)
    error = info.value.error("pull r:5000/bb")
    if answering:
        assert isinstance(error, RegistryUnreachable)
        assert error.message.startswith("pull r:5000/bb: registry r:5000 stalled: no progress")
    else:
        assert isinstance(error, EngineUnreachable)
        assert error.message.startswith(
            "pull r:5000/bb: the Docker engine at unix:///fake/docker.sock stopped answering"
        )


def test_a_silent_engine_before_the_answer_is_a_stall_too() -> None:
    engine = fake_engine({"POST /images/create": (200, Lost("timed out", timed_out=True))})
    with pytest.raises(Stalled):
        list(daemon_lines(engine, "/images/create", {}, "bb", "docker.io"))


def test_a_cut_stream_is_a_lost_engine_not_a_stall() -> None:
    engine = fake_engine({"POST /images/create": (200, Pieces([StreamBroken("connection reset")]))})
    with pytest.raises(EngineUnreachable, match=r"lost the Docker engine at .*: connection reset"):
        list(daemon_lines(engine, "/images/create", {}, "bb", "docker.io"))


def test_an_engine_refusal_keeps_its_status_and_text() -> None:
    engine = fake_engine({"POST /images/create": (500, {"message": "Get http://r/v2/: EOF"})})
    with pytest.raises(Refused) as info:
        list(daemon_lines(engine, "/images/create", {}, "bb", "docker.io"))
    assert info.value.status == 500 and info.value.message == "Get http://r/v2/: EOF"


def test_an_answer_that_is_not_json_lines_is_a_refusal() -> None:
    engine = fake_engine({"POST /images/create": (200, Pieces([b"<html>oops</html>\n"]))})
    with pytest.raises(EngineRefused, match="not JSON lines: b'<html>oops</html>'"):
        list(daemon_lines(engine, "/images/create", {}, "bb", "docker.io"))


def test_a_stall_is_the_registry_s_unless_the_engine_is_silent_too() -> None:
    registry = Stalled("127.0.0.1:5000", 3.0, engine_answers=True).error("pull x")
    assert isinstance(registry, RegistryUnreachable)
    assert registry.exit_code == ExitCode.REGISTRY_UNREACHABLE
    assert registry.message == (
        "pull x: registry 127.0.0.1:5000 stalled: no progress for 3 s (DOCKOPS_STALL_TIMEOUT); "
        "abandoned, run it again when the registry answers"
    )
    engine = Stalled("127.0.0.1:5000", 120.0, engine_answers=False).error("push x")
    assert isinstance(engine, EngineUnreachable)
    assert "stopped answering (120 s without a word)" in engine.message
