"""Config file and environment precedence for the default registry."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockops.config import config_path, load_config, resolve_registry, update_config
from dockops.errors import InvalidInput


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DOCKOPS_CONFIG", "DOCKOPS_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_default_path_follows_xdg(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "xdg" / "dockops" / "config.toml"


def test_dockops_config_names_another_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "other.toml"))
    assert config_path() == tmp_path / "other.toml"


def test_missing_file_is_empty_config() -> None:
    assert load_config().registry is None
    assert resolve_registry(None) is None


def test_precedence_flag_then_env_then_file(monkeypatch: pytest.MonkeyPatch) -> None:
    update_config(registry="file.example:5000")
    assert resolve_registry(None) == "file.example:5000"
    monkeypatch.setenv("DOCKOPS_REGISTRY", "env.example:5000")
    assert resolve_registry(None) == "env.example:5000"
    assert resolve_registry("flag.example:5000") == "flag.example:5000"


def test_update_is_atomic_and_keeps_other_keys(tmp_path: Path) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('other = "kept"\n')
    update_config(registry="127.0.0.1:5000")
    text = path.read_text()
    assert 'other = "kept"' in text and 'registry = "127.0.0.1:5000"' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left
    update_config(registry=None)
    assert load_config().registry is None


def test_bad_toml_is_bad_input() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("registry = \n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_config()


def test_bad_registry_in_env_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_REGISTRY", "https://x")
    with pytest.raises(InvalidInput):
        resolve_registry(None)
