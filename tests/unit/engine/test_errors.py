"""engine/errors.py: what an error status or a lost connection means for a user."""

from __future__ import annotations

import pytest

from dockops.engine.errors import (
    Conflict,
    Missing,
    Refused,
    daemon_error,
    lost,
    refusal_text,
    refused,
    said_once,
    user_named,
)
from dockops.engine.wire import Lost, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, ExitCode, InvalidInput, root_cause


@pytest.mark.parametrize(
    ("status", "kind"), [(404, Missing), (409, Conflict), (400, Refused), (500, Refused)]
)
def test_refused_picks_the_kind_by_status_and_keeps_it(status: int, kind: type) -> None:
    error = refused(status, b'{"message": "it said no"}', "remove busybox")
    assert type(error) is kind and isinstance(error, EngineRefused)
    assert error.status == status
    assert error.message == "remove busybox: it said no"
    assert error.exit_code == ExitCode.REFUSED


def test_refused_without_what_is_the_engines_words_alone() -> None:
    assert refused(409, b'{"message": "in use"}').message == "in use"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"message": "conflict:\\n  image is being used"}', "conflict: image is being used"),
        (b"page not found\n", "page not found"),  # not JSON: the body itself
        (b'{"message": ""}', "HTTP 502"),  # nothing said: the status
        (b"", "HTTP 502"),
        (b'["not", "a", "document"]', "HTTP 502"),
        (b"\xff\xfe broken", "\ufffd\ufffd broken"),
    ],
)
def test_refusal_text_is_one_line_or_the_status(body: bytes, text: str) -> None:
    assert refusal_text(body, 502) == text


@pytest.mark.parametrize(
    ("said", "once"),
    [
        ("no such image: x:v1: No such image: x:v1", "No such image: x:v1"),
        ("a: b: a: b", "a: b"),
        ("No such container: c", "No such container: c"),
        ("a: b: c", "a: b: c"),  # odd parts: nothing doubled
        ("a: b: c: d", "a: b: c: d"),  # even, but not the same twice
        ("  spread\n over\tlines  ", "spread over lines"),
        ("", ""),
    ],
)
def test_said_once_halves_a_doubled_text_and_keeps_the_second_half(said: str, once: str) -> None:
    assert said_once(said) == once


def test_a_doubled_404_text_in_an_answer_is_said_once() -> None:
    body = b'{"message": "no such image: x:v1: No such image: x:v1"}'
    assert refused(404, body, "save x:v1").message == "save x:v1: No such image: x:v1"


def test_user_named_makes_a_404_on_a_typed_name_bad_input() -> None:
    with pytest.raises(InvalidInput) as caught, user_named():
        raise Missing("rmi nope: No such image: nope", 404)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == "rmi nope: No such image: nope"
    # Any other refusal stays what it is.
    with pytest.raises(Conflict), user_named():
        raise Conflict("rmi x: in use", 409)


def test_lost_says_whether_the_engine_was_silent_or_gone() -> None:
    address = "unix:///run/x.sock"
    gone = lost(Lost("connection refused"), address, "save a")
    assert isinstance(gone, EngineUnreachable) and gone.exit_code == ExitCode.ENGINE_UNREACHABLE
    assert (
        gone.message == "save a: lost the Docker engine at unix:///run/x.sock: connection refused"
    )
    silent = lost(StreamBroken("timed out", timed_out=True), address)
    assert silent.message == "the Docker engine at unix:///run/x.sock did not answer in time"


def test_a_framed_body_cut_short_reads_connection_closed_over_either_transport() -> None:
    import http.client

    import urllib3

    cut = http.client.IncompleteRead(b"x" * 10, 5)
    assert root_cause(cut) == "connection closed"  # http.client (engine/unix.py)
    # urllib3's words for the same, under docker-py: "('Connection broken: IncompleteRead(...
    wrapped = urllib3.exceptions.ProtocolError(f"Connection broken: {cut!r}", cut)
    assert root_cause(wrapped) == "connection closed"


def test_engine_text_says_a_doubled_404_once() -> None:
    from dockops.engine.errors import Missing, refused

    doubled = refused(404, b'{"message": "no such image: x:v1: No such image: x:v1"}', "rmi x")
    assert isinstance(doubled, Missing) and doubled.message == "rmi x: No such image: x:v1"
    plain = refused(409, b'{"message": "conflict: unable to delete  abc"}')
    assert plain.message == "conflict: unable to delete abc"


def test_daemon_error_prefers_the_detail_and_says_it_on_one_line() -> None:
    line = {"errorDetail": {"message": "manifest unknown:\n  tag v9"}, "error": "other"}
    assert daemon_error(line) == "manifest unknown: tag v9"
    assert daemon_error({"error": "unauthorized: authentication required"}) == (
        "unauthorized: authentication required"
    )
    assert daemon_error({"errorDetail": {}, "error": ""}) == "unknown error"
    assert daemon_error({"status": "Pushed", "id": "abc"}) is None
