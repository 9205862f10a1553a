"""private_registry: the one "which registry" rule of the commands that take --registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockops.cli.common import NO_REGISTRY, private_registry
from dockops.errors import InvalidInput


@pytest.fixture
def no_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKOPS_REGISTRY", raising=False)
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "none.toml"))


@pytest.mark.usefixtures("no_default")
def test_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert private_registry("flag.example:5000") == "flag.example:5000"
    monkeypatch.setenv("DOCKOPS_REGISTRY", "env.example:5000")
    assert private_registry(None) == "env.example:5000"
    assert private_registry("flag.example:5000") == "flag.example:5000"


@pytest.mark.usefixtures("no_default")
def test_none_is_bad_input_in_the_callers_words() -> None:
    with pytest.raises(InvalidInput) as default:
        private_registry(None)
    assert default.value.message == NO_REGISTRY
    assert "pass --registry HOST:PORT" in NO_REGISTRY
    with pytest.raises(InvalidInput, match=r"^search --registry: no default$"):
        private_registry(None, missing="search --registry: no default")
