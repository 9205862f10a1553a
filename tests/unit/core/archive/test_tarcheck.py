"""The tar walker (core/archive/tarcheck.py): it reads headers as the engine's reader (Go's
archive/tar) does, in any chunking, and only ever says TarProblem, in one line."""

from __future__ import annotations

import io
import json
import tarfile
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops.core.archive.files import CHUNK
from dockops.core.archive.tarcheck import TarProblem, TarWalker
from tests.support import archives
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import (
    END,
    SAMPLE,
    chunked,
    docker_save_like,
    fix_checksum,
    gnu_with_links,
    header,
    legacy_save,
    member,
    mutated,
    pax,
    record,
    seed,
)
from tests.unit.core.archive.test_layout import WRITERS, two_images


def walk(data: bytes, chunk: int) -> TarWalker:
    walker = TarWalker()
    for start in range(0, len(data), chunk):
        walker.feed(data[start : start + chunk])
    walker.finish()
    return walker


@pytest.mark.parametrize("chunk", [1, 511, 512, 513, 4096, 1 << 20])
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_walker_accepts_a_whole_tar_in_any_chunking(chunk: int, fmt: int) -> None:
    members = SAMPLE if fmt != tarfile.USTAR_FORMAT else {"a": b"1", "b/c": b"x" * 70000}
    data = tar_of(members, fmt)
    walker = walk(data, chunk)
    assert walker.ended
    assert walker.members >= len(members)


def _end_of_members(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


@pytest.mark.parametrize("cut", [100, 512, 600, 1536, 5000, "end", "end+512"])
def test_walker_refuses_a_truncated_tar(cut: int | str) -> None:
    data = tar_of(SAMPLE)
    end = _end_of_members(data)
    # Python's tarfile pads to 10 KiB records: cut at the end of the last member, or after
    # only one of the two zero blocks, to lose the end marker.
    at = {"end": end, "end+512": end + 512}.get(str(cut), cut)
    assert isinstance(at, int)
    with pytest.raises(TarProblem, match=r"^truncated tar: it ends at byte \d+"):
        walk(data[:at], 4096)


def test_walker_names_the_member_it_stopped_in() -> None:
    data = tar_of(SAMPLE)
    with pytest.raises(TarProblem, match=r"inside 'layer\.tar'"):
        walk(data[: len(data) - 600_000], 65536)


def test_walker_refuses_a_corrupt_header_and_says_where() -> None:
    data = bytearray(tar_of({"a": b"1" * 10, "b": b"2"}))
    data[1024 + 5] ^= 0xFF  # inside the second header, "b"
    with pytest.raises(TarProblem, match=r"bad header at byte 1024 \(after 'a'\)") as info:
        walk(bytes(data), 700)
    assert info.value.engine_error is None


def test_walker_reads_the_engines_error_document_appended_to_a_stream() -> None:
    # moby writes FormatError into the body when a save fails after the 200 was sent.
    full = tar_of({"a": b"1" * 10, "b": b"2" * 10})
    error = json.dumps({"errorDetail": {"message": "layer vanished"}, "error": "x"}).encode()
    with pytest.raises(TarProblem) as info:
        walk(full[:1024] + error + b"\n", 4096)
    assert info.value.engine_error == "layer vanished"


def test_walker_accepts_base256_sizes_and_zero_padding_after_the_end() -> None:
    header = bytearray(tarfile.TarInfo("big").tobuf(tarfile.GNU_FORMAT))
    # Rewrite the size field as GNU base-256 (what writers use from 8 GiB), value 3 blocks.
    header[124:136] = b"\x80" + (1536).to_bytes(11, "big")
    header[148:156] = b"        "
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    data = bytes(header) + b"z" * 1536 + bytes(1024) + bytes(8192)
    assert walk(data, 1000).ended


def test_an_archive_with_no_member_is_not_a_tar() -> None:
    walker = TarWalker()
    with pytest.raises(TarProblem, match="no member"):
        walker.finish()


# --- headers read as the engine reads them (issue: the tar checker trusted them) -----------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "field",
    [
        b"-0000001000\0",  # negative: the old walker stepped back and looped for ever
        b"-0000000001\0",
        b"00000000008\0",  # not octal: the old walker raised ValueError (internal error)
        b"0o0000001000",  # what int(x, 8) takes and a tar reader must not
        b"+0000001000\0",
        b"0000_001000\0",
        b"00000 01000\0",
        b"\xff" * 12,  # GNU base-256, negative (-1)
        b"\xff" + bytes(10) + b"\x01",
        b"\xc0" + bytes(11),
        b"\x80" + (1 << 63).to_bytes(11, "big"),  # base-256 past Go's int64: it refuses
        b"\x80" + b"\xff" * 11,
    ],
)
def test_walker_refuses_a_size_field_that_is_not_a_size(field: bytes) -> None:
    data = member("a", b"1" * 10) + header("b", size_field=field) + bytes(4096) + END
    for chunk in (1, 700, len(data)):
        with pytest.raises(TarProblem, match=r"^corrupt tar: bad size field in the header at byte 1024 \(after 'a'\)$"):  # fmt: skip  # noqa: E501
            walk(data, chunk)


