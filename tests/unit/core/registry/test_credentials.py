"""Credentials land where the docker CLI reads them, in its format, through real helper programs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dockops.core.registry import credentials
from dockops.core.registry.credentials import (
    Credentials,
    auth_config,
    docker_config_dir,
    docker_config_path,
    erase_credentials,
    get_credentials,
    store_credentials,
)
from dockops.errors import InvalidInput
from tests.support.marks import root_only
from tests.support.modes import final_name, looser, watched

REGISTRY = "reg.example:5000"
SECRET = "s3cr:et-pässword"

# A docker-credential-helpers program, per its protocol, keeping entries in a JSON file.
# FAKE_HELPER_FAIL=locked fails every action; =echo fails echoing its stdin (a careless helper).
HELPER = """#!{python}
import json, os, sys
store_file = {store!r}
action = sys.argv[1]
data = sys.stdin.read()
fail = os.environ.get("FAKE_HELPER_FAIL")
if fail == "locked":
    print("keychain is locked")
    sys.exit(1)
if fail == "echo":
    print("cannot parse " + data)
    sys.exit(1)
entries = json.load(open(store_file)) if os.path.exists(store_file) else {{}}
if action == "store":
    creds = json.loads(data)
    entries[creds["ServerURL"]] = [creds["Username"], creds["Secret"]]
elif data.strip() not in entries:
    print("credentials not found in native keychain")
    sys.exit(1)
