"""docs/cli.md is the CLI's own account of itself: regenerated here and compared, and the table
of which core result each --json renders held to the commands' code."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import io
import json
import re
import types
import typing
from collections import abc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dockops import render
from dockops.cli import docs

CLI_MD = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_docs_cli_md_is_current() -> None:
    assert CLI_MD.read_text() == docs.render(), (
        "docs/cli.md is stale: run `make docs` and commit it"
    )


def _commands() -> dict[str, Any]:
    group, ctx = docs.root()
    return {path: command for path, command, _ in docs.walk(group, ctx) if path}


def test_every_command_with_json_says_what_it_renders() -> None:
    with_json = {path for path, command in _commands().items() if docs.has_json(command)}
    assert with_json == set(docs.JSON_RESULTS)


def _imported(source: str, module: str) -> set[str]:
    """The names `source` imports from `module` (any number of import statements)."""
    statements = re.findall(rf"from {re.escape(module)} import (\([^)]*\)|[^\n]*)", source)
    return {
        word.split(" as ")[0].strip()
        for statement in statements
        for word in statement.strip("()").split(",")
        if word.strip()
    }


def _calls(source: str, dotted: str) -> bool:
    """`source` imports core function `dotted` by name, or imports its module and calls it."""
    module, name = f"dockops.core.{dotted}".rsplit(".", 1)
    parent, _, leaf = module.rpartition(".")
    return name in _imported(source, module) or (
        leaf in _imported(source, parent) and f"{leaf}.{name}(" in source
    )


@pytest.mark.parametrize("path", sorted(docs.JSON_RESULTS))
def test_the_table_names_the_function_the_command_calls(path: str) -> None:
    source = inspect.getsource(_commands()[path].callback)
    for _, dotted in docs.JSON_RESULTS[path]:
        assert _calls(source, dotted), f"`dockops {path}` does not call core.{dotted}"


def _sample(tp: Any) -> Any:
    """A value of type `tp` with every optional part present, so every key is rendered."""
    origin, args = typing.get_origin(tp), [a for a in typing.get_args(tp) if a is not Ellipsis]
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if origin in (list, abc.Iterator, abc.Sequence, set, frozenset):
        return [_sample(args[0])]
    if origin is tuple:
        return (_sample(args[0]),)
    if origin in (dict, abc.Mapping):
        return {}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(tp) if f.init})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    samples = {bool: True, int: 1, float: 1.5, str: "x", datetime: datetime.now(timezone.utc)}
    if tp in samples:
        return samples[tp]
    if isinstance(tp, type) and issubclass(tp, Path):
        return Path("x")
    return None


def _tree(value: Any) -> Any:
    """The keys of a JSON document, nested: what docs/cli.md lists."""
    if isinstance(value, dict):
        return {key: _tree(item) for key, item in value.items()}
    if isinstance(value, list) and value:
        return _tree(value[0])
    return None


def _documented(tp: Any) -> Any:
    if docs._is_array(tp):
        return _documented(typing.get_args(tp)[0])
    if not dataclasses.is_dataclass(tp):
        return None
    return {name: _documented(nested) for name, _, nested in docs.keys(tp)}


@pytest.mark.parametrize(
    "dotted", sorted({dotted for forms in docs.JSON_RESULTS.values() for _, dotted in forms})
)
def test_the_renderer_writes_the_documented_keys(
    dotted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp = docs.result_type(dotted)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    render.emit(_sample(tp), render.Output.JSON)
    assert _tree(json.loads(out.getvalue())) == _documented(tp)


def test_every_exit_code_has_a_meaning() -> None:
    text = CLI_MD.read_text()
    from dockops.errors import ExitCode

    for code in ExitCode:
        assert f"| {int(code)} | {code.name} | {docs.MEANINGS[code.name]} |" in text
