"""User configuration: config.toml plus environment; a flag wins over both.

Default registry: --registry flag > DOCKOPS_REGISTRY > `registry` in the config file.
The file is $DOCKOPS_CONFIG, else $XDG_CONFIG_HOME/dockops/config.toml, else
~/.config/dockops/config.toml.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockops.atomic import write_atomic
from dockops.errors import InvalidInput
from dockops.reference import validate_registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Config:
    path: Path
    registry: str | None = None
    insecure_registries: tuple[str, ...] = ()


def config_path() -> Path:
    explicit = os.environ.get("DOCKOPS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dockops" / "config.toml"


def _read_table(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            table: dict[str, Any] = tomllib.load(handle)
            return table
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc.strerror}") from None


def load_config() -> Config:
    """Read the config file (a missing file is an empty config).

    Raises:
        InvalidInput: the file exists but is not valid TOML, or holds a bad registry address.
    """
    path = config_path()
    table = _read_table(path)
    registry = table.get("registry")
    if registry is not None:
        if not isinstance(registry, str):
            raise InvalidInput(f"config file {path}: 'registry' must be a string")
        validate_registry(registry)
    insecure = table.get("insecure_registries", [])
    if not isinstance(insecure, list) or not all(isinstance(i, str) for i in insecure):
        raise InvalidInput(f"config file {path}: 'insecure_registries' must be a list of strings")
    return Config(
        path=path,
        registry=registry,
        insecure_registries=tuple(validate_registry(i) for i in insecure),
    )


def resolve_registry(flag: str | None) -> str | None:
    """The default private registry, by precedence; None when nothing names one.

    Raises:
        InvalidInput: the chosen value is not a HOST[:PORT] address.
    """
    for value in (flag, os.environ.get("DOCKOPS_REGISTRY")):
        if value:
            return validate_registry(value)
    return load_config().registry


def update_config(**values: Any) -> Config:
    """Merge `values` into the config file, written atomically; keys set to None are removed."""
    import tomli_w

    path = config_path()
    table = _read_table(path)
    for key, value in values.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    write_atomic(path, tomli_w.dumps(table).encode(), mode=0o644)
    return load_config()
