"""Pure logic of the image-lifecycle commands: fault classification (on texts the 20.10 daemon
really produced), the stream reader, the retry loop, layer matching, change validation and the
rmi exit decision. No engine: the engine behaviour is tested in tests/integration."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from dockops.core.images import transfer
from dockops.core.images.commit import validate_changes
from dockops.core.images.failures import is_registry_cause, is_transient
from dockops.core.images.layers import chain_ids, layer_steps
from dockops.core.images.remove import RmiOutcome, names_left, rmi_failure, will_stay
from dockops.errors import (
    EngineRefused,
    ExitCode,
    InvalidInput,
    PartialFailure,
    RegistryUnreachable,
)
from dockops.progress import ProgressEvent
from dockops.retry import RetryPolicy

TRANSIENT = [
    "received unexpected HTTP status: 503 Service Unavailable",
    "received unexpected HTTP status: 502 Bad Gateway",
    "received unexpected HTTP status: 500 Internal Server Error",
    "received unexpected HTTP status: 504 Gateway Timeout",
    "toomanyrequests: You have reached your pull rate limit.",
    "unavailable: injected fault",
    'Get "http://127.0.0.1:5000/v2/": read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection '
    "reset by peer",
    'Head "http://127.0.0.1:5000/v2/bb/manifests/v1": EOF',
    "unexpected EOF",
    "error parsing HTTP 429 response body: invalid character",
]
PERMANENT_REGISTRY = [
    'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
    'Get "https://index.docker.io/v1/search?q=busybox&n=25": proxyconnect tcp: dial tcp '
    "127.0.0.1:9: connect: connection refused",
    'Get "https://r.example:443/v2/": x509: certificate signed by unknown authority',
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "Get https://r.example/v2/: http: server gave HTTP response to HTTPS client",
    'Get "https://nohost.invalid/v2/": dial tcp: lookup nohost.invalid: no such host',
]
NEITHER = [
    "manifest for 127.0.0.1:5911/bb:nope not found: manifest unknown: manifest unknown",
    "An image does not exist locally with the tag: 127.0.0.1:5999/zz",
    "received unexpected HTTP status: 501 Not Implemented",
    "invalid reference format",
]


@pytest.mark.parametrize("text", TRANSIENT)
def test_transient_faults_are_recognised(text: str) -> None:
    assert is_transient(text)
    assert is_registry_cause(text)


@pytest.mark.parametrize("text", PERMANENT_REGISTRY)
def test_unreachable_tls_and_auth_are_registry_causes_but_not_retried(text: str) -> None:
    assert not is_transient(text)
    assert is_registry_cause(text)


@pytest.mark.parametrize("text", NEITHER)
def test_refusals_are_neither(text: str) -> None:
    assert not is_transient(text)
    assert not is_registry_cause(text)


def _stream(*lines: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from lines


FAST = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.002)


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


def test_chain_ids_follow_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]
    assert chain_ids([]) == []


def test_layer_steps_skip_steps_that_made_no_layer() -> None:
    steps = [
        (100, "ADD file:x in /"),
        (0, '/bin/sh -c #(nop)  CMD ["sh"]'),
        (0, "/bin/sh -c rm /etc/motd"),  # a whiteout-only layer: size 0, still a layer
        (50, "/bin/sh -c echo > /a"),
        (0, "/bin/sh -c #(nop)  ENV A=1"),
    ]
    assert layer_steps(steps, 3) == [steps[0], steps[2], steps[3]]
    assert layer_steps(steps[:1], 1) == steps[:1]
    assert layer_steps([], 2) == [(0, ""), (0, "")]


def test_validate_changes() -> None:
    assert validate_changes(["ENV A=1", 'cmd ["sh"]']) == ("ENV A=1", 'cmd ["sh"]')
    with pytest.raises(InvalidInput, match="use one of CMD"):
        validate_changes(["FROB x"])
    with pytest.raises(InvalidInput, match="CMD needs arguments"):
        validate_changes(["CMD"])


def _outcome(ref: str, outcome: str) -> RmiOutcome:
    return RmiOutcome(ref, outcome, None, f"{ref}: {outcome}")


def test_rmi_failure_decides_the_exit_code() -> None:
    assert rmi_failure([_outcome("a", "deleted"), _outcome("b", "untagged")]) is None
    partial = rmi_failure([_outcome("a", "deleted"), _outcome("b", "refused")])
    assert isinstance(partial, PartialFailure) and partial.exit_code == 5
    assert [o.reference for o in partial.result] == ["a", "b"]
    missing = rmi_failure([_outcome("a", "missing")])
    assert isinstance(missing, InvalidInput) and missing.message == "a: missing"
    refused = rmi_failure([_outcome("a", "missing"), _outcome("b", "refused")])
    assert isinstance(refused, EngineRefused) and refused.exit_code == 1


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "tags", "digests", "left"),
    [
        ("app:1", ["app:1", "app:2"], [], ("app:2",)),
        ("app", ["app:latest", "app:2"], [], ("app:2",)),
        ("docker.io/library/app:1", ["app:1", "app:2"], [], ("app:2",)),
        ("docker.io/team/app:1", ["team/app:1"], [], ()),
        # A tag takes its repository's digests along when it is that repository's last tag...
        ("r:5000/app:1", ["r:5000/app:1"], [f"r:5000/app@{DIGEST}"], ()),
        # ...not while another tag of the repository remains, nor another repository's.
        ("r:5000/app:1", ["r:5000/app:1", "r:5000/app:2"], [f"r:5000/app@{DIGEST}"],
         ("r:5000/app:2", f"r:5000/app@{DIGEST}")),
        ("app:1", ["app:1"], [f"r:5000/app@{DIGEST}"], (f"r:5000/app@{DIGEST}",)),
        # A digest goes alone.
        (f"r:5000/app@{DIGEST}", ["r:5000/app:1"], [f"r:5000/app@{DIGEST}"], ("r:5000/app:1",)),
    ],
)  # fmt: skip
def test_rmi_names_left_follow_the_engine(
    reference: str, tags: list[str], digests: list[str], left: tuple[str, ...]
) -> None:
    assert names_left(reference, {"RepoTags": tags, "RepoDigests": digests}) == left


def test_rmi_will_stay_by_name_and_by_id() -> None:
    two = {"RepoTags": ["app:1", "app:2"], "RepoDigests": []}
    assert will_stay("app:1", two, by_id=False, force=True) == "other tags remain: app:2"
    assert will_stay("app:2", {"RepoTags": ["app:2"]}, by_id=False, force=False) is None
    # By ID: several tags need force (then every tag goes); one tag and its digests do not.
    assert "several names" in (will_stay("abc", two, by_id=True, force=False) or "")
    assert will_stay("abc", two, by_id=True, force=True) is None
    one = {"RepoTags": ["r:5000/app:1"], "RepoDigests": [f"r:5000/app@{DIGEST}"]}
    assert will_stay("abc", one, by_id=True, force=False) is None
    assert will_stay("abc", {"RepoTags": [], "RepoDigests": []}, by_id=True, force=False) is None


def test_engine_text_says_a_doubled_404_once() -> None:
    from dockops.engine.errors import Missing, refused

    doubled = refused(404, b'{"message": "no such image: x:v1: No such image: x:v1"}', "rmi x")
    assert isinstance(doubled, Missing) and doubled.message == "rmi x: No such image: x:v1"
    plain = refused(409, b'{"message": "conflict: unable to delete  abc"}')
    assert plain.message == "conflict: unable to delete abc"
