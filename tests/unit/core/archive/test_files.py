"""The archive files (core/archive/files.py): input sniffing, the chunks an upload sends, the
output sink (atomic, 0600, synced), a full disk in one line, and the path checks made before
any engine call."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from dockops.core.archive.files import (
    CHUNK,
    check_input_path,
    check_output_path,
    open_archive,
    tar_sink,
    unwritable,
    wants_gzip,
)
from dockops.core.archive.tarcheck import looks_like_tar
from dockops.errors import ExitCode, InvalidInput
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import END, SAMPLE, header, member, pax


def test_sniffing() -> None:
    data = tar_of(SAMPLE)
    assert looks_like_tar(data)
    assert not looks_like_tar(b"hello" * 200)
    assert not looks_like_tar(data[:100])
    assert open_archive(io.BytesIO(data), "x").kind == "tar"
    packed = open_archive(io.BytesIO(gzip.compress(data)), "x")
    packed.reader.close()  # its decompressing thread
    assert packed.kind == "gzip"
    assert open_archive(io.BytesIO(b"\xfd7zXZ\x00" + bytes(600)), "x").kind == "xz"
    with pytest.raises(InvalidInput, match=r"^x: not a tar archive"):
        open_archive(io.BytesIO(b"hello\n"), "x")
    with pytest.raises(InvalidInput, match=r"^x: empty input"):
        open_archive(io.BytesIO(b""), "x")


def _sent(data: bytes) -> bytes:
    opened = open_archive(io.BytesIO(data), "in.tar")
    # As upload() does: a gzip reader left open keeps a thread that the garbage collector
    # then joins at any moment, once in a thread's start-up, where that deadlocks.
    with contextlib.closing(opened.reader):
        return b"".join(opened.chunks("in.tar"))


def test_chunks_yield_the_tar_whole_and_decompressed() -> None:
    data = tar_of({"big": b"q" * (3 * CHUNK + 17), **SAMPLE})
    assert _sent(data) == data
    assert _sent(gzip.compress(data, 1)) == data


def test_chunks_hold_back_the_last_piece_of_a_truncated_tar() -> None:
    data = tar_of({"big": b"q" * (3 * CHUNK)})[: 2 * CHUNK + 100]
    sent: list[bytes] = []
    with pytest.raises(InvalidInput, match=r"^in\.tar: truncated tar"):
        sent.extend(open_archive(io.BytesIO(data), "in.tar").chunks("in.tar"))
    # The engine never received the whole file, so it cannot have loaded anything from it.
    assert sum(map(len, sent)) < len(data)


def test_chunks_refuse_a_truncated_gzip() -> None:
    packed = gzip.compress(tar_of(SAMPLE))
    with pytest.raises(InvalidInput, match=r"^in\.tar: corrupt or truncated gzip"):
        _sent(packed[: len(packed) // 2])


def test_tar_sink_writes_hashes_and_renames(tmp_path: Path) -> None:
    target = tmp_path / "out.tar.gz"
    payload = tar_of(SAMPLE)
    with tar_sink(target, gzip=True) as (out, written):
        out.write(payload)
    assert list(tmp_path.iterdir()) == [target]
    raw = target.read_bytes()
    assert gzip.decompress(raw) == payload
    assert (written.bytes, written.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())


@pytest.mark.parametrize("compress", [False, True])
def test_tar_sink_leaves_nothing_when_interrupted(tmp_path: Path, compress: bool) -> None:
    with pytest.raises(KeyboardInterrupt), tar_sink(tmp_path / "x.tar", gzip=compress) as (out, _):
        out.write(b"x" * (3 * CHUNK))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o000])
@pytest.mark.parametrize("compress", [False, True])
def test_tar_sink_writes_0600_whatever_the_umask_and_over_a_0644_file(
    tmp_path: Path, umask: int, compress: bool
) -> None:
    # As docker save -o / export -o: image contents often hold secrets.
    fresh, replaced = tmp_path / "new.tar", tmp_path / "old.tar"
    replaced.write_bytes(b"old")
    replaced.chmod(0o644)
    before = os.umask(umask)
    try:
        for target in (fresh, replaced):
            with tar_sink(target, gzip=compress) as (out, _):
                out.write(tar_of(SAMPLE))
    finally:
        os.umask(before)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (fresh, replaced)] == [0o600, 0o600]


def test_paths_are_checked_before_the_engine(tmp_path: Path) -> None:
    assert check_output_path("-") is None and check_input_path("-") is None
    assert check_output_path(str(tmp_path / "a.tar")) == tmp_path / "a.tar"
    with pytest.raises(InvalidInput, match="no such directory"):
        check_output_path(str(tmp_path / "nope" / "a.tar"))
    with pytest.raises(InvalidInput, match="is a directory"):
        check_output_path(str(tmp_path))
    with pytest.raises(InvalidInput, match="no such file"):
        check_input_path(str(tmp_path / "missing.tar"))
    (tmp_path / "empty.tar").touch()
    with pytest.raises(InvalidInput, match="empty file"):
        check_input_path(str(tmp_path / "empty.tar"))
    assert wants_gzip("A.TAR.GZ") and wants_gzip("b.tgz") and not wants_gzip("c.tar")


def test_tar_sink_syncs_the_archive_before_the_rename(tmp_path: Path, syncs: list[str]) -> None:
    # As docker save -o does (it fsyncs its temp file): a crash right after a save that said
    # "saved" must not leave an empty or half archive under the final name. (The fdatasyncs
    # along the way are a head start the final fsync does not rely on, so not checked.)
    target = tmp_path / "app.tar"
    with tar_sink(target, gzip=False) as (out, written):
        out.write(b"\0" * (3 * CHUNK))
    assert written.bytes == 3 * CHUNK == target.stat().st_size
    assert syncs[-1:] == ["fsync"]


@pytest.mark.parametrize(
    "bad",
    [
        header("b", size_field=b"-0000001000\0"),
        header("b", size_field=b"00000000009\0"),
        pax(b"7 path=\n"),
    ],
)
def test_a_malformed_archive_to_load_is_bad_input_in_one_line(bad: bytes) -> None:
    data = member("a", b"1") + bad + bytes(2048) + END
    with pytest.raises(InvalidInput, match=r"^in\.tar: corrupt tar: .* at byte 1024") as caught:
        _sent(data)
    assert caught.value.exit_code == 2 and "\n" not in caught.value.message


def test_a_damaged_deflate_block_is_a_corrupt_gzip() -> None:
    # isal raises its own IsalError there, which is none of OSError, EOFError, ValueError.
    packed = bytearray(gzip.compress(tar_of(SAMPLE)))
    packed[10] |= 0b110  # the first deflate block's type: 11 is reserved, always refused
    with pytest.raises(InvalidInput, match=r"^in\.tar: corrupt or truncated gzip"):
        _sent(bytes(packed))


def test_a_full_disk_is_one_line_and_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    error = unwritable("save app:1", tmp_path / "x.tar", full)
    assert isinstance(error, InvalidInput) and error.exit_code == ExitCode.USAGE
    assert error.message == (
        f"save app:1: cannot write {tmp_path}/x.tar: no space left on device; "
        "nothing was left behind"
    )
    stdout = unwritable("save app:1", io.BytesIO(), OSError(errno.EIO, "Input/output error"))
    assert stdout is not None
    assert stdout.message == "save app:1: cannot write stdout: input/output error"
    assert unwritable("save app:1", io.BytesIO(), BrokenPipeError(errno.EPIPE, "pipe")) is None
