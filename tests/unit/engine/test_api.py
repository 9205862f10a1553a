"""engine/api.py over a scripted transport: error statuses and lost connections mapped once,
the paths and parameters it sends, and the log demultiplexing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from dockops.engine.api import Engine, _demultiplex
from dockops.engine.errors import Conflict, Missing, Refused
from dockops.engine.wire import Answer, Body, Lost, Params, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable


class Scripted:
    """A Transport that answers from a list (an Answer, or a Lost to raise) and records what
    it was asked."""

    address = "unix:///scripted.sock"
    api_version = "1.41"
    server = None
    podman = None

    def __init__(self, *answers: Answer | Lost) -> None:
        self.script = list(answers)
        self.asked: list[tuple[str, str, Params | None, Any]] = []

    def _next(self) -> Answer:
        answer = self.script.pop(0)
        if isinstance(answer, Lost):
            raise answer
        return answer

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        self.asked.append((method, path, params, json_body))
        return self._next()

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[Body]:
        self.asked.append((method, path, params, json_body))
        answer = self._next()
        yield Body(answer.status, iter([answer.body[:3], answer.body[3:]]), ends_at_close=False)

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], content_type: str
    ) -> Answer:
        self.asked.append(("POST", path, params, b"".join(bytes(p) for p in pieces)))
        return self._next()

    def answers(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_logs_of_a_container_without_a_tty_are_its_frames_payload_in_order() -> None:
    raw = _frame(1, b"out one\n") + _frame(2, b"err\n") + _frame(1, b"") + _frame(1, b"out two")
    assert _demultiplex(raw) == b"out one\nerr\nout two"


@pytest.mark.parametrize("raw", [b"", b"short", b"plain tty output\n", b"\x01\x00\x00\x01xxxx"])
def test_logs_of_a_tty_container_pass_as_they_are(raw: bytes) -> None:
    assert _demultiplex(raw) == raw


def test_a_frame_cut_short_keeps_what_arrived() -> None:
    raw = _frame(1, b"whole\n") + _frame(2, b"cut short")[:-4]
    assert _demultiplex(raw) == b"whole\ncut s"


def test_logs_asks_for_both_streams_and_demultiplexes() -> None:
    transport = Scripted(Answer(200, _frame(1, b"hi\n") + _frame(2, b"oops\n")))
    assert Engine(transport).logs("web") == b"hi\noops\n"
    assert transport.asked == [("GET", "/containers/web/logs", {"stdout": 1, "stderr": 1}, None)]


def test_error_statuses_become_refusals_after_what() -> None:
    engine = Engine(
        Scripted(
            Answer(404, b'{"message": "No such image: a:1"}'),
            Answer(409, b'{"message": "image is being used"}'),
            Answer(500, b"boom"),
        )
    )
    with pytest.raises(Missing, match=r"^inspect a:1: No such image: a:1$"):
        engine.image("a:1", what="inspect a:1")
    with pytest.raises(Conflict, match=r"^remove a: image is being used$") as conflict:
        engine.remove_image("a", what="remove a")
    assert conflict.value.status == 409
    with pytest.raises(Refused, match=r"^boom$") as other:
        engine.version()
    assert other.value.status == 500


def test_find_image_and_find_container_are_none_when_missing_only() -> None:
    engine = Engine(
        Scripted(
            Answer(404, b'{"message": "No such image: x"}'),
            Answer(200, b'{"Id": "sha256:a"}'),
            Answer(404, b'{"message": "No such container: c"}'),
            Answer(500, b'{"message": "broken"}'),
        )
    )
    assert engine.find_image("x") is None
    assert engine.find_image("busybox") == {"Id": "sha256:a"}
    assert engine.find_container("c") is None
    with pytest.raises(Refused, match="broken"):
        engine.find_container("d")


def test_a_lost_connection_is_unreachable_in_the_users_words() -> None:
    engine = Engine(Scripted(Lost("connection refused"), Lost("timed out", timed_out=True)))
    with pytest.raises(EngineUnreachable) as gone:
        engine.remove_image("a", what="remove a")
    assert gone.value.message == (
        "remove a: lost the Docker engine at unix:///scripted.sock: connection refused"
    )
    # A listing says what it was doing, as every other request does.
    with pytest.raises(
        EngineUnreachable, match=r"^list images: the Docker engine at .* did not answer in time"
    ):
        engine.images()


def test_names_are_one_path_segment_and_parameters_as_the_engine_reads_them() -> None:
    transport = Scripted(
        Answer(200, b"[]"),
        Answer(200, b"[]"),
        Answer(201, b""),
        Answer(200, b'{"Id": "new"}'),
        Answer(204, b""),
    )
    engine = Engine(transport)
    engine.remove_image("registry.local:5000/team/app:1.0", force=True, what="rm")
    engine.images(shared_size=True, filters={"dangling": ["true"]})
    engine.tag("sha256:abc", "team/app", "2", what="tag")
    assert engine.create_container({"Image": "busybox"}, name="web") == "new"
    engine.stop("my container")
    assert transport.asked == [
        ("DELETE", "/images/registry.local:5000/team/app:1.0", {"force": 1, "noprune": 0}, None),
        (
            "GET",
            "/images/json",
            {"all": 1, "shared-size": 1, "filters": '{"dangling": ["true"]}'},
            None,
        ),
        ("POST", "/images/sha256:abc/tag", {"repo": "team/app", "tag": "2"}, None),
        ("POST", "/containers/create", {"name": "web"}, {"Image": "busybox"}),
        ("POST", "/containers/my%20container/stop", {"t": 10}, None),
    ]


def test_a_stream_refused_before_its_body_raises_with_the_engines_words() -> None:
    engine = Engine(Scripted(Answer(404, b'{"message": "reference does not exist"}')))
    refused = pytest.raises(Missing, match=r"^save a:1: reference does not exist$")
    with refused, engine.save(["a:1"], "save a:1"):
        pass


def test_a_stream_lost_mid_body_is_unreachable_but_a_stall_is_the_callers() -> None:
    class Failing(Scripted):
        @contextlib.contextmanager
        def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Body]:
            def pieces() -> Iterator[bytes]:
                yield b"some"
                failure = self.script.pop(0)
                assert isinstance(failure, Lost)
                raise failure

            yield Body(200, pieces(), ends_at_close=False)

    engine = Engine(Failing(StreamBroken("connection closed"), StreamBroken("t", timed_out=True)))
    lost = pytest.raises(EngineUnreachable, match=r"^export c: lost the .*: connection closed$")
    with lost, engine.export("c", "export c") as body:
        body.read_all()
    stream = engine.stream("POST", "/images/create", timeout=1.0)
    with pytest.raises(StreamBroken) as stalled, stream as body:
        body.read_all()
    assert stalled.value.timed_out


def test_uploads_send_the_pieces_and_split_the_answers_lines() -> None:
    transport = Scripted(Answer(200, b'{"stream": "Loaded image: a:1"}\n{"stream": "x"}\n'))
    pieces: list[bytes | memoryview] = [b"tar ", memoryview(b"bytes")]
    lines = Engine(transport).load(iter(pieces), "load a.tar")
    assert lines == [b'{"stream": "Loaded image: a:1"}', b'{"stream": "x"}']
    assert transport.asked == [("POST", "/images/load", {"quiet": 1}, b"tar bytes")]


def _events_engine(podman: bool, body: bytes) -> tuple[Engine, Scripted]:
    transport = Scripted(Answer(200, body))
    transport.podman = podman  # type: ignore[assignment]
    return Engine(transport), transport


_SINCE = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
_UNTIL = datetime(2026, 1, 2, 4, 0, 0, tzinfo=timezone.utc)
_EVENTS = (
    # Just before since, at since, just after until, at until in seconds only: the engine's
    # cut is made again here, both ends inclusive.
    b'{"Type": "container", "Action": "start", "timeNano": 1767323045123455999}\n'
    b'{"Type": "container", "Action": "create", "timeNano": 1767323045123456000}\n'
    b'{"Type": "image", "Action": "tag", "timeNano": 1767326400000000001}\n'
    b'{"Type": "image", "Action": "pull", "time": 1767326400}\n'
)


def test_events_ask_dockerd_in_unix_seconds_with_until() -> None:
    engine, transport = _events_engine(False, _EVENTS)
    found = engine.events(_SINCE, _UNTIL, {"type": ["container"]})
    assert transport.asked == [
        (
            "GET",
            "/events",
            {
                "filters": '{"type": ["container"]}',
                "since": "1767323045.123456000",
                "until": "1767326400.000000000",
            },
            None,
        )
    ]
    assert [e["Action"] for e in found] == ["create", "pull"]


def test_events_ask_podman_in_rfc3339_without_until_and_cut_at_until_here() -> None:
    # Podman 4.3 reads "sec.nanos" as no time (200, nothing), and a past `until` stops its
    # log reader at once: RFC 3339, stream=false, and the cut made by dockops.
    engine, transport = _events_engine(True, _EVENTS)
    found = engine.events(_SINCE, _UNTIL)
    assert transport.asked == [
        ("GET", "/events", {"since": "2026-01-02T03:04:05.123456Z", "stream": "false"}, None)
    ]
    assert [e["Action"] for e in found] == ["create", "pull"]
    engine, transport = _events_engine(True, b"")
    assert engine.events(None, _UNTIL) == []
    assert transport.asked[0][2] == {"since": "1970-01-01T00:00:00.000000Z", "stream": "false"}


def test_events_without_since_take_all_dockerd_keeps_and_refuse_a_line_not_json() -> None:
    engine, transport = _events_engine(False, b'{"time": 1}\n')
    assert engine.events(None, _UNTIL) == [{"time": 1}]
    assert transport.asked[0][2] == {"until": "1767326400.000000000"}
    engine, _ = _events_engine(False, b'{"time": 1}\n<html>\n')
    with pytest.raises(EngineRefused, match=r"^read the engine's events: the answer is not JSON"):
        engine.events(None, _UNTIL)
