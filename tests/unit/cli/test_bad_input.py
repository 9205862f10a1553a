"""Bad input, generated (hypothesis): malformed image references, durations, label filters,
registry addresses and file paths, for every command that takes them. Each must end with exit 2,
one `dockops: error:` line, no traceback, and no connection to anything (engine or registry).

What counts as malformed comes from oracles written here from the sources, not from dockops:
the reference grammar of distribution/reference (regexp.go) that the engine applies, HOST[:PORT]
as RFC 1123 names, IPv4 or [IPv6] with a port 1-65535, and the duration syntax of the CLI
contract. The properties are one-way: what the oracle refuses, dockops refuses before any call.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli

EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

# --- oracles --------------------------------------------------------------------------------

# distribution/reference/regexp.go, transcribed: what the engine itself would take.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::{_TAG})?(?:@{_DIGEST})?",
    re.ASCII,
)
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")


def engine_would_take(text: str) -> bool:
    """An image reference the engine parses, or an image ID (full or short)."""
    if _IMAGE_ID.fullmatch(text):
        return True
    match = _REFERENCE.fullmatch(text)
    if match is None or len(match["name"]) > 255:
        return False
    first, sep, _ = match["name"].partition("/")
    # docker's splitDockerDomain: an upper-case first part is a domain, and must be a valid one
    return not sep or first.lower() == first or bool(re.fullmatch(_DOMAIN, first))


def is_address(text: str) -> bool:
    """HOST or HOST:PORT with HOST an RFC 1123 name, an IPv4 address or a bracketed IPv6 one."""
    host, port = text, None
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::(\d+))?", text)
    if bracketed:
        try:
            ipaddress.IPv6Address(bracketed[1])
        except ValueError:
            return False
        port = bracketed[2]
    else:
        if text.count(":") == 1:
            host, port = text.split(":")
        label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
        if not re.fullmatch(rf"{label}(?:\.{label})*", host, re.ASCII):
            return False
    return port is None or (port.isdigit() and 0 < int(port) < 65536)


def is_duration(text: str) -> bool:
    parts = re.findall(r"(\d+)([smhdw])", text)
    return "".join(n + u for n, u in parts) == text != "" and any(int(n) for n, _ in parts)


# --- strategies -----------------------------------------------------------------------------

_VALID_REFERENCES = st.from_regex(
    re.compile(rf"(?:[a-z0-9.]{{1,12}}(?::[0-9]{{1,5}})?/)?{_COMPONENT}(?::{_TAG})?", re.ASCII),
    fullmatch=True,
)


def _tokens(*tokens: str, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(tokens), max_size=max_size).map("".join)


_JUNK = _tokens(*"abcAZ09._-/:@ \t+*?é", "sha256:", "__", "--", "//", max_size=24)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A valid reference with one thing broken in it."""
    text = draw(_VALID_REFERENCES)
    where = draw(st.integers(0, len(text)))
    bad = draw(st.sampled_from([" ", "A", "@", "::", "/", "//", ":", "@sha256:12", "é", "\n"]))
    return text[:where] + bad + text[where:]


# A word starting with "-" is an option to click, not a value ("commit web -aa" is
# `--author a` and no target: a valid commit); "" is "no reference" where one is optional
# (`commit web ""`, as docker commit), so both are left to the explicit tests.
MALFORMED_REFERENCES = st.one_of(_JUNK, _mutated()).filter(
    lambda t: t != "" and not t.startswith("-") and not engine_would_take(t)
)
MALFORMED_ADDRESSES = st.one_of(
    _tokens(*"ab09.-:/[]_@ ", "https://", "::1", "-a", max_size=20),
    st.builds(lambda p: f"registry.example:{p}", st.integers(65536, 10**7)),
    st.builds(lambda p: f"127.0.0.1:{p}", st.sampled_from(["0", "-1", "", "x", "99999"])),
).filter(lambda t: t not in ("", "--") and not is_address(t))  # "": --registry not given
MALFORMED_DURATIONS = st.text(alphabet=st.sampled_from(list("0123456789smhdwyx .+-:")), max_size=8)
MALFORMED_DURATIONS = MALFORMED_DURATIONS.filter(lambda t: not is_duration(t))
MALFORMED_LABELS = st.builds(
    lambda key, value: key + value,
    st.one_of(st.just(""), st.text(alphabet=" \tab=", min_size=1, max_size=6)),
    st.sampled_from(["", "=", "=yes", "==x"]),
).filter(lambda t: not t.partition("=")[0] or re.search(r"\s", t.partition("=")[0]))

