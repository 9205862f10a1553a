"""htpasswd entries: real bcrypt in the $2y$ form, other users untouched, no needless rewrite."""

from __future__ import annotations

import functools
import stat
from pathlib import Path

import bcrypt
import pytest

from dockops.core.registry_server import htpasswd
from dockops.core.registry_server.htpasswd import (
    hash_password,
    htpasswd_line,
    users,
    write_htpasswd,
)
from dockops.errors import InvalidInput
from tests.support.htpasswd import check_htpasswd
from tests.support.modes import looser, watched


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file-level functions hash at cost 10; cost 4 checks the same things, faster."""
    monkeypatch.setattr(htpasswd, "hash_password", functools.partial(hash_password, rounds=4))


def bcrypt_ok(hashed: str, password: str) -> bool:
    assert hashed.startswith("$2y$")
    return bcrypt.checkpw(password.encode(), ("$2b$" + hashed[4:]).encode())


def test_hash_is_2y_bcrypt_that_bcrypt_itself_verifies() -> None:
    hashed = hash_password("s3cret", rounds=4)
    assert hashed.startswith("$2y$04$") and len(hashed) == 60
    assert bcrypt_ok(hashed, "s3cret")
    assert not bcrypt_ok(hashed, "s3creT")
    assert hash_password("s3cret", rounds=4) != hashed  # salted


def test_default_cost_is_10() -> None:
    # the name imported here is the real function, not the fixture's cost-4 stand-in
    assert hash_password("pw").startswith("$2y$10$")


def test_line_is_user_colon_hash() -> None:
    line = htpasswd_line("alice", "pw")
    user, hashed = line.split(":")
    assert user == "alice" and "\n" not in line
    assert bcrypt_ok(hashed, "pw")


def test_new_file_has_one_entry_and_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "htpasswd"
    assert write_htpasswd(path, "alice", "pw1") is True
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    assert bcrypt_ok(text.strip().split(":")[1], "pw1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert check_htpasswd(path, "alice", "pw1")
    assert not check_htpasswd(path, "alice", "pw2")
    assert users(path) == ("alice",)


def test_same_password_again_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    write_htpasswd(path, "alice", "pw1")
    before = path.stat()
    content = path.read_bytes()
    assert write_htpasswd(path, "alice", "pw1") is False
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert path.read_bytes() == content


def test_new_password_replaces_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    bob = "bob:" + bcrypt.hashpw(b"bobpw", bcrypt.gensalt(4)).decode()  # a $2b$ entry
    others = ["# managed elsewhere", bob, "carol:$apr1$abc$def:comment"]
    path.write_text(f"{others[0]}\n{others[1]}\nalice:$2y$04$stale\n{others[2]}\n")
    assert write_htpasswd(path, "alice", "new") is True
    lines = path.read_text().splitlines()
    assert [lines[0], lines[1], lines[3]] == others  # kept verbatim, in place
    assert lines[2].startswith("alice:$2y$04$")
    assert check_htpasswd(path, "alice", "new")
    assert check_htpasswd(path, "bob", "bobpw")  # $2b$ entries are understood too
    assert not check_htpasswd(path, "carol", "anything")  # not bcrypt: no match, no crash
    assert users(path) == ("bob", "alice", "carol")


def test_duplicate_entries_of_the_user_collapse_to_one(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    first = htpasswd_line("alice", "pw")
    path.write_text(f"{first}\nbob:x\n{first}\n")
    assert write_htpasswd(path, "alice", "pw") is True  # same password, but two lines
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob"]
    assert check_htpasswd(path, "alice", "pw")


def test_adding_a_user_appends(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    write_htpasswd(path, "alice", "a")
    alice = path.read_text()
    assert write_htpasswd(path, "bob", "b") is True
    assert path.read_text().startswith(alice)
    assert users(path) == ("alice", "bob")
    assert check_htpasswd(path, "alice", "a") and check_htpasswd(path, "bob", "b")
    assert not check_htpasswd(path, "alice", "b")


def test_crlf_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_bytes(f"{htpasswd_line('alice', 'pw')}\r\n".encode())
    assert check_htpasswd(path, "alice", "pw")
    assert write_htpasswd(path, "alice", "pw") is False


def test_missing_file_or_user(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    assert users(path) == ()
    assert not check_htpasswd(path, "alice", "pw")
    write_htpasswd(path, "alice", "pw")
    assert not check_htpasswd(path, "bob", "pw")


@pytest.mark.parametrize(
    "user", ["", "a:b", "a b", "a\tb", "a\nb", "a\rb", "nul\x00", "del\x7f", "#admin", "\u00a0x"]
)
def test_bad_user_names_are_refused(tmp_path: Path, user: str) -> None:
    path = tmp_path / "htpasswd"
    with pytest.raises(InvalidInput, match="user"):
        write_htpasswd(path, user, "pw")
    with pytest.raises(InvalidInput):
        htpasswd_line(user, "pw")
    assert not path.exists()


@pytest.mark.parametrize("password", ["", "x" * 73, "é" * 37, "a\x00b", "\ud800"])
def test_bad_passwords_are_refused(tmp_path: Path, password: str) -> None:
    path = tmp_path / "htpasswd"
    with pytest.raises(InvalidInput, match="password"):
        write_htpasswd(path, "alice", password)
    with pytest.raises(InvalidInput):
        hash_password(password, rounds=4)
    assert not path.exists()


def test_72_bytes_is_the_longest_password_and_all_of_it_counts(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    password = "x" * 71 + "y"
    assert write_htpasswd(path, "alice", password)
    assert check_htpasswd(path, "alice", password)
    assert not check_htpasswd(path, "alice", "x" * 72)
    assert write_htpasswd(path, "bob", "é" * 36)  # 72 bytes in UTF-8
    assert check_htpasswd(path, "bob", "é" * 36)


@pytest.mark.parametrize("rounds", [3, 32])
def test_bcrypt_cost_out_of_range_is_refused(rounds: int) -> None:
    with pytest.raises(InvalidInput, match="cost"):
        hash_password("pw", rounds=rounds)


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_bytes(b"alice:\xff\xfe\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        users(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        users(tmp_path)  # a directory


# --- the modes at every step of the writes (tests/support/modes.py) ---------------------------


@pytest.mark.parametrize("umask", [0, 0o022])
def test_htpasswd_is_never_writable_by_others_and_is_bcrypt_cost_10(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    # The real cost is what this test checks: cheap_bcrypt's cost 4 is undone here.
    monkeypatch.setattr(htpasswd, "hash_password", hash_password)
    path = tmp_path / "htpasswd"
    with watched(tmp_path, umask) as states:
        htpasswd.write_htpasswd(path, "alice", "first password")
        htpasswd.write_htpasswd(path, "bob", "second password")
    assert states and all(not looser(mode, 0o644) for _, mode in states), states
    for line in path.read_text().splitlines():
        hashed = line.split(":", 1)[1]
        assert hashed.startswith("$2y$") and int(hashed.split("$")[2]) >= 10, line
