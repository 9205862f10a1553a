"""The CLI backbone: error boundary, exit codes, help, start-up cost. No engine needed:
an unreachable engine and a socket that records connections stand in where one is named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import typer.main

from dockops.cli import main
from dockops.cli.main import app
from tests.conftest import Cli

BAD_REFERENCES = [
    ["images", "Bad/Ref"],
    ["pull", "busybox:"],
    ["commit", "web", "UPPER"],
    ["history", "a//b"],
    ["layers", "ok", "bad_"],
    ["tag", "busybox", "x@sha256:12"],
    ["tag", "busybox", "a" * 64],  # an image ID is no name to give an image
    ["rmi", "ok", "NOT OK"],
    ["save", "bad..name", "-o", "x.tar"],
    ["import", "x.tar", "Bad"],
    ["push", "host:port/app"],
    ["push-private", "Bad"],
    ["registry", "show", "x:"],
    ["registry", "rm", "X:y"],
    ["registry", "up", "--image", "Bad"],
    ["login", "https://registry"],
]


@pytest.fixture
def recording_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A unix socket named as DOCKER_HOST that records every connection made to it."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)
    server.settimeout(0.1)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            seen.append(conn.recv(4096))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    yield seen
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("args", BAD_REFERENCES, ids=" ".join)
def test_bad_reference_exits_2_before_any_engine_call(
    args: list[str], cli: Cli, recording_engine: list[bytes]
) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("dockops: error: invalid ")
    assert recording_engine == []


def test_recording_engine_does_see_real_calls(cli: Cli, recording_engine: list[bytes]) -> None:
    # The guard above could not fail if the socket never recorded anything: show it does.
    code, _, err = cli("images")
    assert recording_engine and recording_engine[0].startswith(b"GET /_ping")
    assert code == 3 and err.startswith("dockops: error: ")


def test_unreachable_engine_exits_3_with_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    code, out, err = cli("images")
    assert (code, out) == (3, "")
    assert err == (
        "dockops: error: cannot reach the Docker engine at unix:///nonexistent.sock: "
        "no such file or directory\n"
    )


def test_doctor_json_is_one_document_even_when_failing(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    code, out, err = cli("doctor", "--json")
    assert code == 3 and err == ""
    report = json.loads(out)
    assert report["checks"][0] == {
        "name": "engine",
        "ok": False,
        "detail": "cannot reach the Docker engine at unix:///nonexistent.sock: "
        "no such file or directory",
        "exit_code": 3,
        "warning": False,
    }


def test_usage_errors_are_one_line_exit_2(cli: Cli) -> None:
    code, out, err = cli("images", "--bogus")
    assert (code, out) == (2, "")
    assert err == "dockops: error: No such option: --bogus (see 'dockops images --help')\n"
    code, _, err = cli("registry", "up", "--port", "0")
    assert code == 2 and err.count("\n") == 1


def test_group_without_command_prints_help(cli: Cli) -> None:
    code, out, _ = cli("registry")
    assert code == 0 and "secure" in out


def test_every_command_has_help_text() -> None:
    import typer.main

    def walk(command: object, path: str) -> Iterator[tuple[str, object]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    root = typer.main.get_command(app)
    found = list(walk(root, "dockops"))
    assert len(found) > 30
    for path, command in found:
        assert (getattr(command, "help", None) or "").strip(), f"{path} has no help text"


def _run_subprocess(
    args: list[str], stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockops", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        input=stdin,
    )


def test_password_never_in_debug_output(tmp_path: Path) -> None:
    secret = "S3cret-Never-Shown"
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    env = {"DOCKER_HOST": "unix:///nonexistent.sock", "DOCKER_CONFIG": str(tmp_path)}
    for args in (
        ["--debug", "login", closed, "-u", "u", "--password-stdin"],
        ["--debug", "registry", "secure", "--host", "127.0.0.1", "--user", "u", "--password-stdin"],
    ):
        done = _run_subprocess(args, stdin=secret + "\n", **env)
        assert done.returncode in (3, 4) and "Traceback" in done.stderr
        assert secret not in done.stderr + done.stdout
    assert not list(tmp_path.iterdir())  # nothing stored after a failed login


def test_no_traceback_without_debug_and_one_with_it() -> None:
    quiet = _run_subprocess(["images"], DOCKER_HOST="unix:///nonexistent.sock")
    assert quiet.returncode == 3 and "Traceback" not in quiet.stderr
    loud = _run_subprocess(["--debug", "images"], DOCKER_HOST="unix:///nonexistent.sock")
    assert loud.returncode == 3 and "Traceback" in loud.stderr
    env = _run_subprocess(["images"], DOCKER_HOST="unix:///nonexistent.sock", DOCKOPS_DEBUG="1")
    assert env.returncode == 3 and "Traceback" in env.stderr
    assert env.stderr.rstrip().splitlines()[-1].startswith("dockops: error: cannot reach")


def test_version_imports_neither_docker_rich_requests_nor_cryptography() -> None:
    probe = (
        "import sys\n"
        "from dockops.cli.main import run\n"
        "try:\n    run(['--version'])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = {'docker', 'rich', 'requests', 'cryptography', 'urllib3', 'paramiko',"
        " 'tabulate'}\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    version_line, modules_line = done.stdout.splitlines()
    assert version_line.startswith("dockops ")
    assert modules_line == "0 []"


def test_typer_exit_codes_pass_through(cli: Cli) -> None:
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("dockops ")
    assert isinstance(app, typer.Typer)


REGISTRY_BAD_INPUT = [
    (["registry", "up", "--name", "bad name"], "invalid container name"),
    (["registry", "up", "--network", "overlay"], "choose bridge or host"),
    (["registry", "secure", "--host", "bad host!"], "invalid registry"),
    (["registry", "secure", "--host", "h", "--password-stdin"], "--password-stdin needs --user"),
    (["push-private", "busybox", "--as", "Bad:1", "--registry", "h:1"], "invalid reference"),
    (["push-private", "busybox", "--as", "x.io/a", "--registry", "h:1"], "without a registry"),
    (["push-private", "busybox", "--registry", "https://h"], "invalid registry"),
    (["login", "h:1", "--password-stdin"], "-u USER"),
    (["login", "h:1", "-u", "u"], "--password-stdin"),  # stdin is no terminal here
    (["push", "busybox", "--via", "direct"], "name a registry host"),  # never Docker Hub
]


@pytest.mark.parametrize(
    ("args", "error"), REGISTRY_BAD_INPUT, ids=[" ".join(a) for a, _ in REGISTRY_BAD_INPUT]
)
def test_registry_bad_input_exits_2_before_any_engine_call(
    args: list[str], error: str, cli: Cli, recording_engine: list[bytes]
) -> None:
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and error in err
    assert recording_engine == []


def test_no_password_option_exists(cli: Cli) -> None:
    for command in (["login", "h:1"], ["registry", "secure", "--host", "h"]):
        code, _, err = cli(*command, "--password", "secret")
        assert code == 2 and "No such option: --password" in err


def test_push_private_without_any_registry(
    cli: Cli, recording_engine: list[bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKOPS_REGISTRY", raising=False)
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "none.toml"))
    code, _, err = cli("push-private", "busybox")
    assert code == 2 and "no private registry" in err
    assert recording_engine == []


def test_registry_texts_reach_the_terminal_without_escapes(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names a registry lists and the error texts it sends are printed without their escape
    sequences (a retitled window, a cleared screen, a line break faking another line)."""
    from tests.support.fake_registry import Answer, Seen, serve

    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mweb\x1b[0m\nfake"

    def registry(request: Seen) -> Answer:
        if request.path.startswith("/v2/_catalog"):
            body = {"repositories": [evil]}
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        body = {"errors": [{"code": "DENIED", "message": evil}]}
        return Answer(400, {"Content-Type": "application/json"}, json.dumps(body).encode())

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "config.toml"))
    with serve(registry) as server:
        listed = cli("registry", "ls", "--registry", server.address)
        failed = cli("registry", "tags", "app", "--registry", server.address)
    assert listed.out == "REPOSITORY\nweb fake\n"
    assert failed.code == 1
    assert failed.err == (
        f"dockops: error: {server.address}: GET /v2/app/tags/list: 400 DENIED: web fake\n"
    )


