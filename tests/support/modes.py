"""Secrets on disk have their modes from the moment they exist: private keys and config.json
0600, certificates and the htpasswd file 0644 at most, at every step of every write, whatever
the umask. The last-state tests are in test_registry_pki.py and test_registry_credentials.py;
these watch the steps in between.

How: a file's mode changes only through a call Python audits (open with O_CREAT, chmod/fchmod,
rename, mkdir), so a snapshot of the folder taken at every audit event sees every state a file
passes through, including the temp files the writes rename into place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockops.core.registry import credentials, trust
from dockops.core.registry_server import htpasswd, pki

_watching: list[Callable[[], None]] = []
_inside = threading.local()
_WATCHED_EVENTS = ("open", "os.chmod", "os.rename", "os.mkdir", "os.remove", "tempfile.mkstemp")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if not _watching or event not in _WATCHED_EVENTS or getattr(_inside, "busy", False):
        return
    _inside.busy = True  # the snapshot itself lists folders, which raises audit events
    try:
        for snapshot in _watching:
            snapshot()
    finally:
        _inside.busy = False


sys.addaudithook(_hook)  # hooks cannot be removed: this one only acts while a test watches


@contextlib.contextmanager
def watched(folder: Path, umask: int = 0) -> Iterator[list[tuple[str, int]]]:
    """Record (relative path, mode) of everything under `folder` at every audited file
    operation in the block, run with `umask` (0: nothing is masked, so only the code's own
    modes count)."""
    states: list[tuple[str, int]] = []

    def snapshot() -> None:
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                states.append((str(path.relative_to(folder)), stat.S_IMODE(path.lstat().st_mode)))

    previous = os.umask(umask)
    _watching.append(snapshot)
    try:
        yield states
        snapshot()
    finally:
        _watching.remove(snapshot)
        os.umask(previous)


def _final_name(relative: str) -> str:
    """The file a temp file becomes: atomic_writer writes `.NAME.xxxx.tmp` next to NAME."""
    name = Path(relative).name
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].rsplit(".", 2)[0]
    return name


def _looser(mode: int, allowed: int) -> bool:
    return bool(mode & ~allowed)


@pytest.mark.parametrize("umask", [0, 0o022])
def test_keys_and_certificates_never_have_looser_modes(tmp_path: Path, umask: int) -> None:
    certs = tmp_path / "certs"
    with watched(tmp_path, umask) as states:
        pki.ensure_pki(certs, "registry.example")
        pki.ensure_pki(certs, "registry.example", rotate=True)  # rewrites every file
    files = {_final_name(p) for p, _ in states}
    assert {"ca.key", "ca.crt", "domain.key", "domain.crt"} <= files
    assert any(Path(p).name.endswith(".tmp") for p, _ in states)  # the temps were seen too
    allowed = {"ca.key": 0o600, "domain.key": 0o600, "ca.crt": 0o644, "domain.crt": 0o644}
    for path, mode in states:
        limit = 0o700 if path == "certs" else allowed[_final_name(path)]
        assert not _looser(mode, limit), f"{path} was {oct(mode)} at some point"
    assert dict(states[-5:]) == {
        "certs": 0o700,
        "certs/ca.key": 0o600,
        "certs/ca.crt": 0o644,
        "certs/domain.key": 0o600,
        "certs/domain.crt": 0o644,
    }


@pytest.mark.parametrize("umask", [0, 0o022])
def test_htpasswd_is_never_writable_by_others_and_is_bcrypt_cost_10(
    tmp_path: Path, umask: int
) -> None:
    path = tmp_path / "htpasswd"
    with watched(tmp_path, umask) as states:
        htpasswd.write_htpasswd(path, "alice", "first password")
        htpasswd.write_htpasswd(path, "bob", "second password")
    assert states and all(not _looser(mode, 0o644) for _, mode in states), states
    for line in path.read_text().splitlines():
        hashed = line.split(":", 1)[1]
        assert hashed.startswith("$2y$") and int(hashed.split("$")[2]) >= 10, line


@pytest.mark.parametrize("umask", [0, 0o022])
def test_config_json_is_0600_at_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    config = tmp_path / "docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with watched(tmp_path, umask) as states:
        credentials.store_credentials("registry.example:443", "alice", "s3cret")
        credentials.store_credentials("other.example:443", "bob", "t0ps3cret")
        credentials.erase_credentials("other.example:443")
    names = {_final_name(p) for p, _ in states}
    assert {"config.json", "config.json.lock"} <= names
    for path, mode in states:
        limit = 0o700 if path == "docker" else 0o600
        assert not _looser(mode, limit), f"{path} was {oct(mode)} at some point"
    assert stat.S_IMODE((config / "config.json").stat().st_mode) == 0o600


def test_the_installed_ca_is_0644_and_never_writable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ca.crt"
    source.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    certs_d = tmp_path / "certs.d"
    with watched(certs_d.parent, 0o022) as states:
        trust.install_ca(source, "registry.example:443", certs_d)
    installed = certs_d / "registry.example:443" / "ca.crt"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    for path, mode in states:
        assert not _looser(mode, 0o755), f"{path} was {oct(mode)} at some point"


def test_the_certs_d_folder_is_never_writable_by_others(tmp_path: Path) -> None:
    source = tmp_path / "ca.crt"
    source.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    certs_d = tmp_path / "certs.d"
    with watched(certs_d.parent, 0) as states:
        trust.install_ca(source, "registry.example:443", certs_d)
    for path, mode in states:
        assert not _looser(mode, 0o755), f"{path} was {oct(mode)} at some point"


def test_the_watch_does_see_a_loose_window(tmp_path: Path) -> None:
    """The guard above could not fail if the snapshots missed states: a write that creates a
    file 0644 and only then narrows it is caught."""
    with watched(tmp_path) as states:
        path = tmp_path / "careless.key"
        path.write_bytes(b"secret")  # created 0666 with umask 0
        path.chmod(0o600)
    assert (("careless.key", 0o666)) in states
    assert states[-1] == ("careless.key", 0o600)