def test_walker_takes_the_largest_base256_size_go_takes() -> None:
    # 2**63 - 1: the data is not there, but the size is read (truncated, not corrupt).
    big = header("b", size_field=b"\x80" + ((1 << 63) - 1).to_bytes(11, "big"))
    with pytest.raises(TarProblem, match=r"^truncated tar: .* inside 'b'$"):
        walk(big + bytes(4096), 4096)


def test_an_octal_field_is_cut_at_its_first_nul_as_go_reads_it() -> None:
    # Go's parseOctal: trim spaces and NULs, then parseString stops at the first NUL, so
    # "12\0 34" is 10 bytes (octal 12); the old walker refused it.
    data = header("a", size_field=b"12\0 34\0\0\0\0\0\0") + b"z" * 10 + bytes(502)
    data += member("b", b"2") + END
    assert walk_keeping(data) == [("a", b"z" * 10), ("b", b"2")]


def test_a_header_after_one_zero_block_is_refused_as_go_does() -> None:
    # Go returns ErrHeader for a zero block followed by a non-zero block; the old walker
    # skipped the zero block and went on.
    data = member("a", b"1") + bytes(512) + member("b", b"2") + END
    with pytest.raises(TarProblem, match=r"^corrupt tar: a header after a zero block at byte 1536 \(after 'a'\)$"):  # fmt: skip  # noqa: E501
        walk(data, 700)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_walker_follows_a_member_of_8_gib_and_more_by_its_pax_or_base256_size(fmt: int) -> None:
    # PAX writes the size of a member of 8 GiB or more as a record, 0 in the ustar field;
    # the old walker took the 0 and read the member's data as the next header. The data is
    # fed from one 1 MiB buffer, never held.
    size = 8 * 1024**3 + 1
    info = tarfile.TarInfo("layer.tar")
    info.size = size
    headers = info.tobuf(fmt)
    piece = memoryview(b"\1" * CHUNK)
    walker = TarWalker()
    walker.feed(headers)
    left = size
    while left:
        step = min(left, CHUNK)
        walker.feed(piece[:step])
        left -= step
    walker.feed(bytes(-size % 512) + END)
    walker.finish()
    assert walker.ended and walker.members == 1


def test_a_pax_size_record_wins_over_the_ustar_size_field() -> None:
    data = (
        pax(record("size", "1000") + record("path", "the/real/name"))
        + header("short", size_field=b"00000000012\0")  # 10, what the PAX record replaces
        + b"z" * 1000
        + bytes(24)
        + member("next", b"n")
        + END
    )
    kept = walk_keeping(data)
    assert kept == [("the/real/name", b"z" * 1000), ("next", b"n")]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # the oracle agrees
        assert [(m.name, m.size) for m in tar] == [("the/real/name", 1000), ("next", 1)]


def walk_keeping(data: bytes, chunk: int = 300) -> list[tuple[str, bytes]]:
    kept: list[tuple[str, bytes]] = []
    walker = TarWalker(lambda name, size: True)
    for start in range(0, len(data), chunk):
        walker.feed(data[start : start + chunk])
        kept += walker.kept
        walker.kept.clear()
    walker.finish()
    return kept


# A member hidden in the data of another: what a walker that splits members unlike the engine
# would take for one (and check as manifest.json) while the engine reads plain data.
HIDDEN = member("evil/manifest.json", b'{"evil":true}')


