"""Options shared by many commands, and the small helpers every command module uses."""

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dockops.reference import validate_image

if TYPE_CHECKING:
    from dockops.engine.api import Engine
    from dockops.progress import ProgressCallback

T = TypeVar("T")

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


NO_REGISTRY = (
    "no private registry: pass --registry HOST:PORT, set DOCKOPS_REGISTRY, "
    "or run dockops registry up"
)


def private_registry(flag: str | None, *, missing: str = NO_REGISTRY) -> str:
    """The registry a command works on: --registry, else $DOCKOPS_REGISTRY, else config.toml.

    Raises:
        InvalidInput: none of them names one (`missing` says so).
    """
    from dockops.config import resolve_registry
    from dockops.errors import InvalidInput

    address = resolve_registry(flag)
    if address is None:
        raise InvalidInput(missing)
    return address


def read_password(from_stdin: bool, *, confirm: bool = False) -> str:
    """The password from stdin (--password-stdin) or a hidden prompt: never from an argument,
    so it stays out of shell history, `ps` and --debug output.

    Raises:
        InvalidInput: empty, or no terminal to prompt on and no --password-stdin.
    """
    import sys

    from dockops.errors import InvalidInput

    if from_stdin:
        # As docker login: one trailing newline (and CR) is not part of the password.
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    else:
        raise InvalidInput("give the password on stdin with --password-stdin")
    if not password:
        raise InvalidInput("empty password")
    return password


def images(refs: list[str]) -> list[str]:
    """Validate every image reference before anything talks to the engine."""
    return [validate_image(ref) for ref in refs]


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, timeout, systemd) unwinds like Ctrl-C, so no temp file is left behind."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def long_running(work: Callable[["Engine", "ProgressCallback"], T], *, progress: bool) -> T:
    """Run one long engine operation (pull, push, save, load, export, import): the engine with
    the long read timeout, progress on stderr when `progress`, and SIGTERM handled like Ctrl-C."""
    from dockops.engine import connect

    return _long_running(connect(long_running=True), work, progress)


def _long_running(engine: Any, work: Callable[[Any, "ProgressCallback"], T], progress: bool) -> T:
    from dockops import progress as progress_output

    with _terminate_as_interrupt(), progress_output.reporter(enabled=progress) as report:
        return work(engine, report)
