"""save/export's stream into a tar (core/archive/save_load.py): a whole tar is copied as it
comes; a cut, an early stop or the engine's error in the body says which it was, in one line.
A layer load misses is named from the engine's text."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from dockops.core.archive.save_load import _missing_member, stream_tar
from dockops.engine.wire import Body, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput, root_cause
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import END, SAMPLE, header, member


class _Engine:
    """The one question stream_tar asks an engine once a stream stopped short."""

    address = "unix:///run/engine.sock"

    def __init__(self, answers: bool) -> None:
        self._answers = answers
        self.asked = 0

    def answers(self) -> bool:
        self.asked += 1
        return self._answers


def _stream(data: bytes, *, ends_at_close: bool, engine: _Engine) -> bytes:
    body = Body(200, iter([data[i : i + 700] for i in range(0, len(data), 700)]), ends_at_close)
    out = io.BytesIO()
    stream_tar(body, out, "save x:1", "x.tar", lambda event: None, engine)
    return out.getvalue()


@pytest.mark.parametrize("ends_at_close", [True, False])
def test_stream_tar_copies_a_whole_tar_without_asking_the_engine(ends_at_close: bool) -> None:
    data = tar_of(SAMPLE)
    engine = _Engine(answers=True)
    assert _stream(data, ends_at_close=ends_at_close, engine=engine) == data
    assert engine.asked == 0


@pytest.mark.parametrize("answers", [True, False])
def test_an_unframed_body_short_of_the_end_marker_is_a_broken_stream(answers: bool) -> None:
    # HTTP/1.0: the engine's close is the body's only end, so a short tar means a cut stream.
    cut = tar_of(SAMPLE)[:5000]
    with pytest.raises(EngineUnreachable) as caught:
        _stream(cut, ends_at_close=True, engine=_Engine(answers))
    expected = "save x:1: the engine's stream broke after 5000 bytes (connection closed"
    assert caught.value.message.startswith(expected)
    assert caught.value.message.endswith("no longer answers)") is not answers


def test_a_framed_body_that_ended_short_is_an_early_stop_by_an_engine_that_answers() -> None:
    cut = tar_of(SAMPLE)[:5000]
    with pytest.raises(
        EngineRefused, match=r"^save x:1: the engine's stream stopped early \(trunc"
    ):
        _stream(cut, ends_at_close=False, engine=_Engine(answers=True))
    with pytest.raises(EngineUnreachable, match="it stopped answering after 5000 bytes"):
        _stream(cut, ends_at_close=False, engine=_Engine(answers=False))


@pytest.mark.parametrize("ends_at_close", [True, False])
def test_the_engines_error_after_part_of_a_tar_is_its_refusal(ends_at_close: bool) -> None:
    error = b'{"errorDetail":{"message":"layer vanished"},"error":"layer vanished"}\r\n'
    engine = _Engine(answers=True)
    with pytest.raises(EngineRefused, match=r"^save x:1: layer vanished$"):
        _stream(tar_of(SAMPLE)[:2048] + error, ends_at_close=ends_at_close, engine=engine)
    assert engine.asked == 0


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
        # urllib3's words for a chunked body cut short say nothing a user can act on.
        (ValueError("IncompleteRead(0 bytes read, 2 more expected)"), "connection closed"),
    ],
)
def test_a_stream_cut_mid_body_says_where_and_why(cause: Exception, reason: str) -> None:
    def pieces() -> Iterator[bytes]:
        yield tar_of(SAMPLE)[:3000]
        raise StreamBroken(root_cause(cause)) from cause  # as a transport says it

    with pytest.raises(EngineUnreachable) as caught:
        stream_tar(
            Body(200, pieces(), False), io.BytesIO(), "save x:1", "x.tar", print, _Engine(True)
        )
    assert (
        caught.value.message == f"save x:1: the engine's stream broke after 3000 bytes ({reason})"
    )


def test_the_engines_stream_with_a_bad_size_field_is_its_refusal_in_one_line() -> None:
    # Not bad input from the user: the engine sent it, so exit 1 as its other broken streams.
    data = member("a", b"1") + header("b", size_field=b"00000000009\0") + END
    with pytest.raises(EngineRefused, match=r"^save x:1: corrupt tar: bad size field"):
        _stream(data, ends_at_close=False, engine=_Engine(answers=True))


def test_a_missing_layer_is_named_from_the_engine_s_text() -> None:
    refusal = EngineRefused(
        "load /tmp/x.tar: open /var/lib/docker/tmp/docker-import-1130135893/"
        "50e933d2ea2afe11cc88e358b1f8cc3c339e60d1ac16d75d302bcd22dc72159a/layer.tar: "
        "no such file or directory"
    )
    error = _missing_member("load /tmp/x.tar", refusal)
    assert isinstance(error, InvalidInput)
    assert error.message == (
        "load /tmp/x.tar: incomplete archive: its manifest.json names "
        "50e933d2ea2afe11cc88e358b1f8cc3c339e60d1ac16d75d302bcd22dc72159a/layer.tar, which is "
        "not in the tar (and the engine does not hold that layer already)"
    )
    assert _missing_member("load x", EngineRefused("load x: invalid diffID")) is None
