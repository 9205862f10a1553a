"""The dockops entry point: the root Typer app and the one error boundary."""

import os
import sys
from typing import Annotated, NoReturn

import typer

from dockops import __version__
from dockops.cli import archive, cleanup, doctor, images, registry
from dockops.errors import DockopsError, ExitCode

app = typer.Typer(
    name="dockops",
    help="Docker image work on a real engine: lifecycle, cron-grade cleanup, private registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
images.register(app)
archive.register(app)
cleanup.register(app)
registry.register(app)
doctor.register(app)

_debug = False


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"dockops {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also DOCKOPS_DEBUG=1).")
    ] = False,
) -> None:
    global _debug
    _debug = _debug or debug


def _debugging() -> bool:
    return _debug or os.environ.get("DOCKOPS_DEBUG", "") not in ("", "0") or "--debug" in sys.argv


def _fail(message: str, code: int) -> NoReturn:
    # One line, whatever a registry or engine put in the message (line breaks, escapes).
    from dockops.text import printable

    sys.stderr.write(f"dockops: error: {' '.join(printable(message).split())}\n")
    sys.exit(code)


def run(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry: run the app, map every failure to one line and an exit code."""
    global _debug
    _debug = False
    try:
        result = app(args=argv, prog_name="dockops", standalone_mode=False)
    except DockopsError as exc:
        if _debugging():
            import traceback

            traceback.print_exc()
        _fail(exc.message, int(exc.exit_code))
    except typer.Exit as exc:
        # Typer turns Ctrl-C into a silent Exit(130); say what happened.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _fail("interrupted", 130)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        # A group called without a command: its help is the answer, as `docker` does.
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            sys.exit(int(ExitCode.OK))
        # Usage errors (unknown option, missing argument, bad value): one line, exit 2.
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except BrokenPipeError:
        # `dockops images | head`: the reader left; that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(int(ExitCode.OK))
    except Exception as exc:
        if _debugging():
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            int(ExitCode.REFUSED),
        )
    sys.exit(result if isinstance(result, int) else int(ExitCode.OK))
