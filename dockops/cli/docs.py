"""docs/cli.md, written from the CLI itself: `python -m dockops.cli.docs [FILE]` (`make docs`).

Commands, arguments and options come from the Typer app as click sees it, exit codes from
ExitCode and the DockopsError classes, and each --json document's keys from the result
dataclass its core function returns. Which function that is cannot be read off a command, so
JSON_RESULTS says it, and tests/unit/cli/test_docs.py holds each entry to the command's code.
"""

import dataclasses
import enum
import importlib
import sys
import types
import typing
from collections import abc
from collections.abc import Iterator
from datetime import datetime
from pathlib import PurePath
from typing import Any

import typer

# Each command with --json: the core function whose result it renders (dockops.core.<path>),
# one per form when a flag picks another function.
JSON_RESULTS: dict[str, tuple[tuple[str, str], ...]] = {
    "images": (("", "images.listing.list_images"),),
    "search": (
        ("", "images.search.search_images"),
        ("with --registry", "registry.browse.search_catalog"),
    ),
    "pull": (("", "images.transfer.pull_image"),),
    "commit": (("", "images.commit.commit_container"),),
    "history": (("", "images.commit.image_history"),),
    "layers": (("", "images.layers.image_layers"),),
    "tag": (("", "images.commit.tag_image"),),
    "rmi": (("", "images.remove.remove_images"),),
    "push": (
        ("", "images.transfer.push_image"),
        ("with --via direct", "push_private.push.push_reference_direct"),
    ),
    "save": (
        ("", "archive.save_load.save_images"),
        ("with --delta-from", "archive.delta.save_delta"),
    ),
    "load": (("", "archive.save_load.load_images"),),
    "export": (("", "archive.filesystem.export_container"),),
    "import": (("", "archive.filesystem.import_image"),),
    "dangling": (("", "cleanup.dangling.list_dangling"),),
    "prune-dangling": (("", "cleanup.dangling.prune_dangling"),),
    "prune-images": (("", "cleanup.prune_images.prune_images"),),
    "cron install": (("", "cleanup.cron.install"),),
    "cron remove": (("", "cleanup.cron.remove"),),
    "registry up": (("", "registry_server.deploy.registry_up"),),
    "registry secure": (("", "registry_server.secure.secure_registry"),),
    "registry down": (("", "registry_server.deploy.registry_down"),),
    "registry status": (("", "registry_server.status.registry_status"),),
    "registry ls": (("", "registry.browse.catalog"),),
    "registry tags": (("", "registry.browse.tags"),),
    "registry show": (("", "registry.browse.show"),),
    "registry rm": (("", "registry.remove.remove_tag"),),
    "registry gc": (("", "registry_server.gc.garbage_collect"),),
    "registry prune": (("", "registry.remove.prune_repository"),),
    "push-private": (("", "push_private.push.push_private"),),
    "doctor": (("", "doctor.run_doctor"),),
}

MEANINGS = {
    "OK": "success (also `--help`, and a group called without a command)",
    "REFUSED": "refused: the engine or registry said no (conflict, not found, bad request), "
    "or an internal error",
    "USAGE": "usage or bad input: unknown option, bad reference or value, missing file, "
    "a name the user typed that does not exist; said before anything changes",
    "ENGINE_UNREACHABLE": "the Docker engine cannot be reached, or was lost or stopped "
    "answering midway",
    "REGISTRY_UNREACHABLE": "the registry is unreachable, failed TLS or authentication, or stalled",
    "PARTIAL": "partial: some items were done and some failed (the result is printed first)",
    "LOCKED": "another run holds the lock (EX_TEMPFAIL: cron may simply try again)",
}
INTERRUPTED = 130


def _command_line(path: str) -> str:
    return f"dockops {path}".strip()


