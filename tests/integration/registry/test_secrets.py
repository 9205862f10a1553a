"""The password never shows: not in any process's argv or environment while login, registry
secure, push-private and logout run (children included: the docker-credential helper), not in
the engine's log or the registry's and nginx's, not in --debug output or exception text; and
what is stored is safe (bcrypt of cost >= 10, a helper fed through stdin, no plain text)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import docker
import pytest

from tests.harness.engine import Engine
from tests.support.secured import USER, Secured

# Not the fixture's password: this one is set by the `registry secure` run below, so every
# trace of it comes from commands watched here.
SECRET = "Wh1sper-quietly-4096"
HELPER = "dockopstest"

HELPER_SCRIPT = r"""#!/bin/sh
# A docker-credential helper that keeps one login in $DOCKOPS_TEST_HELPER_STORE. It sleeps a
# little so the process scan sees it; the secret only ever comes in on stdin.
store="$DOCKOPS_TEST_HELPER_STORE"
sleep 0.3
case "$1" in
  store) cat > "$store" ;;
  get) cat > /dev/null
       if [ -s "$store" ]; then cat "$store"
       else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) cat > /dev/null; rm -f "$store" ;;
  list) echo '{}' ;;
  *) exit 2 ;;
esac
"""


@dataclass
class ProcScan:
    """Reads every process's argv and environment, over and over, while commands run."""

    needles: tuple[bytes, ...]
    seen: set[tuple[int, bytes]] = field(default_factory=set)
    leaks: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _read(self, pid: str, name: str) -> bytes:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                return handle.read()
        except OSError:  # gone, or a kernel thread
            return b""

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                argv = self._read(pid, "cmdline")
                environ = self._read(pid, "environ")
                if argv:
                    self.seen.add((int(pid), argv))
                for needle in self.needles:
                    for where, data in (("argv", argv), ("environ", environ)):
                        if needle in data:
                            self.leaks.add(f"pid {pid} {where}: {data[:300]!r}")

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcScan]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def saw(self, *parts: bytes) -> bool:
        return any(all(p in argv for p in parts) for _, argv in self.seen)


def _forms(secret: str, user: str) -> tuple[bytes, ...]:
    """The secret as it could travel: plain, and base64 alone or in user:password."""
    return (
        secret.encode(),
        base64.b64encode(secret.encode()),
        base64.b64encode(f"{user}:{secret}".encode()),
        base64.urlsafe_b64encode(f"{user}:{secret}".encode()),
    )


@pytest.fixture
def helper_env(tmp_path: Path, secured: Secured) -> dict[str, str]:
    """A DOCKER_CONFIG whose credsStore is our helper, on PATH first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / f"docker-credential-{HELPER}"
    script.write_text(HELPER_SCRIPT)
    script.chmod(0o755)
    config = Path(os.environ["DOCKER_CONFIG"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_text(json.dumps({"credsStore": HELPER}))
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKOPS_TEST_HELPER_STORE": str(tmp_path / "helper-store.json"),
    }


def _dockops(
    env: dict[str, str], command: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `dockops COMMAND` (words split on spaces) as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "dockops", *command.split()],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def test_the_password_never_shows_in_processes_logs_or_output(
    secured: Secured,
    helper_env: dict[str, str],
    engine: Engine,
    docker_env: docker.DockerClient,
    tmp_path: Path,
) -> None:
    address, port = secured.address, secured.address.rsplit(":", 1)[1]
    needles = _forms(SECRET, USER) + _forms("wrong-" + SECRET, USER)
    store = Path(helper_env["DOCKOPS_TEST_HELPER_STORE"])
    outputs: list[str] = []
    with ProcScan(needles).running() as scan:
        runs = [
            # `registry secure` sets SECRET as alice's password (htpasswd, then a real check).
            _dockops(
                helper_env,
                "registry secure --name dockops-s --host 127.0.0.1 --port "
                f"{port} --user {USER} --password-stdin --certs-dir {secured.certs_dir} --json",
                stdin=SECRET + "\n",
            ),
            _dockops(helper_env, f"login {address} -u {USER} --password-stdin", SECRET + "\n"),
            _dockops(helper_env, f"push-private busybox --registry {address} --as secret/bb:1"),
            _dockops(
                helper_env,
                f"--debug push-private busybox --registry {address} --as s/b:2 --via daemon",
            ),
        ]
        login = f"--debug login {address} -u {USER} --password-stdin"
        wrong = _dockops(helper_env, login, "wrong-" + SECRET + "\n")
        right_debug = _dockops(helper_env, login, SECRET + "\n")
        runs.append(_dockops(helper_env, f"logout {address}"))
    for run in runs:
        assert run.returncode == 0, (run.args, run.stderr)
        outputs += [run.stdout, run.stderr]
    # A refused login with --debug: the traceback is there, the password is not.
    assert wrong.returncode == 4 and "Traceback" in wrong.stderr
    assert "credentials refused" in wrong.stderr
    assert right_debug.returncode == 0, right_debug.stderr
    outputs += [wrong.stdout, wrong.stderr, right_debug.stdout, right_debug.stderr]

    # The scan worked: it saw the commands and the credential helper they started.
    assert scan.saw(b"dockops", b"login", b"--password-stdin")
    assert scan.saw(b"dockops", b"registry", b"secure")
    assert scan.saw(f"docker-credential-{HELPER}".encode(), b"store")
    assert scan.saw(f"docker-credential-{HELPER}".encode(), b"get")
    assert scan.leaks == set()

    for text in outputs:
        assert not any(n.decode() in text for n in needles), text

    # Logs: the engine's, the registry's and nginx's (which did see the user).
    logs = {
        name: docker_env.api.logs(name, stdout=True, stderr=True)
        for name in ("dockops-s", "dockops-s-frontend")
    }
    assert USER.encode() in logs["dockops-s-frontend"]
    if engine.root is not None:
        logs["dockerd.log"] = (engine.root / "dockerd.log").read_bytes()
    for name, data in logs.items():
        assert not any(n in data for n in needles), name

    # What was stored: the helper got it on stdin (now erased by logout), config.json only
    # lists the login, the htpasswd line is bcrypt of cost >= 10.
    assert not store.exists()
    config = (Path(helper_env["DOCKER_CONFIG"]) / "config.json").read_text()
    assert not any(n.decode() in config for n in needles)
    line = next(
        entry
        for entry in (secured.certs_dir / "htpasswd").read_text().splitlines()
        if entry.startswith(f"{USER}:")
    )
    hashed = line.split(":", 1)[1]
    cost = re.fullmatch(r"\$2[aby]\$(\d\d)\$.{53}", hashed)
    assert cost and int(cost.group(1)) >= 10, hashed
    assert bcrypt.checkpw(SECRET.encode(), hashed.encode())
    for path in secured.certs_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