def _walk_members(data: bytes) -> tuple[int, list[tuple[str, bytes]]]:
    walker = TarWalker(lambda name, size: True)
    kept: list[tuple[str, bytes]] = []
    for start in range(0, len(data), 300):
        walker.feed(data[start : start + 300])
        kept += walker.kept
        walker.kept.clear()
    walker.finish()
    return walker.members, kept


def test_a_second_pax_header_replaces_the_first_as_the_engines_reader_does() -> None:
    # Go's archive/tar (the engine's reader, the reference here) keeps the records of the
    # last 'x' header only: the size=0 of the first is gone, real.bin holds HIDDEN as data.
    # The old walker merged both headers and found evil/manifest.json.
    data = (
        pax(record("size", "0"))
        + pax(record("path", "real.bin"))
        + header("real.bin", size=len(HIDDEN))
        + HIDDEN
        + END
    )
    assert _walk_members(data) == (1, [("real.bin", HIDDEN)])


def test_a_global_pax_header_is_a_member_and_drops_what_came_before_it() -> None:
    # Go returns a 'g' header as its own member, and the pending 'x' records apply to nothing
    # (Python's tarfile applies the size=0 to real.bin instead: Go is the reference, since the
    # engine reads with it).
    data = (
        pax(record("size", "0"))
        + pax(record("comment", "all"), tarfile.XGLTYPE)
        + header("real.bin", size=len(HIDDEN))
        + HIDDEN
        + END
    )
    assert _walk_members(data) == (2, [("real.bin", HIDDEN)])


def test_a_gnu_long_name_outlives_a_later_pax_header() -> None:
    # Go keeps a pending long name across 'x' headers (only the PAX records are replaced),
    # and the long name wins over a PAX path.
    name = b"l" * 200
    long_name = header("././@LongLink", len(name) + 1, tarfile.GNUTYPE_LONGNAME)
    long_name += name + bytes(512 - len(name))
    data = (
        long_name
        + pax(record("path", "ignored") + record("size", "0"))
        + pax(record("size", str(len(HIDDEN))))
        + header("short", size=3)
        + HIDDEN
        + END
    )
    assert _walk_members(data) == (1, [(name.decode(), HIDDEN)])


@pytest.mark.parametrize(
    ("records", "kind", "message"),
    [
        (b"20 path=x\n", b"x", "a malformed record in the PAX header"),  # longer than the data
        (b"8 path=x\n", b"x", "a malformed record in the PAX header"),  # no newline at 8
        (b"x path=x\n", b"x", "a malformed record in the PAX header"),
        (b"9 pathxx\n", b"x", "a malformed record in the PAX header"),  # no '='
        (b"6 =xy\n", b"x", "a malformed record in the PAX header"),  # no key
        (b"9 path=x\n\0\0\0", b"x", "a malformed record in the PAX header"),
        (record("size", "-5"), b"x", "a bad size record in the PAX header"),
        (record("size", "5x"), b"x", "a bad size record in the PAX header"),
        (record("size", ""), b"x", "a bad size record in the PAX header"),
        (record("size", "9" * 19), b"x", "a bad size record in the PAX header"),
        (record("size", "9" * 5000), b"x", "a bad size record in the PAX header"),
        (record("size", "10"), b"g", "a size record in the global PAX header"),
    ],
)
def test_walker_refuses_a_malformed_paxheader(records: bytes, kind: bytes, message: str) -> None:
    data = member("a", b"1") + pax(records, kind) + member("b", b"2" * 10) + END
    with pytest.raises(TarProblem, match=rf"^corrupt tar: {message} at byte 1024 \(after 'a'\)$"):
        walk(data, 1000)


@pytest.mark.parametrize(
    ("kind", "what"), [(tarfile.XHDTYPE, "PAX header"), (tarfile.GNUTYPE_LONGNAME, "GNU long name")]
)
def test_walker_refuses_an_extended_header_over_1_mib(kind: bytes, what: str) -> None:
    # Go's archive/tar (the engine's reader) refuses them, and the walker holds one whole.
    big = record("comment", "c" * (1024 * 1024))
    data = header("x", len(big), kind) + big + bytes(-len(big) % 512) + member("b", b"") + END
    with pytest.raises(TarProblem, match=rf"^corrupt tar: a {what} of {len(big)} bytes"):
        walk(data, CHUNK)


