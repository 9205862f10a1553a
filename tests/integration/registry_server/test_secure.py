"""registry secure end to end: a self-signed CA, nginx with TLS and basic auth in front of
registry:2 (both on the host network, 127.0.0.1), the daemon's trust through its own certs.d,
logins that dockops and the docker CLI share both ways, and a registry:2 on every address that
secure moves to loopback, as seen from a second host (a network namespace of the test's own)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_server import free_port
from tests.support.second_host import SecondHost, second_host
from tests.support.secured import PASSWORD, USER, Secured, feed_stdin
from tests.support.tools import commit, docker_cli, error_line


def test_secure_files_chain_and_answers(secured: Secured) -> None:
    from cryptography import x509

    doc = secured.doc
    assert doc["registry"] == secured.address and doc["frontend"] == "created"
    assert doc["ca_created"] is True and doc["cert_created"] is True
    # registry up --bind 127.0.0.1 on the host network: nothing to close.
    assert doc["backend"]["change"] == "unchanged" and doc["backend"]["was"] == []
    assert doc["check"] == {
        "unauthenticated": 401,
        "api_version_header": True,
        "authenticated": 200,
        "skipped": None,
    }
    modes = {p.name: p.stat().st_mode & 0o777 for p in secured.certs_dir.iterdir() if p.is_file()}
    assert modes["ca.key"] == 0o600 and modes["domain.key"] == 0o600
    # nginx's workers run unprivileged and read the htpasswd file.
    assert modes["htpasswd"] == 0o644
    assert (secured.certs_dir / "htpasswd").read_text().startswith(f"{USER}:$2y$")

    ca = x509.load_pem_x509_certificate((secured.certs_dir / "ca.crt").read_bytes())
    leaf = x509.load_pem_x509_certificates((secured.certs_dir / "domain.crt").read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    leaf.verify_directly_issued_by(ca)

    # The daemon's trust: its certs.d holds our CA for HOST:PORT.
    installed = secured.certs_d / secured.address / "ca.crt"
    assert installed.read_bytes() == (secured.certs_dir / "ca.crt").read_bytes()
    assert doc["trusted_at"] == str(installed)

    # Independent requests, verified against the CA.
    url = f"https://{secured.address}/v2/"
    ca_file = str(secured.certs_dir / "ca.crt")
    anonymous = requests.get(url, verify=ca_file, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert requests.get(url, verify=ca_file, timeout=10, auth=(USER, "wrong")).status_code == 401
    assert requests.get(url, verify=ca_file, timeout=10, auth=(USER, PASSWORD)).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)  # the system CAs do not know ours


def test_rerun_keeps_the_ca_and_the_frontend(
    secured: Secured, cli: Cli, monkeypatch: pytest.MonkeyPatch, docker_env: docker.DockerClient
) -> None:
    port = secured.address.rsplit(":", 1)[1]
    args = ["registry", "secure", "--name", "dockops-s", "--host", "127.0.0.1", "--port", port]
    args += ["--certs-dir", str(secured.certs_dir), "--json"]
    frontend_id = docker_env.api.inspect_container("dockops-s-frontend")["Id"]
    again = cli(*args)
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert doc["ca_created"] is False and doc["cert_created"] is False
    assert doc["frontend"] == "unchanged" and doc["ca_fingerprint"] == secured.doc["ca_fingerprint"]
    assert doc["check"]["authenticated"] is None  # no password given this time
    assert docker_env.api.inspect_container("dockops-s-frontend")["Id"] == frontend_id

    feed_stdin(monkeypatch, "another password\n")
    rotated = cli(*args, "--rotate", "--user", "bob", "--password-stdin")
    assert rotated.code == 0, rotated.err
    doc = json.loads(rotated.out)
    assert doc["ca_created"] is True and doc["frontend"] == "recreated"
    assert doc["ca_fingerprint"] != secured.doc["ca_fingerprint"]
    assert doc["check"]["authenticated"] == 200
    # Both users can log in: the file keeps alice.
    assert (secured.certs_dir / "htpasswd").read_text().count("$2y$") == 2

    status = cli("registry", "status", "--name", "dockops-s", "--json")
    assert status.code == 0, status.err
    state = json.loads(status.out)
    assert state["tls"] is True and state["trusted"] is True
    assert state["address"] == secured.address and state["answer"] == "401 (login needed)"
    assert state["frontend"]["state"] == "running" and state["frontend"]["restart"] == "always"
    # A CA in certs.d that is not this registry's does not count as trust.
    (secured.certs_d / secured.address / "ca.crt").write_bytes(b"another CA")
    state = json.loads(cli("registry", "status", "--name", "dockops-s", "--json").out)
    assert state["trusted"] is False


def test_a_daemon_push_without_login_gets_the_login_hint(
    secured: Secured, cli: Cli, docker_env: docker.DockerClient
) -> None:
    registry = secured.address
    # The daemon says it in other words ("no basic auth credentials", or nginx's "plain HTTP
    # request was sent to HTTPS port"): the same hint as push-private's.
    docker_env.api.tag("busybox:latest", f"{registry}/anon/bb", "1")
    daemon = cli("push", f"{registry}/anon/bb:1")
    assert daemon.code == 4, daemon.err
    assert daemon.err.endswith(f"authentication required: run dockops login {registry}\n")


def test_login_push_and_docker_cli_interop(
    secured: Secured,
    cli: Cli,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    docker_env: docker.DockerClient,
) -> None:
    registry = secured.address
    anonymous = cli("push-private", "busybox", "--registry", registry)
    assert anonymous.code == 4
    assert (
        anonymous.err == f"dockops: error: authentication required: run dockops login {registry}\n"
    )

    before = cli("doctor", "--json")  # the default registry, from config.toml
    assert before.code == 4, before.out
    checks = {c["name"]: c for c in json.loads(before.out)["checks"]}
    assert checks["registry"]["ok"] and checks["trust"]["ok"]
    assert checks["trust"]["detail"] == f"CA {secured.certs_d / registry / 'ca.crt'}"
    assert not checks["credentials"]["ok"] and "dockops login" in checks["credentials"]["detail"]

    feed_stdin(monkeypatch, "wrong\n")
    refused = cli("login", registry, "-u", USER, "--password-stdin")
    assert refused.code == 4 and "credentials refused" in refused.err
    assert "wrong" not in refused.err

    feed_stdin(monkeypatch, PASSWORD + "\n")
    logged = cli("login", registry, "-u", USER, "--password-stdin")
    assert logged.code == 0, logged.err
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    assert registry in json.loads(config.read_text())["auths"]

    after = cli("doctor", "--registry", registry, "--json")
    assert after.code == 0, after.out
    assert json.loads(after.out)["registry"] == registry
    # by name: the backend check comes after it
    assert {c["name"]: c["detail"] for c in json.loads(after.out)["checks"]}[
        "credentials"
    ] == "accepted (config.json)"
    # registry status asks /v2/ with the stored login, as a push would.
    status = json.loads(cli("registry", "status", "--name", "dockops-s", "--json").out)
    assert status["answer"] == "200"

    pushed = cli("push-private", "busybox", "--as", "secure/bb:1", "--json")  # config default
    assert pushed.code == 0, pushed.err
    ref = f"{registry}/secure/bb:1"
    assert json.loads(pushed.out)["reference"] == ref

    # The registry API commands go through the TLS frontend with the stored login.
    listed = cli("registry", "ls", "--json")
    assert listed.code == 0 and json.loads(listed.out) == ["secure/bb"]
    shown = cli("registry", "show", "secure/bb:1", "--json")
    assert shown.code == 0 and json.loads(shown.out)["digest"] == json.loads(pushed.out)["digest"]
    assert json.loads(cli("search", "bb", "--registry", registry, "--json").out) == [
        {"repository": "secure/bb", "tags": ["1"]}
    ]

    # After dockops login, a plain docker pull works.
    pulled = docker_cli(engine.host, "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert docker_env.images.get(ref).id == docker_env.images.get("busybox:latest").id

    out = cli("logout", registry)
    assert out.code == 0 and f"removed the login for {registry}" in out.out
    assert registry not in json.loads(config.read_text()).get("auths", {})
    assert cli("logout", registry).out == f"not logged in to {registry}\n"

    # After a plain docker login, dockops push-private works.
    login = docker_cli(
        engine.host, "login", registry, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert login.returncode == 0, login.stderr
    again = cli("push-private", "busybox", "--as", "secure/bb:2", "--json")
    assert again.code == 0, again.err

    # A re-run of secure without a password proves the 200 with the stored login.
    port = registry.rsplit(":", 1)[1]
    rerun = cli(
        "registry", "secure", "--name", "dockops-s", "--host", "127.0.0.1", "--port", port,
        "--certs-dir", str(secured.certs_dir), "--json",
    )  # fmt: skip
    assert rerun.code == 0, rerun.err
    assert json.loads(rerun.out)["check"]["authenticated"] == 200


def test_secure_needs_a_registry_and_a_user(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    none = cli("registry", "secure", "--name", "dockops-none", "--host", "127.0.0.1")
    assert none.code == 2 and "registry up first" in none.err
    feed_stdin(monkeypatch, "")
    empty = cli("login", "127.0.0.1:1", "-u", USER, "--password-stdin")
    assert empty.code == 2 and "empty password" in empty.err
    bad = cli("registry", "secure", "--host", "bad host!", "--port", "8443")
    assert bad.code == 2


def test_direct_push_through_tls_and_auth(
    secured: Secured,
    cli: Cli,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    docker_env: docker.DockerClient,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    registry = secured.address
    anonymous = cli("push-private", "busybox", "--via", "direct")
    assert anonymous.code == 4 and f"dockops login {registry}" in anonymous.err
    feed_stdin(monkeypatch, PASSWORD + "\n")
    assert cli("login", registry, "-u", USER, "--password-stdin").code == 0
    image_id = commit(docker_env, "tls/direct:1", "seq 1 100000 > /n")
    pushed = cli("push-private", "tls/direct:1", "--via", "direct", "--json")
    assert pushed.code == 0, pushed.err
    assert json.loads(pushed.out)["uploaded_layers"] == 2
    docker_env.api.remove_image("tls/direct:1")
    pulled = docker_cli(engine.host, "pull", f"{registry}/tls/direct:1")
    assert pulled.returncode == 0, pulled.stderr
    assert docker_env.images.get(f"{registry}/tls/direct:1").id == image_id


@pytest.fixture
def second() -> Iterator[SecondHost]:
    with second_host() as made:
        yield made


def _secure_args(name: str, host: str, port: int, certs_dir: Path) -> list[str]:
    return [
        "registry", "secure", "--name", name, "--host", host, "--port", str(port),
        "--certs-dir", str(certs_dir), "--no-trust",
    ]  # fmt: skip


def test_secure_closes_the_plain_port_to_other_hosts(
    docker_env: docker.DockerClient,
    cli: Cli,
    second: SecondHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend_port, port = free_port(), free_port()
    # registry up's default bind: every address, as `docker run -p 5000:5000` would.
    up = ["registry", "up", "--name", "dockops-n", "--network", "host"]
    up += ["--port", str(backend_port)]
    assert cli(*up).code == 0
    plain = f"127.0.0.1:{backend_port}"
    pushed = cli(
        "push-private", "busybox", "--registry", plain, "--as", "kept/bb:1", "--via", "daemon"
    )
    assert pushed.code == 0, pushed.err
    # The second host sees what listens on every address here: the check below means something.
    assert second.connect(backend_port) == "connected"
    try:
        feed_stdin(monkeypatch, PASSWORD + "\n")
        secure = _secure_args("dockops-n", second.host_ip, port, tmp_path / "certs")
        result = cli(*secure, "--user", USER, "--password-stdin", "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out)["backend"] == {
            "change": "rebound",
            "was": [f"0.0.0.0:{backend_port}"],
            "now": plain,
        }
        assert second.connect(backend_port) == "refused"
        # The frontend is the way in, and the image pushed before secure is still there.
        ca = str(tmp_path / "certs" / "ca.crt")
        status, body = second.get(port, "/v2/kept/bb/tags/list", ca, USER, PASSWORD)
        assert (status, json.loads(body)) == (200, {"name": "kept/bb", "tags": ["1"]})
        remade = docker_env.api.inspect_container("dockops-n")
        assert f"REGISTRY_HTTP_ADDR={plain}" in remade["Config"]["Env"]
        mounts = {m["Destination"]: m.get("Name") for m in remade["Mounts"]}
        assert mounts["/var/lib/registry"] == "dockops-n-data"
        assert remade["HostConfig"]["RestartPolicy"]["Name"] == "always"

        # registry up again with the same settings: still the same, still closed, and the
        # address it gives (and makes the default) is the TLS one.
        again = cli(*up, "--json")
        assert again.code == 0, again.err
        doc = json.loads(again.out)
        assert doc["state"] == "already up" and doc["id"] == remade["Id"]
        assert doc["address"] == f"{second.host_ip}:{port}"
        assert second.connect(backend_port) == "refused"

        rerun = cli(*secure)
        assert rerun.code == 0, rerun.err
        assert f"plain HTTP only on {plain};" in rerun.out
        assert docker_env.api.inspect_container("dockops-n")["Id"] == remade["Id"]
    finally:
        cli("registry", "down", "--name", "dockops-n", "--purge")


def test_secure_refuses_when_the_plain_port_cannot_move(
    docker_env: docker.DockerClient,
    cli: Cli,
    second: SecondHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend_port = free_port()
    up = ["registry", "up", "--name", "dockops-r", "--network", "host", "--bind", second.host_ip]
    assert cli(*up, "--port", str(backend_port)).code == 0
    before = docker_env.api.inspect_container("dockops-r")["Id"]
    try:
        with socket.socket() as squatter:  # holds the loopback port it would move to
            squatter.bind(("127.0.0.1", backend_port))
            squatter.listen()
            feed_stdin(monkeypatch, PASSWORD + "\n")
            secure = _secure_args("dockops-r", second.host_ip, free_port(), tmp_path / "certs")
            line = error_line(cli(*secure, "--user", USER, "--password-stdin"), 1)
        assert "could not make registry dockops-r reachable from this host only" in line
        assert f"put back as it was, on {second.host_ip}:{backend_port}, and is not secured" in line
        # As it was: the same container, serving where it did, and no frontend.
        found = docker_env.api.inspect_container("dockops-r")
        assert found["Id"] == before and found["State"]["Running"]
        assert second.connect(backend_port) == "connected"
        names = [c["Names"][0] for c in docker_env.api.containers(all=True)]
        assert "/dockops-r-frontend" not in names and "/dockops-r-replaced" not in names
    finally:
        cli("registry", "down", "--name", "dockops-r", "--purge")


def test_a_missing_frontend_image_is_refused_before_the_registry_is_touched(
    docker_env: docker.DockerClient,
    cli: Cli,
    second: SecondHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend_port = free_port()
    # Open to the (test-made) network, so secure would remake it; not on every address here.
    up = ["registry", "up", "--name", "dockops-i", "--network", "host", "--bind", second.host_ip]
    assert cli(*up, "--port", str(backend_port)).code == 0
    before = docker_env.api.inspect_container("dockops-i")
    try:
        feed_stdin(monkeypatch, PASSWORD + "\n")
        secure = _secure_args("dockops-i", "127.0.0.1", free_port(), tmp_path / "certs")
        result = cli(*secure, "--user", USER, "--password-stdin", "--frontend-image", "nosuch:1")
        line = error_line(result, 2)
        assert line == "dockops: error: --frontend-image nosuch:1 is not on this engine"
        # Not remade on loopback: the same container, running, listening where it was.
        after = docker_env.api.inspect_container("dockops-i")
        assert after["Id"] == before["Id"] and after["State"]["Running"]
        assert after["Config"]["Env"] == before["Config"]["Env"]
        answer = requests.get(f"http://{second.host_ip}:{backend_port}/v2/", timeout=10)
        assert answer.status_code == 200
        names = {c["Names"][0] for c in docker_env.api.containers(all=True)}
        assert "/dockops-i-replaced" not in names and "/dockops-i-frontend" not in names
    finally:
        cli("registry", "down", "--name", "dockops-i", "--purge")


def test_the_registry_aside_cannot_come_back_with_the_daemon(
    docker_env: docker.DockerClient,
    cli: Cli,
    second: SecondHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dockops.core.registry_server import deploy
    from dockops.errors import EngineRefused

    up = ["registry", "up", "--name", "dockops-a", "--network", "host", "--bind", second.host_ip]
    assert cli(*up, "--port", str(free_port())).code == 0
    before = docker_env.api.inspect_container("dockops-a")
    aside: list[dict[str, object]] = []

    def look_aside(*args: object, **kwargs: object) -> None:
        # Where a killed secure would stop: the new registry made, the old one aside.
        aside.append(docker_env.api.inspect_container("dockops-a-replaced"))
        raise EngineRefused("the new registry did not answer")

    monkeypatch.setattr(deploy, "wait_ready", look_aside)
    try:
        feed_stdin(monkeypatch, PASSWORD + "\n")
        secure = _secure_args("dockops-a", "127.0.0.1", free_port(), tmp_path / "certs")
        error_line(cli(*secure, "--user", USER, "--password-stdin"), 1)
        [kept] = aside
        assert kept["Id"] == before["Id"] and not kept["State"]["Running"]  # type: ignore[index]
        assert kept["HostConfig"]["RestartPolicy"]["Name"] == "no"  # type: ignore[index]
        # Put back as it was: restart=always again.
        after = docker_env.api.inspect_container("dockops-a")
        assert after["Id"] == before["Id"] and after["State"]["Running"]
        assert after["HostConfig"]["RestartPolicy"]["Name"] == "always"
    finally:
        cli("registry", "down", "--name", "dockops-a", "--purge")


def test_a_registry_left_aside_is_cleared_when_the_registry_is_already_private(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = ["registry", "up", "--name", "dockops-p", "--network", "host", "--bind", "127.0.0.1"]
    up += ["--port", str(free_port())]
    assert cli(*up).code == 0
    # A secure killed after the new registry answered, before it removed the old one.
    docker_env.api.stop("dockops-p", timeout=1)
    docker_env.api.rename("dockops-p", "dockops-p-replaced")
    assert cli(*up).code == 0
    try:
        feed_stdin(monkeypatch, PASSWORD + "\n")
        secure = _secure_args("dockops-p", "127.0.0.1", free_port(), tmp_path / "certs")
        result = cli(*secure, "--user", USER, "--password-stdin", "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out)["backend"]["change"] == "unchanged"
        names = {c["Names"][0] for c in docker_env.api.containers(all=True)}
        assert "/dockops-p-replaced" not in names and "/dockops-p" in names
    finally:
        cli("registry", "down", "--name", "dockops-p", "--purge")


def test_status_and_doctor_warn_while_the_plain_port_is_open(
    secured: Secured, cli: Cli, docker_env: docker.DockerClient
) -> None:
    spec = docker_env.api.inspect_container("dockops-s")["Config"]["Labels"]["dockops.spec"]
    backend_port = json.loads(spec)["port"]
    closed = json.loads(cli("registry", "status", "--name", "dockops-s", "--json").out)
    assert closed["warnings"] == [] and closed["registry"]["exposed"] == []
    checks = json.loads(cli("doctor", "--registry", secured.address, "--json").out)["checks"]
    assert checks[-1] == {
        "name": "backend",
        "ok": True,
        "detail": f"plain HTTP of registry dockops-s only on 127.0.0.1:{backend_port}",
        "exit_code": 0,
        "warning": False,
    }

    # The registry made again behind the frontend's back, with up's default bind.
    docker_env.api.remove_container("dockops-s", force=True)
    up = ["registry", "up", "--name", "dockops-s", "--network", "host"]
    assert cli(*up, "--port", str(backend_port)).code == 0
    warning = (
        f"registry dockops-s is secured, but its plain HTTP (no login, deletes enabled) is "
        f"reachable from the network at 0.0.0.0:{backend_port}: run dockops registry secure "
        f"--name dockops-s again to close it"
    )
    status = cli("registry", "status", "--name", "dockops-s", "--json")
    assert status.code == 0 and status.err == f"warning: {warning}\n"
    doc = json.loads(status.out)
    assert doc["warnings"] == [warning]
    assert doc["registry"]["exposed"] == [f"0.0.0.0:{backend_port}"]
    human = cli("registry", "status", "--name", "dockops-s")
    assert human.err == f"warning: {warning}\n"
    doctor = cli("doctor", "--registry", secured.address, "--json")
    backend = json.loads(doctor.out)["checks"][-1]
    assert backend == {
        "name": "backend", "ok": True, "detail": warning, "exit_code": 0, "warning": True
    }  # fmt: skip
    table = cli("doctor", "--registry", secured.address).out.splitlines()
    assert table[-1].split()[:2] == ["backend", "WARN"]

    # secure again closes it, says so, and the warnings go.
    port = int(secured.address.rsplit(":", 1)[1])
    rerun = cli(*_secure_args("dockops-s", "127.0.0.1", port, secured.certs_dir))
    assert rerun.code == 0, rerun.err
    assert (
        f"plain HTTP moved to 127.0.0.1:{backend_port} (was open at 0.0.0.0:{backend_port})"
        in rerun.out
    )
    status = cli("registry", "status", "--name", "dockops-s", "--json")
    assert status.err == "" and json.loads(status.out)["warnings"] == []
    doctor = cli("doctor", "--registry", secured.address, "--json")
    assert json.loads(doctor.out)["checks"][-1]["warning"] is False


def test_a_registry_left_aside_by_a_killed_secure_is_cleared(
    docker_env: docker.DockerClient,
    cli: Cli,
    second: SecondHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    up = ["registry", "up", "--name", "dockops-k", "--network", "host", "--bind", second.host_ip]
    up += ["--port", str(free_port())]
    assert cli(*up).code == 0
    # What a secure killed between moving the old registry aside and removing it leaves.
    docker_env.api.stop("dockops-k", timeout=1)
    docker_env.api.rename("dockops-k", "dockops-k-replaced")
    assert cli(*up).code == 0
    try:
        feed_stdin(monkeypatch, PASSWORD + "\n")
        secure = _secure_args("dockops-k", second.host_ip, free_port(), tmp_path / "certs")
        assert cli(*secure, "--user", USER, "--password-stdin").code == 0
        names = {c["Names"][0] for c in docker_env.api.containers(all=True)}
        assert "/dockops-k-replaced" not in names and "/dockops-k" in names
        # And registry down clears one too.
        docker_env.api.create_container(
            "busybox:latest",
            name="dockops-k-replaced",
            labels={"dockops.registry": "dockops-k", "dockops.role": "registry"},
            host_config=docker_env.api.create_host_config(network_mode="none"),
        )
    finally:
        down = cli("registry", "down", "--name", "dockops-k", "--purge", "--json")
    assert down.code == 0, down.err
    assert "container dockops-k-replaced" in json.loads(down.out)["removed"]
