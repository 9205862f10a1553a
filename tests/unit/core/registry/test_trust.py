"""Which registries may be spoken to over plain HTTP (core/registry/trust.py), and the CA it
installs in certs.d, watched at every step of the write (tests/support/modes.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockops.core.registry import trust
from dockops.core.registry.trust import is_insecure, untrusted_hint
from tests.support.modes import looser, watched


def test_insecure_registries_from_env_and_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKOPS_INSECURE_REGISTRIES", raising=False)
    config = tmp_path / "config.toml"
    config.write_text('insecure_registries = ["build.lan:5000"]\n')
    monkeypatch.setenv("DOCKOPS_CONFIG", str(config))
    assert is_insecure("127.0.0.1:5000") and is_insecure("build.lan:5000")
    assert not is_insecure("other.lan:5000")
    monkeypatch.setenv("DOCKOPS_INSECURE_REGISTRIES", "other.lan:5000, x:1")
    assert is_insecure("other.lan:5000") and not is_insecure("build.lan:5000")


# --- the modes at every step of the writes (tests/support/modes.py) ---------------------------


def test_the_installed_ca_is_0644_and_never_writable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ca.crt"
    source.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    certs_d = tmp_path / "certs.d"
    with watched(certs_d.parent, 0o022) as states:
        trust.install_ca(source, "registry.example:443", certs_d)
    installed = certs_d / "registry.example:443" / "ca.crt"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    for path, mode in states:
        assert not looser(mode, 0o755), f"{path} was {oct(mode)} at some point"


def test_the_certs_d_folder_is_never_writable_by_others(tmp_path: Path) -> None:
    source = tmp_path / "ca.crt"
    source.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    certs_d = tmp_path / "certs.d"
    with watched(certs_d.parent, 0) as states:
        trust.install_ca(source, "registry.example:443", certs_d)
    for path, mode in states:
        assert not looser(mode, 0o755), f"{path} was {oct(mode)} at some point"


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