elif action == "get":
    user, secret = entries[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": user, "Secret": secret}}))
elif action == "erase":
    del entries[data.strip()]
json.dump(entries, open(store_file, "w"))
"""


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("FAKE_HELPER_FAIL", raising=False)
    return tmp_path / "docker" / "config.json"


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs docker-credential-fake and -other on PATH; returns the folder of their stores."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("fake", "other"):
        program = bindir / f"docker-credential-{name}"
        store = str(tmp_path / f"{name}.json")
        program.write_text(HELPER.format(python=sys.executable, store=store))
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def write_config(path: Path, config: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


def helper_entries(helpers: Path, name: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = json.loads((helpers / f"{name}.json").read_text())
    return entries


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_config_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert docker_config_dir() == tmp_path / ".docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "elsewhere"))
    assert docker_config_path() == tmp_path / "elsewhere" / "config.json"


def test_store_then_get_round_trip(config_path: Path) -> None:
    assert get_credentials(REGISTRY) is None
    assert store_credentials(REGISTRY, "alice", SECRET) == "config.json"
    assert get_credentials(REGISTRY) == Credentials("alice", SECRET, "config.json")
    assert stat.S_IMODE(config_path.parent.stat().st_mode) == 0o700


def test_file_format_is_what_docker_writes(config_path: Path) -> None:
    store_credentials(REGISTRY, "alice", SECRET)
    text = config_path.read_text()
    assert text.startswith('{\n\t"auths": {\n\t\t"reg.example:5000": {\n\t\t\t"auth": ')
    auth = json.loads(text)["auths"][REGISTRY]["auth"]
    assert base64.b64decode(auth).decode() == f"alice:{SECRET}"
    assert json.loads(text) == {"auths": {REGISTRY: {"auth": b64(f"alice:{SECRET}")}}}


def test_other_keys_and_entries_are_preserved(config_path: Path) -> None:
    original: dict[str, Any] = {
        "auths": {"other:443": {"auth": b64("bob:pw"), "email": "b@x"}},
        "HttpHeaders": {"User-Agent": "Docker-Client/24"},
        "psFormat": "table {{.ID}}",
        "credHelpers": {"gcr.io": "gcloud"},
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
    }
    write_config(config_path, original)
    store_credentials(REGISTRY, "alice", "pw")
    saved = json.loads(config_path.read_text())
    assert saved.pop("auths") == {**original["auths"], REGISTRY: {"auth": b64("alice:pw")}}
    original.pop("auths")
    assert saved == original


@pytest.mark.parametrize(
    "key",
    ["https://reg.example:5000", "http://reg.example:5000/v2/", "https://reg.example:5000/v1/"],
)
def test_url_form_keys_are_found_and_replaced(config_path: Path, key: str) -> None:
    write_config(config_path, {"auths": {key: {"auth": b64("old:pw")}, "x:1": {}}})
    assert get_credentials(REGISTRY) == Credentials("old", "pw", "config.json")
    store_credentials(REGISTRY, "new", "pw2")
    assert json.loads(config_path.read_text())["auths"] == {
        "x:1": {},
        REGISTRY: {"auth": b64("new:pw2")},
    }


def test_docker_hub_uses_the_legacy_key(config_path: Path) -> None:
    write_config(config_path, {"auths": {"https://index.docker.io/v1/": {"auth": b64("a:b")}}})
    assert get_credentials("docker.io") == Credentials("a", "b", "config.json")
    store_credentials("index.docker.io", "c", "d")
    assert list(json.loads(config_path.read_text())["auths"]) == ["https://index.docker.io/v1/"]


def test_username_password_fields_are_honoured(config_path: Path) -> None:
    write_config(config_path, {"auths": {REGISTRY: {"username": "carol", "password": "pw"}}})
    assert get_credentials(REGISTRY) == Credentials("carol", "pw", "config.json")


def test_identity_token(config_path: Path) -> None:
    write_config(config_path, {"auths": {REGISTRY: {"auth": b64("dave:"), "identitytoken": "T"}}})
    assert get_credentials(REGISTRY) == Credentials("<token>", "T", "config.json")
    assert auth_config(REGISTRY) == {
        "username": "<token>",
        "password": "T",
        "serveraddress": REGISTRY,
        "identitytoken": "T",
    }
    store_credentials("other:1", "<token>", "T2")
    assert json.loads(config_path.read_text())["auths"]["other:1"] == {"identitytoken": "T2"}


def test_helper_round_trip_leaves_no_plain_text(config_path: Path, helpers: Path) -> None:
    old_login = {f"https://{REGISTRY}": {"auth": b64("old:pw")}}
    write_config(config_path, {"auths": old_login, "credsStore": "fake"})
    assert store_credentials(REGISTRY, "alice", SECRET) == "helper docker-credential-fake"
    assert helper_entries(helpers, "fake") == {REGISTRY: ["alice", SECRET]}
    # docker's own layout with a store: an empty entry lists the login, no secret in the file
    assert json.loads(config_path.read_text())["auths"] == {REGISTRY: {}}
    assert get_credentials(REGISTRY) == Credentials(
        "alice", SECRET, "helper docker-credential-fake"
    )
    assert erase_credentials(REGISTRY) is True
    assert helper_entries(helpers, "fake") == {}
    assert json.loads(config_path.read_text())["auths"] == {}
    assert erase_credentials(REGISTRY) is False
    assert get_credentials(REGISTRY) is None


def test_helper_gets_docker_hub_under_its_legacy_url(config_path: Path, helpers: Path) -> None:
    write_config(config_path, {"credsStore": "fake"})
    store_credentials("docker.io", "a", "b")
    assert helper_entries(helpers, "fake") == {"https://index.docker.io/v1/": ["a", "b"]}


def test_cred_helpers_beat_creds_store_beats_file(config_path: Path, helpers: Path) -> None:
    (helpers / "fake.json").write_text(json.dumps({REGISTRY: ["from-store", "1"]}))
    (helpers / "other.json").write_text(json.dumps({REGISTRY: ["from-helper", "2"]}))
    config = {
        "auths": {REGISTRY: {"auth": b64("from-file:3")}},
        "credsStore": "fake",
        "credHelpers": {REGISTRY: "other"},
    }
    write_config(config_path, config)
    assert get_credentials(REGISTRY) == Credentials(
        "from-helper", "2", "helper docker-credential-other"
    )
    del config["credHelpers"]
    write_config(config_path, config)
    assert get_credentials(REGISTRY) == Credentials(
        "from-store", "1", "helper docker-credential-fake"
    )
    del config["credsStore"]
    write_config(config_path, config)
    assert get_credentials(REGISTRY) == Credentials("from-file", "3", "config.json")


def test_missing_helper_is_named_and_secret_kept_out(config_path: Path) -> None:
    write_config(config_path, {"credHelpers": {REGISTRY: "nothere"}})
    for call in (
        lambda: get_credentials(REGISTRY),
        lambda: store_credentials(REGISTRY, "alice", SECRET),
        lambda: erase_credentials(REGISTRY),
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        assert "docker-credential-nothere" in str(info.value)
        assert str(config_path) in str(info.value)
        assert SECRET not in str(info.value)
    assert json.loads(config_path.read_text()) == {"credHelpers": {REGISTRY: "nothere"}}


def test_failing_helper(config_path: Path, helpers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(config_path, {"credsStore": "fake"})
    monkeypatch.setenv("FAKE_HELPER_FAIL", "locked")
    with pytest.raises(
        InvalidInput, match=r"^docker-credential-fake get failed: keychain is locked$"
    ):
        get_credentials(REGISTRY)
    monkeypatch.setenv("FAKE_HELPER_FAIL", "echo")
    with pytest.raises(InvalidInput, match="docker-credential-fake store failed") as info:
        store_credentials(REGISTRY, "alice", SECRET)
    assert SECRET not in str(info.value)


def test_mode_is_0600_even_if_the_file_was_looser(config_path: Path) -> None:
    write_config(config_path, {"auths": {}})
    config_path.chmod(0o644)
    store_credentials(REGISTRY, "alice", "pw")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((config_path.parent / "config.json.lock").stat().st_mode) == 0o600


def test_symlinked_config_is_written_through(config_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "docker.json"
    write_config(target, {"psFormat": "x"})
    config_path.parent.mkdir()
    config_path.symlink_to(target)
    store_credentials(REGISTRY, "alice", "pw")
    assert config_path.is_symlink()
    assert json.loads(target.read_text())["auths"][REGISTRY] == {"auth": b64("alice:pw")}
    assert get_credentials(REGISTRY) == Credentials("alice", "pw", "config.json")


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", '{"auths": []}', '{"credHelpers": "x"}', '{"credsStore": 1}'],
)
def test_malformed_file_is_refused_and_left_untouched(config_path: Path, text: str) -> None:
    config_path.parent.mkdir()
    config_path.write_text(text)
    for call in (
        lambda: get_credentials(REGISTRY),
        lambda: store_credentials(REGISTRY, "alice", "pw"),
        lambda: erase_credentials(REGISTRY),
    ):
        with pytest.raises(InvalidInput, match=str(config_path)):
            call()
    assert config_path.read_text() == text


def test_bad_auth_value_is_refused(config_path: Path) -> None:
    write_config(config_path, {"auths": {REGISTRY: {"auth": "not base64!"}}})
    with pytest.raises(InvalidInput, match="not base64 of user:password"):
        get_credentials(REGISTRY)


def test_empty_or_missing_file_has_no_credentials(config_path: Path) -> None:
    assert get_credentials(REGISTRY) is None
    assert erase_credentials(REGISTRY) is False
    assert not config_path.parent.exists()
    config_path.parent.mkdir()
    config_path.write_text("\n")
    assert get_credentials(REGISTRY) is None
    assert auth_config(REGISTRY) is None


def test_erase_reports_whether_anything_went(config_path: Path) -> None:
    write_config(config_path, {"auths": {f"https://{REGISTRY}/v1/": {"auth": b64("a:b")}}})
    assert erase_credentials("other:1") is False
    assert erase_credentials(REGISTRY) is True
    assert json.loads(config_path.read_text()) == {"auths": {}}
    assert erase_credentials(REGISTRY) is False


def test_concurrent_threads_lose_no_entry(config_path: Path) -> None:
    def login(worker: int) -> None:
        for n in range(5):
            store_credentials(f"reg{worker}-{n}:5000", f"user{worker}", "pw")

    threads = [threading.Thread(target=login, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.loads(config_path.read_text())["auths"]) == 40


def test_concurrent_processes_lose_no_entry(config_path: Path) -> None:
    script = (
        "import sys\n"
        "from dockops.core.registry.credentials import store_credentials\n"
        "for n in range(10):\n"
        "    store_credentials(f'proc{sys.argv[1]}-{n}:5000', 'u', 'pw')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(4)]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0, 0]
    assert len(json.loads(config_path.read_text())["auths"]) == 40


@root_only
@pytest.mark.parametrize("mode", [0o600, 0o400], ids=["0600", "0400"])
def test_a_rewrite_under_sudo_keeps_the_files_owner_and_mode(config_path: Path, mode: int) -> None:
    """As docker does: root (sudo) logging in to a user's DOCKER_CONFIG leaves the file theirs."""
    write_config(config_path, {"auths": {}})
    os.chown(config_path, 65534, 65534)
    config_path.chmod(mode)
    store_credentials(REGISTRY, "alice", "pw")
    erase_credentials(REGISTRY)
    info = config_path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, mode)


