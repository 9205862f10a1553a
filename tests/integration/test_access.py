"""The four ways a run cannot get in — engine down, registry down, registry TLS not trusted,
wrong password — each end with its documented exit code (3, 4, 4, 4) and exactly one line on
stderr, for every command that meets them. And TLS verification: on for every registry,
plain HTTP only for loopback or a registry the user named insecure."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from dockops.core.registry_server.pki import ensure_pki
from tests.conftest import Cli
from tests.support.registry_server import free_port
from tests.support.secured import PASSWORD, USER, Secured
from tests.support.tools import error_line


def _verify_failed(err: str) -> bool:
    # OpenSSL's reason code; the text after it (which check failed) is api.py's to add.
    return "certificate verify failed" in err.lower().replace("_", " ")


ENGINE_COMMANDS = [
    ["images"],
    ["pull", "busybox"],
    ["push", "127.0.0.1:5999/x:1"],
    ["save", "busybox", "-o", "{tmp}/x.tar"],
    ["load", "-i", "{tar}"],
    ["prune-dangling", "--lock-file", "{tmp}/lock"],
    ["dangling"],
    ["push-private", "busybox", "--registry", "127.0.0.1:5999"],
]


@pytest.mark.parametrize("args", ENGINE_COMMANDS, ids=lambda a: a[0])
def test_engine_down_is_exit_3_anderror_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    dead = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as server:  # bound, never listening: refused
        server.bind(str(dead))
        monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
        tar = tmp_path / "in.tar"
        tar.write_bytes(b"\0" * 1024)
        argv = [a.format(tmp=tmp_path, tar=tar) for a in args]
        err = error_line(cli(*argv), 3)
    assert f"cannot reach the Docker engine at unix://{dead}: connection refused" in err
    assert not (tmp_path / "x.tar").exists()


REGISTRY_COMMANDS = [
    ["pull", "{r}/dockops/x:1"],
    ["push", "{r}/dockops/x:1"],
    ["push-private", "busybox", "--registry", "{r}"],
    ["registry", "ls", "--registry", "{r}"],
    ["registry", "tags", "dockops/x", "--registry", "{r}"],
    ["registry", "show", "dockops/x:1", "--registry", "{r}"],
    ["search", "x", "--registry", "{r}"],
    ["doctor", "--registry", "{r}"],
]


@pytest.mark.parametrize("args", REGISTRY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_registry_down_is_exit_4_anderror_line(
    docker_env: docker.DockerClient, cli: Cli, args: list[str]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    if args[0] == "push":
        docker_env.api.tag("busybox:latest", f"{address}/dockops/x", "1")
    result = cli(*[a.format(r=address) for a in args])
    if args[0] == "doctor":  # a report on stdout, by design; its exit code is the first failure
        assert result.code == 4 and "unreachable" in result.out
        return
    # pull/push print plain progress lines before the error when stderr is no TTY
    lines = result.err.rstrip("\n").splitlines()
    assert result.code == 4 and result.out == "", result
    assert lines[-1].startswith("dockops: error: ") and "Traceback" not in result.err
    assert sum(line.startswith("dockops: error") for line in lines) == 1
    assert "connection refused" in lines[-1] or "unreachable" in lines[-1]


@pytest.fixture
def untrusted(secured: Secured) -> Iterator[Secured]:
    """The secured registry, with its CA taken out of the engine's (and dockops's) certs.d."""
    ca = secured.certs_d / secured.address / "ca.crt"
    kept = ca.read_bytes()
    ca.unlink()
    try:
        yield secured
    finally:
        ca.write_bytes(kept)


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_untrusted_tls_and_a_wrong_password_are_exit_4_anderror_line(
    untrusted: Secured, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = untrusted.address
    for args in (
        ["login", address, "-u", USER, "--password-stdin"],
        ["push-private", "busybox", "--registry", address],
        ["registry", "ls", "--registry", address],
        ["search", "bb", "--registry", address],
    ):
        _stdin(monkeypatch, PASSWORD + "\n")
        err = error_line(cli(*args), 4)
        assert f"{address}: TLS: " in err and _verify_failed(err), (args, err)

    (untrusted.certs_d / address / "ca.crt").write_bytes(
        (untrusted.certs_dir / "ca.crt").read_bytes()
    )
    _stdin(monkeypatch, "not the password\n")
    err = error_line(cli("login", address, "-u", USER, "--password-stdin"), 4)
    assert "credentials refused" in err and "not the password" not in err
    _stdin(monkeypatch, PASSWORD + "\n")
    assert cli("login", address, "-u", USER, "--password-stdin").code == 0


def test_an_untrusted_certificate_names_the_certs_d_file_to_fix_it(
    untrusted: Secured, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    fix = str(untrusted.certs_d / untrusted.address / "ca.crt")
    for args in (
        ["login", untrusted.address, "-u", USER, "--password-stdin"],
        ["push-private", "busybox", "--registry", untrusted.address],
        ["registry", "ls", "--registry", untrusted.address],
        ["search", "bb", "--registry", untrusted.address],
    ):
        _stdin(monkeypatch, PASSWORD + "\n")
        err = error_line(cli(*args), 4)
        assert f"; to trust its CA, put it in {fix} " in err, (args, err)


# --- TLS verification policy ----------------------------------------------------------------


def _loopback_alias() -> tuple[str, str] | None:
    """A host name other than localhost that /etc/hosts maps to a loopback address (the
    machine's own name, usually): dockops must treat it as any remote registry. Read from the
    file, not the resolver, so the test never asks a DNS server."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        address, *names = line.split("#", 1)[0].split() or [""]
        if address.startswith("127."):
            for name in names:
                if not name.startswith("localhost"):
                    return name, address
    return None


class _V2(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"repositories": ["policy/probe"]} if "_catalog" in self.path else {})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve(address: str, context: ssl.SSLContext | None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer((address, 0), _V2)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_unless_loopback_or_named_insecure(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alias = _loopback_alias()
    if alias is None:
        pytest.skip("no host name other than localhost maps to loopback in /etc/hosts")
    name, loopback = alias
    certs_d = tmp_path / "certs.d"
    monkeypatch.setenv("DOCKOPS_CERTS_D", str(certs_d))
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("DOCKOPS_INSECURE_REGISTRIES", raising=False)
    pki = ensure_pki(tmp_path / "pki", name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.crt, pki.key)

    with _serve(loopback, context) as tls_port, _serve(loopback, None) as http_port:
        tls, plain = f"{name}:{tls_port}", f"{name}:{http_port}"
        # A certificate from a CA nobody trusts: refused, and never retried over plain HTTP.
        err = error_line(cli("registry", "ls", "--registry", tls), 4)
        assert f"{tls}: TLS: " in err and _verify_failed(err)
        # Its CA in certs.d/HOST:PORT/ca.crt: verified and accepted.
        (certs_d / tls).mkdir(parents=True)
        shutil.copy(pki.ca_crt, certs_d / tls / "ca.crt")
        trusted = cli("registry", "ls", "--registry", tls, "--json")
        assert trusted.code == 0 and json.loads(trusted.out) == ["policy/probe"], trusted
        # Plain HTTP under a name that is not loopback: refused...
        err = error_line(cli("registry", "ls", "--registry", plain), 4)
        assert f"{plain}: TLS: " in err
        # ...unless the user names it insecure, or it is a loopback address.
        monkeypatch.setenv("DOCKOPS_INSECURE_REGISTRIES", plain)
        assert cli("registry", "ls", "--registry", plain).code == 0
        monkeypatch.delenv("DOCKOPS_INSECURE_REGISTRIES")
        assert cli("registry", "ls", "--registry", f"{loopback}:{http_port}").code == 0
