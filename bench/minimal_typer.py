"""The floor dockops' start-up is measured against: a one-command Typer app with --version."""

from typing import Annotated

import typer

app = typer.Typer()


def _version(value: bool) -> None:
    if value:
        print("minimal 0")
        raise typer.Exit()


@app.command()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """Do nothing."""


if __name__ == "__main__":
    app()
