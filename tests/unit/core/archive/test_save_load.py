"""save/export's stream into a tar (core/archive/save_load.py): a whole tar is copied as it
comes; a cut, an early stop or the engine's error in the body says which it was, in one line.
A layer load misses is named from the engine's text; load's answer read as Docker and Podman
word it."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from typing import Any

import pytest

from dockops.core.archive.save_load import (
    _missing_member,
    _podman_reason,
    load_images,
    save_images,
    stream_tar,
)
from dockops.engine.api import Engine
from dockops.engine.wire import Body, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput, root_cause
from tests.support.fake_engine import FakeTransport
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


PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER = {"Components": [{"Name": "Engine", "Version": "20.10.24"}]}
A_ID = "sha256:" + "a" * 64
B_ID = "sha256:" + "b" * 64
C_ID = "sha256:" + "c" * 64


def _fake(routes: dict[str, Any], server: dict[str, Any]) -> FakeTransport:
    transport = FakeTransport(routes)
    transport.server = server
    return transport


def _load(answer: bytes, server: dict[str, Any], source: bytes) -> tuple[list[Any], FakeTransport]:
    transport = _fake(
        {
            "POST /images/load": (200, answer),
            "GET /images/docker.io/org/a:1/json": (200, {"Id": A_ID}),
            "GET /images/localhost/b:2/json": (200, {"Id": B_ID}),
            "GET /images/org/a:1/json": (200, {"Id": A_ID}),
        },
        server,
    )
    result = load_images(Engine(transport), io.BytesIO(source))
    return [(i.reference, i.id) for i in result.images], transport


def test_podman_names_every_loaded_image_on_one_line_and_an_untagged_one_by_id() -> None:
    # Podman 4.3's compat load answers once: "Loaded image: " and the names joined by ",".
    answer = b'{"stream":"Loaded image: docker.io/org/a:1,localhost/b:2,' + C_ID.encode() + b'"}\n'
    images, transport = _load(answer, PODMAN, tar_of(SAMPLE))
    # Shown as docker prints them; localhost/ stays; the after-load lookup is by Podman's name.
    assert images == [("org/a:1", A_ID), ("localhost/b:2", B_ID), (None, C_ID)]
    assert "GET /images/docker.io/org/a:1/json" in transport.paths()


def test_docker_names_each_image_on_a_line_of_its_own() -> None:
    answer = (
        b'{"stream":"Loaded image: org/a:1\\n"}\n{"stream":"Loaded image ID: '
        + C_ID.encode()
        + b'\\n"}\n'
    )
    images, _ = _load(answer, DOCKER, tar_of(SAMPLE))
    assert images == [("org/a:1", A_ID), (None, C_ID)]


def test_docker_s_list_of_every_id_after_an_untagged_last_image_names_each_image_once() -> None:
    # moby's load, when the archive's last image has no tag, lists the IDs of all its images
    # in one document, the tagged ones included (seen on 20.10).
    answer = (
        b'{"stream":"Loaded image: org/a:1\\n"}\r\n'
        b'{"stream":"Loaded image ID: ' + A_ID.encode() + b"\\nLoaded image ID: "
        + C_ID.encode() + b'\\n"}\r\n'
    )  # fmt: skip
    images, _ = _load(answer, DOCKER, tar_of(SAMPLE))
    assert images == [("org/a:1", A_ID), (None, C_ID)]


@pytest.mark.parametrize("server", [DOCKER, PODMAN])
def test_a_gzip_archive_is_sent_as_the_plain_tar_inside(server: dict[str, Any]) -> None:
    # Podman refuses a gzip body ("archive/tar: invalid tar header"); docker takes either.
    data = tar_of(SAMPLE)
    _, transport = _load(b'{"stream":"Loaded image: org/a:1\\n"}\n', server, gzip.compress(data))
    assert transport.uploaded == data


def _podman_refusal(archive_reason: str) -> EngineRefused:
    # As engine/errors.py words it: one line, the list of the formats Podman tried.
    return EngineRefused(
        "load x.tar: failed to load image: payload does not match any of the supported image "
        "formats: * oci: initializing source oci:/var/tmp/api_load.tar1:: open "
        "/var/tmp/api_load.tar1/index.json: not a directory * oci-archive: loading index: open "
        f"/var/tmp/oci2/index.json: no such file or directory * docker-archive: {archive_reason}"
        " * dir: open /var/tmp/api_load.tar1/manifest.json: not a directory"
    )


def test_podman_s_refusal_is_its_docker_archive_reason() -> None:
    reason = (
        'writing blob: storing blob to file "/var/tmp/storage3/1": happened during read: Digest '
        "did not match, expected sha256:98b8, got sha256:57a2"
    )
    error = _podman_reason("load x.tar", _podman_refusal(reason))
    assert type(error) is EngineRefused and error.message == f"load x.tar: {reason}"
    missing = _podman_reason(
        "load x.tar",
        _podman_refusal(
            "determining manifest MIME type for docker-archive:/var/tmp/api_load.tar1:"
            "docker.io/org/a:1: Some layer tarfiles are missing in the tarball"
        ),
    )
    assert isinstance(missing, InvalidInput)
    assert missing.message == (
        "load x.tar: incomplete archive: its manifest.json names layer files that are not in "
        "the tar (Podman loads no such archive, even when it holds those layers)"
    )
    assert _podman_reason("load x.tar", EngineRefused("load x.tar: no space left")) is None


def test_an_unknown_image_to_save_is_said_in_docker_s_words_on_any_engine() -> None:
    podman_404 = (
        404,
        {"message": "failed to find image x:1: docker.io/library/x:1: No such image"},
    )
    engine = Engine(_fake({"GET /images/x:1/json": podman_404}, PODMAN))
    with pytest.raises(InvalidInput) as caught:
        save_images(engine, ["x:1"], io.BytesIO(), gzip=False)
    assert caught.value.message == "save x:1: No such image: x:1"