@root_only
def test_files_root_creates_in_a_users_docker_config_are_that_users(config_path: Path) -> None:
    config_path.parent.mkdir(mode=0o700)
    os.chown(config_path.parent, 65534, 65534)
    store_credentials(REGISTRY, "alice", "pw")
    for name in ("config.json", "config.json.lock"):
        info = (config_path.parent / name).stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o600)


def test_a_symlinked_lock_file_is_not_followed(config_path: Path, tmp_path: Path) -> None:
    config_path.parent.mkdir()
    (config_path.parent / "config.json.lock").symlink_to(tmp_path / "target")
    with pytest.raises(InvalidInput, match=r"cannot open .*config\.json\.lock"):
        store_credentials(REGISTRY, "alice", "pw")
    assert not (tmp_path / "target").exists()


def _docker_cli_writes(config_path: Path) -> None:
    """A real docker CLI rewrites config.json (its whole copy, renamed in), as `docker login`
    does when it has its answer; `docker context use` does it without a registry or an engine."""
    env = {**os.environ, "DOCKER_CONFIG": str(config_path.parent)}
    for args in (["create", "other", "--docker", "host=unix:///nowhere.sock"], ["use", "other"]):
        subprocess.run(
            ["docker", "context", *args], env=env, capture_output=True, check=True, timeout=30
        )