# Typer (0.28) carries its own copy of click: its commands and parameters are read here by
# their attributes, never checked against the click package.
def walk(command: Any, ctx: typer.Context, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every command and group under `command`, depth first, with its context."""
    yield path, command, ctx
    for name, sub in getattr(command, "commands", {}).items():
        child = typer.Context(sub, info_name=name, parent=ctx)
        yield from walk(sub, child, f"{path} {name}".strip())


def root() -> tuple[Any, typer.Context]:
    import typer.main

    from dockops.cli.main import app

    group = typer.main.get_command(app)
    return group, typer.Context(group, info_name="dockops")


def has_json(command: Any) -> bool:
    return any("--json" in param.opts for param in command.params)


_TYPES = {"str": "TEXT", "text": "TEXT", "int": "INTEGER", "integer": "INTEGER", "float": "FLOAT"}


def _usage(path: str, command: Any) -> str:
    """As click writes it, with each argument's name as the table names it."""
    if hasattr(command, "commands"):
        return f"{_command_line(path)} COMMAND [ARGS]..."
    words = [_command_line(path), "[OPTIONS]"]
    for param in command.params:
        if _is_option(param):
            continue
        name = _argument(param) + ("..." if param.nargs == -1 else "")
        words.append(name if param.required else f"[{name}]")
    return " ".join(words)


def _is_option(param: Any) -> bool:
    return bool(param.param_type_name == "option")


def _kind(param: Any) -> str:
    if _is_option(param) and param.is_flag:
        return "flag"
    if param.metavar and _is_option(param):
        text = str(param.metavar)
    else:
        base = str(param.type.name).split()[0]  # "int range" is an int
        text = _TYPES.get(base, base.upper())
    low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
    if low is not None or high is not None:
        text += f", {'' if low is None else low}..{'' if high is None else high}"
    if param.multiple or param.nargs == -1:
        text += ", repeatable" if _is_option(param) else ", one or more"
    return text


def _default(param: Any) -> str:
    if param.required:
        return "required"
    if _is_option(param) and param.secondary_opts:
        return str(param.opts[0] if param.default else param.secondary_opts[0])
    if param.default is None or param.default == () or param.default is False:
        return ""
    return f"`{param.default}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _argument(param: Any) -> str:
    return str(param.metavar or param.name.upper())


def _names(param: Any) -> str:
    if not _is_option(param):
        return f"`{_argument(param)}`"
    return ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])


def _params_table(command: Any) -> list[str]:
    params = [p for p in command.params if p.param_type_name in ("argument", "option")]
    if not params:
        return []
    lines = ["| argument or option | type | default | help |", "| --- | --- | --- | --- |"]
    for param in params:
        lines.append(
            f"| {_names(param)} | {_cell(_kind(param))} | {_cell(_default(param))} "
            f"| {_cell(getattr(param, 'help', None))} |"
        )
    return lines


# -- the --json documents --------------------------------------------------------------------


def core_function(dotted: str) -> Any:
    module, name = f"dockops.core.{dotted}".rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def result_type(dotted: str) -> Any:
    """The return annotation of a core function, evaluated in its module (only that one: a
    parameter's annotation may name a type imported for type checkers only)."""
    function = core_function(dotted)
    annotation = function.__annotations__["return"]
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(sys.modules[function.__module__]))
    return annotation


