"""Which registries may be spoken to over plain HTTP (core/registry/trust.py), and the CA it
installs in certs.d, watched at every step of the write (tests/support/modes.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockops.core.registry import trust
from dockops.core.registry.trust import is_insecure
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