def test_registry_supplied_values_cannot_add_a_line_to_a_summary(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary keeps its own line breaks, never those of a tag or media type the registry
    sends: "x\\ndockops: nothing deleted" would read as a line dockops printed."""
    from tests.support.fake_registry import Answer, Seen, serve

    forged = "x\ndockops: nothing deleted"
    digest = "sha256:" + "a" * 64

    def registry(request: Seen) -> Answer:
        headers = {"Content-Type": "application/json"}
        if request.path.startswith("/v2/r/tags/list"):
            return Answer(200, headers, json.dumps({"name": "r", "tags": ["1", forged]}).encode())
        document = {"schemaVersion": 2, "mediaType": forged, "layers": []}
        headers["Docker-Content-Digest"] = digest
        return Answer(200, headers, json.dumps(document).encode())

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "config.toml"))
    with serve(registry) as server:
        removed = cli("registry", "rm", "r:1", "--force", "--dry-run", "--registry", server.address)
        shown = cli("registry", "show", "r:1", "--registry", server.address)
    assert removed.code == 0, removed.err
    assert removed.out == (
        f"would delete {digest} (1, x dockops: nothing deleted); "
        "run dockops registry gc to free the space\n"
    )
    assert shown.code == 0, shown.err
    assert shown.out == (
        f"{server.address}/r:1 {digest}\nx dockops: nothing deleted; 0 layers; 0B\n"
    )


def test_the_error_boundary_prints_any_message_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Core messages quote the engine and registries as they answered (line breaks, runs of
    blanks, escapes): the boundary alone makes them one line."""
    from dockops.cli.main import _fail

    with pytest.raises(SystemExit) as exited:
        _fail("load x: open /var/lib/docker/tmp/a:\n  no such   file\x1b[31m\r\n", 1)
    assert exited.value.code == 1
    assert (
        capsys.readouterr().err
        == "dockops: error: load x: open /var/lib/docker/tmp/a: no such file\n"
    )


# --- lean start-up: what a short command imports ---------------------------------------------

# Never needed before a command talks to an engine or a registry, nor for help or bad input.
HEAVY = {
    "docker", "requests", "urllib3", "paramiko", "tenacity", "cryptography", "bcrypt",
    "tabulate", "isal", "prometheus_client", "importlib.metadata",
}  # fmt: skip

PROBE = (
    "import sys\n"
    "from dockops.cli.main import run\n"
    "try:\n    run(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    "print(code, ' '.join(sorted(m for m in sys.modules if '.' not in m or m.startswith("
    "('importlib.', 'dockops.cli.')))))\n"
)


def _imported(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        env={"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": "/usr/bin:/bin"},
    )
    code, *modules = done.stdout.splitlines()[-1].split()
    return int(code), set(modules)


def test_version_alone_imports_not_even_typer() -> None:
    code, modules = _imported("--version")
    assert code == 0
    assert modules & {*HEAVY, "typer", "rich", "click"} == set()


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["images", "Bad Ref"], 2),
        (["dangling", "--bogus"], 2),
        (["history", "Bad Ref"], 2),
        (["layers", "Bad Ref"], 2),
        (["doctor", "--bogus"], 2),
    ],
)
def test_short_commands_import_neither_rich_nor_any_engine_or_registry_library(
    args: list[str], exit_code: int
) -> None:
    code, modules = _imported(*args)
    assert code == exit_code
    assert modules & {*HEAVY, "rich"} == set()
    # Only the named command's module (and what it imports): the others' cost is not paid.
    assert {"dockops.cli.archive", "dockops.cli.registry"} & modules == set()


def test_help_imports_rich_for_itself_and_nothing_heavy() -> None:
    code, modules = _imported("images", "--help")
    assert code == 0
    assert modules & HEAVY == set()


def test_command_map_is_what_each_module_registers() -> None:
    every: set[str] = set()
    for module in main.MODULES:
        names = set(_commands(main.build_app((module,))))
        assert names == {name for name, owner in main.COMMANDS.items() if owner == module}
        every |= names
    assert set(_commands(main.build_app())) == every == set(main.COMMANDS)


def _commands(app: typer.Typer) -> list[str]:
    return list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_help_before_the_command_is_the_root_help(cli: Cli) -> None:
    code, out, _ = cli("--help", "images")
    assert code == 0
    for name in main.COMMANDS:
        assert name in out


def test_version_fast_or_through_typer_says_the_same(cli: Cli) -> None:
    assert cli("--version") == cli("--debug", "--version")
