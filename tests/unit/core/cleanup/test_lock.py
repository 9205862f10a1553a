"""The run lock (core/cleanup/lock.py): exclusive, in a folder of the user's own, and never a
file someone else planted. Pure file work, no engine."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from dockops.core.cleanup import lock
from dockops.core.cleanup.lock import exclusive
from dockops.errors import InvalidInput, LockHeld
from tests.conftest import Cli
from tests.support.marks import root_only


def test_lock_is_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "prune.lock"
    with exclusive(path):
        with pytest.raises(LockHeld) as info, exclusive(path):
            pass
        assert info.value.exit_code == 75
    with exclusive(path):  # released when the block ends
        pass


@pytest.fixture
def root_lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run" / "dockops"
    folder.parent.mkdir()
    monkeypatch.setattr(lock, "ROOT_LOCK_DIR", folder)
    return folder


@root_only
def test_roots_default_lock_is_in_a_folder_only_root_can_write(root_lock_dir: Path) -> None:
    path = lock.default_lock_path("prune-dangling")
    assert path == root_lock_dir / "dockops-prune-dangling.lock"
    info = root_lock_dir.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0
    assert stat.S_IMODE(info.st_mode) & 0o022 == 0
    with exclusive(path):  # two runs at once: the second exits 75
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(LockHeld), exclusive(lock.default_lock_path("prune-dangling")):
            pass


@root_only
@pytest.mark.parametrize("planted", ["world-writable", "others", "symlink"])
def test_roots_lock_folder_planted_by_someone_else_is_refused(
    root_lock_dir: Path, tmp_path: Path, planted: str
) -> None:
    if planted == "symlink":
        (tmp_path / "elsewhere").mkdir()
        root_lock_dir.symlink_to(tmp_path / "elsewhere")
    else:
        root_lock_dir.mkdir(mode=0o755)
        if planted == "world-writable":
            root_lock_dir.chmod(0o1777)
        else:
            os.chown(root_lock_dir, 65534, 65534)
    with pytest.raises(InvalidInput, match=f"lock folder {root_lock_dir} is not a folder of yours"):
        lock.default_lock_path("prune-dangling")


def test_a_users_default_lock_is_in_a_folder_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = os.geteuid() or 65534  # as root, the test plays a user who owns these folders
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    runtime, temp = tmp_path / "runtime", tmp_path / "temp"
    runtime.mkdir(mode=0o700)
    temp.mkdir(mode=0o1777)
    os.chown(runtime, uid, -1)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert lock.default_lock_path("job") == runtime / "dockops-job.lock"
    # a runtime folder others can write is passed over for one of their own in the temp folder
    runtime.chmod(0o777)
    own = temp / f"dockops-{uid}"
    own.mkdir(mode=0o700)
    os.chown(own, uid, -1)
    assert lock.default_lock_path("job") == own / "dockops-job.lock"
    # one someone else made there first is refused, not used
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    os.chown(own, uid + 1, -1)
    with pytest.raises(InvalidInput, match=f"lock folder {own} is not a folder of yours"):
        lock.default_lock_path("job")


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlinked_lock_file_is_refused_and_its_target_left_alone(
    tmp_path: Path, target_exists: bool
) -> None:
    target = tmp_path / "precious"
    if target_exists:
        target.write_text("keep me")
    link = tmp_path / "prune.lock"
    link.symlink_to(target)
    with pytest.raises(InvalidInput, match=f"lock file {link} is a symlink"), exclusive(link):
        pass
    assert target.read_text() == "keep me" if target_exists else not target.exists()


@root_only
def test_a_lock_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prune.lock"
    path.touch(mode=0o666)
    os.chown(path, 65534, 65534)
    with pytest.raises(InvalidInput, match="belongs to uid 65534, not to you"), exclusive(path):
        pass


def test_a_hard_linked_lock_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.touch()
    os.link(other, tmp_path / "prune.lock")
    with pytest.raises(InvalidInput, match="single name"), exclusive(tmp_path / "prune.lock"):
        pass


def test_a_lock_file_others_may_open_is_made_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "prune.lock"
    path.touch(mode=0o644)
    with exclusive(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["symlink", "foreign"])
def test_prune_dangling_answers_an_unsafe_lock_file_with_exit_2_and_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    path = tmp_path / "prune.lock"
    if kind == "symlink":
        path.symlink_to(tmp_path / "target")
    elif os.geteuid() == 0:
        path.touch()
        os.chown(path, 65534, 65534)
    else:
        pytest.skip("needs root to make a file of another user")
    result = cli("prune-dangling", "--lock-file", str(path))
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"dockops: error: lock file {path} ")
    assert result.err.count("\n") == 1
    assert not (tmp_path / "target").exists()