# --- the harness ----------------------------------------------------------------------------


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every socket connection the command tries is recorded and refused: to the engine (unix
    socket) as to a registry (TCP)."""
    tried: list[object] = []

    def connect(self: socket.socket, address: object) -> None:
        tried.append(address)
        raise ConnectionRefusedError(111, "connection refused (recorded by the test)")

    def connect_ex(self: socket.socket, address: object) -> int:
        tried.append(address)
        return 111

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list[object]:
        tried.append(host)  # a DNS lookup is a network call too
        raise socket.gaierror(socket.EAI_NONAME, "lookup refused (recorded by the test)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/dockops-test-none.sock")
    monkeypatch.delenv("DOCKOPS_REGISTRY", raising=False)
    yield tried


def refused(cli: Cli, tried: list[object], *args: str) -> None:
    tried.clear()
    code, out, err = cli(*args)
    assert (code, out) == (2, ""), (args, code, out, err)
    assert err.count("\n") == 1 and err.startswith("dockops: error: "), (args, err)
    assert "Traceback" not in err and "internal error" not in err, (args, err)
    assert tried == [], (args, tried)


def test_the_no_connection_guard_sees_calls(cli: Cli, no_connections: list[object]) -> None:
    code, _, _ = cli("images")  # well-formed: it does try the engine
    assert code == 3 and no_connections


# --- references -----------------------------------------------------------------------------

REFERENCE_COMMANDS = [
    "images {}",
    "pull {}",
    "push {}",
    "history {}",
    "layers busybox {}",
    "tag busybox {}",
    "tag {} busybox",
    "rmi busybox {}",
    "commit web {}",
    "save {} -o {tmp}/x.tar",
    "import {tmp}/fs.tar {}",
    "push-private {} --registry 127.0.0.1:5000",
    "push-private busybox --as {} --registry 127.0.0.1:5000",
    "registry show {} --registry 127.0.0.1:5000",
    "registry rm {} --registry 127.0.0.1:5000",
    "registry tags {} --registry 127.0.0.1:5000",
    "registry prune {} --registry 127.0.0.1:5000",
    "registry up --image {}",
    "registry secure --host 127.0.0.1 --frontend-image {}",
]


def _argv(template: str, value: str, tmp: Path) -> list[str]:
    # The value stays one argument whatever it holds (spaces included).
    return [value if word == "{}" else word.format(tmp=tmp) for word in template.split()]


@pytest.mark.parametrize("template", REFERENCE_COMMANDS)
@EXAMPLES
@given(text=MALFORMED_REFERENCES)
def test_malformed_references_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, text: str
) -> None:
    (tmp_path / "fs.tar").write_bytes(b"\0" * 1024)
    refused(cli, no_connections, *_argv(template, text, tmp_path))


@EXAMPLES
@given(text=st.one_of(_VALID_REFERENCES, _JUNK))
def test_dockops_takes_exactly_the_references_the_engine_takes(text: str) -> None:
    """Both ways, so dockops's check can be neither stricter nor looser than the engine's
    grammar (the junk is mostly refused by both; valid references taken by both)."""
    from dockops.errors import InvalidInput
    from dockops.reference import validate_image

    try:
        validate_image(text)
        taken = True
    except InvalidInput:
        taken = False
    assert taken == engine_would_take(text), f"{text!r}: dockops {taken}, engine the other"


# --- registry addresses ---------------------------------------------------------------------

ADDRESS_COMMANDS = [
    "login {} -u alice --password-stdin",
    "logout {}",
    "push-private busybox --registry {}",
    "registry ls --registry {}",
    "registry tags team/app --registry {}",
    "registry show team/app:1 --registry {}",
    "registry rm team/app:1 --registry {}",
    "registry prune team/app --keep 1 --registry {}",
    "search app --registry {}",
    "doctor --registry {}",
]


@pytest.mark.parametrize("template", ADDRESS_COMMANDS)
@EXAMPLES
@given(text=MALFORMED_ADDRESSES)
def test_malformed_registry_addresses_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, text: str
) -> None:
    refused(cli, no_connections, *_argv(template, text, tmp_path))


@EXAMPLES
@given(text=MALFORMED_ADDRESSES.filter(str.strip))  # an empty DOCKOPS_REGISTRY means "not set"
def test_malformed_registries_in_the_environment_exit_2(
    cli: Cli, no_connections: list[object], monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    with monkeypatch.context() as env:
        env.setenv("DOCKOPS_REGISTRY", text)
        refused(cli, no_connections, "registry", "ls")


# --- durations and label filters ------------------------------------------------------------

DURATION_COMMANDS = [
    "prune-dangling --older-than {} --lock-file {tmp}/lock",
    "prune-dangling --dry-run --older-than {}",
    "prune-images --unused-for {} --lock-file {tmp}/lock",
    "prune-images --dry-run --keep-last 1 --unused-for {}",
    "registry prune team/app --older-than {} --registry 127.0.0.1:5000",
    "cron install prune-dangling --older-than {} --file {tmp}/cron",
    "cron install prune-images --unused-for {} --file {tmp}/cron",
]


@pytest.mark.parametrize("template", DURATION_COMMANDS)
@EXAMPLES
@given(text=MALFORMED_DURATIONS)
def test_malformed_durations_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, text: str
) -> None:
    refused(cli, no_connections, *_argv(template, text, tmp_path))
    assert not (tmp_path / "cron").exists()


LABEL_COMMANDS = [
    "prune-dangling --keep-label {} --lock-file {tmp}/lock",
    "prune-dangling --dry-run --keep-label keep --keep-label {}",
    "prune-images --keep-last 2 --keep-label {} --lock-file {tmp}/lock",
    "cron install prune-dangling --keep-label {} --file {tmp}/cron",
    "cron install prune-images --keep-last 1 --keep-label {} --file {tmp}/cron",
]


@pytest.mark.parametrize("template", LABEL_COMMANDS)
@EXAMPLES
@given(text=MALFORMED_LABELS)
def test_malformed_label_filters_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, text: str
) -> None:
    refused(cli, no_connections, *_argv(template, text, tmp_path))
    assert not (tmp_path / "cron").exists()


@pytest.mark.parametrize("text", ["", "lots", "20XB", "-1GB", "101%", "x%", "%", "1e3", "20 G B"])
def test_malformed_disk_limits_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, text: str
) -> None:
    refused(cli, no_connections, "prune-images", "--max-disk", text, "--lock-file", f"{tmp_path}/l")
    refused(cli, no_connections, "prune-images", "--dry-run", "--max-disk", text)


@pytest.mark.parametrize("args", [(), ("--reference", "app"), ("--keep", "app:*")])
def test_prune_images_without_a_limiting_rule_exits_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, args: tuple[str, ...]
) -> None:
    refused(cli, no_connections, "prune-images", *args, "--lock-file", f"{tmp_path}/lock")
    refused(cli, no_connections, "prune-images", "--keep-last", "-1", *args)
    assert not (tmp_path / "lock").exists()


# --- file paths -----------------------------------------------------------------------------

_NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=20,
).filter(lambda n: n not in (".", ".."))


@st.composite
def _bad_output(draw: st.DrawFn, tmp: Path) -> str:
    """An output path whose folder does not exist, or that is a folder."""
    name = draw(_NAMES)
    if draw(st.booleans()):
        return str(tmp / "no-such-folder" / name)
    (tmp / "folders" / name).mkdir(parents=True, exist_ok=True)
    return str(tmp / "folders" / name)


@st.composite
def _bad_input(draw: st.DrawFn, tmp: Path) -> str:
    """An input path that is missing, a folder, an empty file or unreadable... or holds NUL."""
    name = draw(_NAMES)
    kind = draw(st.sampled_from(["missing", "folder", "empty", "nul"]))
    path = tmp / "inputs" / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir(exist_ok=True)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "nul":
        return str(path) + "\0x"
    return str(path)


OUTPUT_COMMANDS = ["save busybox -o {}", "export web -o {}"]
INPUT_COMMANDS = ["load -i {}", "import {} team/app:1"]


@pytest.mark.parametrize("template", OUTPUT_COMMANDS)
@EXAMPLES
@given(data=st.data())
def test_bad_output_paths_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, data: st.DataObject
) -> None:
    path = data.draw(_bad_output(tmp_path))
    refused(cli, no_connections, *_argv(template, path, tmp_path))


@pytest.mark.parametrize("template", INPUT_COMMANDS)
@EXAMPLES
@given(data=st.data())
def test_bad_input_paths_exit_2_before_any_call(
    cli: Cli, no_connections: list[object], tmp_path: Path, template: str, data: st.DataObject
) -> None:
    path = data.draw(_bad_input(tmp_path))
    refused(cli, no_connections, *_argv(template, path, tmp_path))


def test_search_with_an_empty_registry_and_no_default_is_usage(
    cli: Cli, no_connections: list[object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "none.toml"))
    refused(cli, no_connections, "search", "app", "--registry", "")


def test_a_lock_file_that_cannot_be_opened_exits_2_before_the_engine(
    cli: Cli, no_connections: list[object], tmp_path: Path
) -> None:
    refused(cli, no_connections, "prune-dangling", "--lock-file", str(tmp_path / "none" / "lock"))
