"""Pure logic behind the reliability work: the stall timeout setting, what a stall or an
untrusted certificate is called, the engine's racing-delete and missing-layer texts, and the
line for a disk that is full. The behaviour itself is tested on the real engine in
tests/integration/test_reliability_*.py."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from dockops.core.archive.files import unwritable
from dockops.core.archive.save_load import _missing_member
from dockops.core.cleanup.dangling import GONE, Kept, Removal, _refusal
from dockops.core.images import transfer
from dockops.core.images.failures import untrusted_hint
from dockops.engine.address import DEFAULT_STALL_TIMEOUT, stall_timeout
from dockops.engine.daemon_lines import Stalled
from dockops.errors import (
    EngineRefused,
    EngineUnreachable,
    ExitCode,
    InvalidInput,
    RegistryUnreachable,
)
from tests.conftest import Cli


def test_stall_timeout_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKOPS_STALL_TIMEOUT", raising=False)
    assert stall_timeout() == DEFAULT_STALL_TIMEOUT == 120
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", "2.5")
    assert stall_timeout() == 2.5


@pytest.mark.parametrize("bad", ["soon", "0", "-5", "nan", "inf", "1e999"])
def test_a_bad_stall_timeout_is_bad_input_before_the_engine(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # 3 if anything reached it
    monkeypatch.setenv("DOCKOPS_STALL_TIMEOUT", bad)
    for command in (["pull", "busybox"], ["push", "127.0.0.1:5000/x:1"], ["save", "x", "-o", "-"]):
        result = cli(*command)
        assert (result.code, result.out) == (2, ""), (command, result)
        assert result.err == (
            f"dockops: error: DOCKOPS_STALL_TIMEOUT={bad!r} is not a positive number of seconds\n"
        )


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


UNTRUSTED = [
    # the 20.10 daemon (Go)
    'Get "https://r.example:443/v2/": x509: certificate signed by unknown authority',
    # Python's ssl, and requests keeping only OpenSSL's reason code
    "certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)",
    "certificate verify failed: unable to get local issuer certificate (_ssl.c:992)",
    "r.example:443: TLS: CERTIFICATE_VERIFY_FAILED",
]
NOT_A_TRUST_PROBLEM = [
    "certificate verify failed: Hostname mismatch, certificate is not valid for 'r.example'",
    "certificate verify failed: IP address mismatch, certificate is not valid for '10.0.0.1'",
    "certificate verify failed: certificate has expired (_ssl.c:992)",
    'Get "https://r.example/v2/": x509: certificate is valid for a.example, not r.example',
    'Get "http://r.example/v2/": dial tcp 10.0.0.1:443: connect: connection refused',
]


@pytest.mark.parametrize("text", UNTRUSTED)
def test_an_untrusted_certificate_names_the_certs_d_file(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKOPS_CERTS_D", str(tmp_path / "certs.d"))
    hint = untrusted_hint("r.example:443", text)
    assert hint == (
        f"to trust its CA, put it in {tmp_path}/certs.d/r.example:443/ca.crt "
        "(dockops registry secure does it with --trust)"
    )


@pytest.mark.parametrize("text", NOT_A_TRUST_PROBLEM)
def test_other_failures_get_no_trust_hint(text: str) -> None:
    assert untrusted_hint("r.example:443", text) is None


def test_a_pull_refused_for_trust_is_exit_4_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_CERTS_D", "/etc/docker/certs.d")
    error = transfer._failure(
        "pull r.example:443/app:1",
        transfer._DaemonError(UNTRUSTED[0]),
        1,
        "r.example:443",
    )
    assert isinstance(error, RegistryUnreachable)
    assert error.message.endswith(
        "x509: certificate signed by unknown authority; to trust its CA, put it in "
        "/etc/docker/certs.d/r.example:443/ca.crt (dockops registry secure does it with --trust)"
    )


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


def test_a_full_disk_is_one_line_and_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    error = unwritable("save app:1", tmp_path / "x.tar", full)
    assert isinstance(error, InvalidInput) and error.exit_code == ExitCode.USAGE
    assert error.message == (
        f"save app:1: cannot write {tmp_path}/x.tar: no space left on device; "
        "nothing was left behind"
    )
    stdout = unwritable("save app:1", io.BytesIO(), OSError(errno.EIO, "Input/output error"))
    assert stdout is not None
    assert stdout.message == "save app:1: cannot write stdout: input/output error"
    assert unwritable("save app:1", io.BytesIO(), BrokenPipeError(errno.EPIPE, "pipe")) is None


@pytest.mark.parametrize(
    "text",
    [
        "No such image: sha256:aa",
        "unrecognized image ID sha256:aa",  # deleted by another run during this delete
    ],
)
def test_an_image_another_run_deleted_is_kept_as_gone(text: str) -> None:
    outcome = _refusal(Removal("sha256:aa", 1), text)
    assert isinstance(outcome, Kept) and outcome.kind == GONE
