"""The dockops entry point: the root Typer app and the one error boundary.

Start-up is most of a short command's time, so `run()` builds only what the command line
needs: `dockops --version` alone is answered before Typer is imported (its import: 43-65 ms,
python -X importtime), and a command's app holds only the module that defines that command
(importing every command module and building their click commands: 50-57 ms; images' module
alone: 25-31 ms; five runs each, on a machine shared with other work). Anything else (the
root help, a word that is no command) gets the whole app, so help and errors are Typer's own.
"""

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from dockops import __version__
from dockops.errors import DockopsError, ExitCode

if TYPE_CHECKING:
    import typer

# The command modules of dockops.cli in help order, and the top-level names each registers
# (a unit test holds this to what their register() functions really add).
MODULES = ("images", "archive", "cleanup", "cron", "registry", "doctor")
COMMANDS = {
    "images": "images", "search": "images", "pull": "images", "commit": "images",
    "history": "images", "layers": "images", "tag": "images", "rmi": "images", "push": "images",
    "save": "archive", "load": "archive", "export": "archive", "import": "archive",
    "dangling": "cleanup", "prune-dangling": "cleanup", "prune-images": "cleanup",
    "cron": "cron",
    "registry": "registry", "login": "registry", "logout": "registry",
    "push-private": "registry",
    "doctor": "doctor",
}  # fmt: skip
# Options of the root callback: none takes a value, so the first other word is the command.
# -h/--help are left out: before a command they ask for the root's help, which lists them all.
_ROOT_FLAGS = {"--version", "--debug"}

_debug = False
_apps: dict[tuple[str, ...], "typer.Typer"] = {}


def build_app(modules: tuple[str, ...] = MODULES) -> "typer.Typer":
    """The root app with the commands of `modules` (default: every one), built once each."""
    if modules in _apps:
        return _apps[modules]
    import importlib
    from typing import Annotated

    import typer

    root = typer.Typer(
        name="dockops",
        help="Docker image work on a real engine: lifecycle, cron-grade cleanup, private registry.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for name in modules:
        importlib.import_module(f"dockops.cli.{name}").register(root)

    def version_callback(value: bool) -> None:
        if value:
            sys.stdout.write(f"dockops {__version__}\n")
            raise typer.Exit()

    @root.callback()
    def _root(
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=version_callback, is_eager=True, help="Print the version."
            ),
        ] = False,
        debug: Annotated[
            bool, typer.Option("--debug", help="Show tracebacks (also DOCKOPS_DEBUG=1).")
        ] = False,
    ) -> None:
        global _debug
        _debug = _debug or debug

    _apps[modules] = root
    return root


def __getattr__(name: str) -> Any:
    # `app`, the whole app, for whoever inspects it (tests); run() builds what it needs.
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _modules_for(args: list[str]) -> tuple[str, ...]:
    """Only the module of the command named, when one is; every module otherwise."""
    for word in args:
        if word not in _ROOT_FLAGS:
            return (COMMANDS[word],) if word in COMMANDS else MODULES
    return MODULES  # no command named: the root's help, or a usage error naming them all


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
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        try:
            sys.stdout.write(f"dockops {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:
            _reader_left()
        sys.exit(int(ExitCode.OK))
    app = build_app(_modules_for(args))
    import typer

    try:
        result = app(args=args, prog_name="dockops", standalone_mode=False)
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
        _reader_left()
    except Exception as exc:
        if _debugging():
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            int(ExitCode.REFUSED),
        )
    sys.exit(result if isinstance(result, int) else int(ExitCode.OK))


def _reader_left() -> NoReturn:
    # `dockops images | head`: the reader left; that is not an error of ours.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(int(ExitCode.OK))