def test_links_folders_and_devices_have_no_data_whatever_their_size_field() -> None:
    # Go's archive/tar and Python's tarfile agree: no data follows such a header. The old
    # walker skipped 1024 bytes after the folder and so never saw "f".
    data = b"".join(
        header(name, size=1024, kind=kind)
        for name, kind in (("d", tarfile.DIRTYPE), ("s", tarfile.SYMTYPE), ("p", tarfile.FIFOTYPE))
    )
    data += member("f", b"x" * 600) + END
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["d", "s", "p", "f"]
    assert walk(data, 512).members == 4
    assert walk_keeping(data) == [("f", b"x" * 600)]


def test_walker_passes_the_old_gnu_sparse_map_blocks() -> None:
    # An old GNU sparse header says "more of the map follows" (byte 482): extension blocks
    # come between the header and the data, each saying whether another follows (byte 504).
    block = bytearray(header("sparse", size=1024, kind=tarfile.GNUTYPE_SPARSE))
    block[257:265] = b"ustar  \0"  # GNU magic
    block[386:398] = b"00000000000\0"  # first sparse entry: offset 0 ...
    block[398:410] = b"00000002000\0"  # ... 1024 bytes
    block[482] = 1
    block[483:495] = b"00000010000\0"  # real size 4096
    fix_checksum(block)
    more, last = bytearray(512), bytearray(512)
    more[504] = 1
    data = bytes(block) + bytes(more) + bytes(last) + b"y" * 1024 + member("after", b"a") + END
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["sparse", "after"]
    walker = walk(data, 100)
    assert walker.members == 2 and walker.ended


def test_walker_keeps_members_under_their_full_names() -> None:
    # GNU long names, PAX paths and ustar prefixes: the names the engine sees.
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        members = {"p" * 90 + "/" + "n" * 60: b"1", "short": b"22", "d/é.json": b"{}"}
        if fmt != tarfile.USTAR_FORMAT:
            members["l" * 300] = b"333"
        assert walk_keeping(tar_of(members, fmt)) == list(members.items())


def test_a_name_from_the_archive_is_shown_on_one_line() -> None:
    data = tar_of({"a\x1b[31m\nb" + "c" * 300: b"x" * 2000})
    with pytest.raises(TarProblem) as caught:
        walk(data[:2000], 512)
    assert caught.value.message.endswith("inside 'a b" + "c" * 197 + "...'")


@pytest.mark.parametrize("kind", list(WRITERS))
@pytest.mark.parametrize("chunk", [511, 4096])
def test_walker_takes_every_engines_save_archive_whole(kind: str, chunk: int) -> None:
    # What a load checks before it sends: Docker's archives before 25 and from 25 (folders,
    # blobs), Podman's (symlinks to layers), as the engines write them.
    data = WRITERS[kind](two_images())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    walker = walk(data, chunk)
    assert walker.ended and walker.members == len(members)
    # Regular members under their names, and nothing for a folder or a symlink.
    assert [name for name, _ in walk_keeping(data)] == [m.name for m in members if m.isfile()]


# --- fuzz: mutated real archives --------------------------------------------------------------

FUZZ_SEEDS = [
    seed(docker_save_like()),
    seed(legacy_save()),
    seed(archives.docker25(two_images()[:1])),
    seed(archives.podman(two_images()[:1])),
    seed(gnu_with_links()),
    seed(tar_of({"a" * 150 + "/é": b"x" * 1000, "b": b"", "c": b"y" * 513})),
]


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None)
@given(data=mutated(FUZZ_SEEDS), chunk=st.sampled_from([7, 100, 511, 512, 4096, CHUNK]))
def test_fuzz_the_walker_only_ever_says_tar_problem(data: bytes, chunk: int) -> None:
    # No hang (the timeout), nothing raised but TarProblem, nothing held beyond a PAX header:
    # whatever the headers say, it only ever gathers bytes it was fed.
    tracemalloc.start()
    try:
        walker = TarWalker(lambda name, size: True)
        try:
            for piece in chunked(data, chunk):
                walker.feed(piece)
                walker.kept.clear()
            walker.finish()
        except TarProblem as problem:
            assert "\n" not in problem.message
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(data) + 256 * 1024