def _python_writes(config_path: Path) -> None:
    """Another login saved the way docker saves: read the file, add its entry, rename it in."""
    config = json.loads(config_path.read_text())
    config["auths"]["other.example:5000"] = {"auth": b64("bob:pw")}
    temp = config_path.with_name(".config.json.other")
    temp.write_text(json.dumps(config))
    temp.replace(config_path)


@pytest.mark.parametrize("writer", ["docker", "python"])
def test_a_write_by_docker_in_the_middle_of_ours_is_kept(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """docker takes no lock: its rename can land between our read and our rename. Here it
    lands at the worst moment, while our copy is being synced, and must survive ours."""
    if writer == "docker" and shutil.which("docker") is None:
        pytest.skip("needs the docker CLI")
    write_config(config_path, {"auths": {"first.example:5000": {"auth": b64("carol:pw")}}})
    real_fsync, other_wrote = os.fsync, []

    def fsync_while_another_writes(fd: int) -> None:
        real_fsync(fd)
        if not other_wrote:
            other_wrote.append(writer)
            (_docker_cli_writes if writer == "docker" else _python_writes)(config_path)

    monkeypatch.setattr(os, "fsync", fsync_while_another_writes)
    store_credentials(REGISTRY, "alice", "pw")
    assert other_wrote
    saved = json.loads(config_path.read_text())
    expected = {"first.example:5000", REGISTRY}
    if writer == "docker":
        assert saved["currentContext"] == "other"
    else:
        expected.add("other.example:5000")
    assert set(saved["auths"]) == expected


def test_auth_config_shape(config_path: Path) -> None:
    store_credentials(REGISTRY, "alice", SECRET)
    assert auth_config(REGISTRY) == {
        "username": "alice",
        "password": SECRET,
        "serveraddress": REGISTRY,
    }


def test_password_is_not_in_repr() -> None:
    creds = Credentials("alice", SECRET, "config.json")
    assert SECRET not in repr(creds)
    assert "alice" in repr(creds)


# --- the modes at every step of the writes (tests/support/modes.py) ---------------------------


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
    names = {final_name(p) for p, _ in states}
    assert {"config.json", "config.json.lock"} <= names
    for path, mode in states:
        limit = 0o700 if path == "docker" else 0o600
        assert not looser(mode, limit), f"{path} was {oct(mode)} at some point"
    assert stat.S_IMODE((config / "config.json").stat().st_mode) == 0o600