_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _args(tp: Any) -> tuple[Any, ...]:
    return tuple(a for a in typing.get_args(tp) if a is not Ellipsis)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_array(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin in (list, tuple, set, frozenset, abc.Iterator, abc.Sequence)


def type_name(tp: Any) -> str:
    """A field's type as JSON names it, the way render.to_jsonable writes it."""
    if _is_union(tp):
        names = [type_name(a) for a in _args(tp) if a is not type(None)]
        nullable = type(None) in typing.get_args(tp)
        return " or ".join(names) + (" or null" if nullable else "")
    if typing.get_origin(tp) is typing.Literal:
        return "string"
    if _is_array(tp):
        item = _args(tp)[0]
        return (
            "array of objects" if dataclasses.is_dataclass(item) else f"array of {type_name(item)}s"
        )
    if typing.get_origin(tp) in (dict, abc.Mapping):
        return "object"
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return "object"
        if issubclass(tp, bool):
            return "boolean"
        if issubclass(tp, enum.Enum):
            return "string"
        if issubclass(tp, datetime):
            return "string (ISO 8601, UTC)"
        if issubclass(tp, PurePath):
            return "string"
        for scalar, name in _SCALARS.items():
            if issubclass(tp, scalar):
                return name
    return "any"


def _object_of(tp: Any) -> Any:
    """The dataclass a field holds, alone or as an array's items (None for anything else)."""
    if _is_union(tp):
        found = [_object_of(a) for a in _args(tp) if a is not type(None)]
        return found[0] if len(found) == 1 else None
    if _is_array(tp):
        return _object_of(_args(tp)[0]) if _args(tp) else None
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def keys(cls: Any) -> list[tuple[str, str, Any]]:
    """(name, JSON type, nested dataclass or None) of each field, in render's order."""
    hints = typing.get_type_hints(cls)
    return [
        (f.name, type_name(hints[f.name]), _object_of(hints[f.name]))
        for f in dataclasses.fields(cls)
    ]


def json_shape(tp: Any, depth: int = 0) -> list[str]:
    """Markdown lines describing the JSON document of a result of type `tp`."""
    pad = "  " * depth
    if _is_array(tp):
        item = _args(tp)[0]
        if dataclasses.is_dataclass(item):
            return [f"{pad}- an array of objects, each:", *json_shape(item, depth + 1)]
        return [f"{pad}- an array of {type_name(item)}s"]
    lines = []
    for name, kind, nested in keys(tp):
        lines.append(f"{pad}- `{name}`: {kind}{', each:' if kind == 'array of objects' else ''}")
        if nested is not None:
            lines.extend(json_shape(nested, depth + 1))
    return lines


# -- the document ----------------------------------------------------------------------------


def _exit_codes() -> list[str]:
    from dockops import errors

    raised: dict[int, list[str]] = {}
    for name in sorted(vars(errors)):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.DockopsError):
            raised.setdefault(int(value.exit_code), []).append(f"`{name}`")
    lines = ["| code | name | meaning | raised as |", "| --- | --- | --- | --- |"]
    for code in errors.ExitCode:
        lines.append(
            f"| {int(code)} | {code.name} | {MEANINGS[code.name]} "
            f"| {', '.join(raised.get(int(code), []))} |"
        )
    lines.append(
        f"| {INTERRUPTED} | | interrupted: Ctrl-C, or SIGTERM during a long operation "
        "(no temporary file is left) | |"
    )
    return lines


def render() -> str:
    group, ctx = root()
    commands = [(p, c, x) for p, c, x in walk(group, ctx) if p]
    out = [
        "# The dockops command line",
        "",
        "<!-- Generated by `make docs` (python -m dockops.cli.docs) from the CLI itself: do not"
        " edit by hand; tests/unit/cli/test_docs.py fails when this file is stale. -->",
        "",
        _cell(group.help),
        "",
        "Global options, before the command: `--version`, `--debug` (tracebacks; also"
        " `DOCKOPS_DEBUG=1`), `-h`/`--help` (on every command too).",
        "",
        "Every failure is one line on stderr, `dockops: error: ...`, and an exit code:",
        "",
        "## Exit codes",
        "",
        *_exit_codes(),
        "",
        "## --json",
        "",
        "`--json` prints exactly one JSON document on stdout, and nothing else (progress goes to"
        " stderr); `--json` with `--quiet` is a usage error. Datetimes are ISO 8601 in UTC."
        " Each command's keys are listed under it.",
        "",
        "## Commands",
        "",
    ]
    for path, command, _ in commands:
        summary = _cell((command.help or "").split("\n\n")[0])
        anchor = _command_line(path).replace(" ", "-")
        out.append(f"- [`{_command_line(path)}`](#{anchor}): {summary}")
    for path, command, _ in commands:
        out += ["", f"### {_command_line(path)}", ""]
        out += ["```", _usage(path, command), "```", ""]
        for paragraph in (command.help or "").split("\n\n"):
            out += [" ".join(paragraph.split()), ""]
        if hasattr(command, "commands"):
            out.append("Commands: " + ", ".join(f"`{name}`" for name in command.commands) + ".")
            continue
        out += _params_table(command)
        if has_json(command):
            for condition, dotted in JSON_RESULTS[path]:
                out += [
                    "",
                    f"`--json`{' ' + condition if condition else ''} (`dockops.core.{dotted}`):",
                    "",
                    *json_shape(result_type(dotted)),
                ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> None:
    text = render()
    if not argv:
        sys.stdout.write(text)
        return
    from pathlib import Path

    from dockops.atomic import atomic_writer

    with atomic_writer(Path(argv[0])) as out:
        out.write(text.encode())


if __name__ == "__main__":
    main(sys.argv[1:])
