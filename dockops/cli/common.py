"""Options shared by many commands, and the small helpers every command module uses."""

from typing import Annotated

import typer

from dockops.errors import NotBuilt
from dockops.reference import validate_image

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="Print nothing on success.")]
RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        metavar="HOST:PORT",
        help="Private registry (default: $DOCKOPS_REGISTRY, then config.toml).",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be done; change nothing.")
]
NameOpt = Annotated[str, typer.Option("--name", help="Registry container name.")]


def images(refs: list[str]) -> list[str]:
    """Validate every image reference before anything talks to the engine."""
    return [validate_image(ref) for ref in refs]


def not_built(command: str) -> NotBuilt:
    """The error of a command whose contract is registered but whose work has not landed."""
    return NotBuilt(command)
