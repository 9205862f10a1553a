"""Which layers a delta archive may leave out, finding its record at the archive's start, and
reading base archives and delta records, which come from files and are checked as such; each
engine's layout cut where its layers pass, and named in the record."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops.core.archive import delta
from dockops.core.archive.delta import Base, archive_bases, bases_in, omittable
from dockops.core.archive.delta_record import DELTA_NAME, needed_chains, read_delta, record_member
from dockops.core.archive.files import HeadFirst, read_head
from dockops.core.archive.tarcheck import TarProblem
from dockops.errors import InvalidInput
from tests.support import archives
from tests.support.fake_engine import Pieces, fake_engine
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import (
    chunked,
    docker_save_like,
    fix_checksum,
    legacy_save,
    mutated,
    seed,
)
from tests.unit.core.archive.test_delta_record import RECORD
from tests.unit.core.archive.test_layout import WRITERS, two_images


def _base(name: str, *layers: str) -> Base:
    return Base(name, f"sha256:{name}", tuple(layers))


def test_only_whole_chains_are_left_out() -> None:
    found = omittable([("a", "b", "c")], [_base("v1", "a", "b")])
    assert sorted(found) == ["a", "b"]
    assert found["b"].position == 1 and found["b"].provided_by == ("v1",)


def test_a_shared_layer_on_another_chain_is_kept() -> None:
    # "b" is in the base, but on top of "x", not "a": the target has no chain a+b.
    assert sorted(omittable([("a", "b")], [_base("other", "x", "b")])) == []
    assert sorted(omittable([("a", "b")], [_base("v1", "a")])) == ["a"]


def test_a_layer_needed_by_one_image_of_the_archive_is_kept() -> None:
    images = [("a", "b"), ("z", "b")]
    assert sorted(omittable(images, [_base("v1", "a", "b")])) == ["a"]


def test_several_bases_are_all_named() -> None:
    found = omittable([("a", "b")], [_base("one", "a"), _base("two", "a", "q")])
    assert found["a"].provided_by == ("one", "two")


def test_prepended_gives_the_head_back() -> None:
    rest = io.BytesIO(b"0123456789" * 1000)
    head = read_head(rest, 25)
    assert head == (b"0123456789" * 3)[:25]
    again = io.BufferedReader(HeadFirst(head, rest))
    assert again.read() == b"0123456789" * 1000


# --- reading a base archive and a delta record: what comes from a file is checked ------------


def _bases(data: bytes) -> list[Base]:
    return bases_in(io.BytesIO(data), "base.tar")


def test_the_bases_of_a_docker_save_archive_plain_and_compressed() -> None:
    data = docker_save_like()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    expected = [
        Base(
            "base.tar:app:1",
            "sha256:" + hashlib.sha256(config).hexdigest(),
            tuple(json.loads(config)["rootfs"]["diff_ids"]),
        )
    ]
    for packed in (data, gzip.compress(data), bz2.compress(data), lzma.compress(data)):
        assert _bases(packed) == expected
    legacy = _bases(legacy_save())
    assert [b.name for b in legacy] == ["base.tar:app:1"] and len(legacy[0].diff_ids) == 1


def _replace(data: bytes, name: str, content: bytes) -> bytes:
    """The archive with member `name` holding `content` instead."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in source:
            body = source.extractfile(member) if member.isfile() else None
            raw = content if member.name == name else (body.read() if body else b"")
            member.size = len(raw)
            tar.addfile(member, io.BytesIO(raw))
    return out.getvalue()


def _config_name(data: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return str(json.load(tar.extractfile("manifest.json"))[0]["Config"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("member", "content", "message"),
    [
        ("manifest.json", b'{"Config": 1}', "its manifest.json is not a list of images"),
        ("manifest.json", b"[1, 2]", "its manifest.json is not a list of images"),
        ("manifest.json", b'[{"Config": ["x"]}]', "its manifest.json is not a list of images"),
        ("manifest.json", b"[" * 100_000, "its manifest.json is not a list of images"),
        ("config", b"{not json", "is not an image config"),
        ("config", b'{"rootfs": {"diff_ids": "sha256:x"}}', "is not an image config"),
        ("config", b'{"rootfs": []}', "is not an image config"),
        ("config", b"{" + b'"a":' * 100_000, "is not an image config"),
    ],
)
def test_a_damaged_base_archive_is_bad_input(member: str, content: bytes, message: str) -> None:
    # The old reader let ValueError, AttributeError or RecursionError out: internal errors.
    data = docker_save_like()
    name = _config_name(data) if member == "config" else member
    with pytest.raises(InvalidInput, match=r"^--delta-from base\.tar: not a readable image") as e:
        _bases(_replace(data, name, content))
    assert message in e.value.message and e.value.exit_code == 2


@pytest.mark.timeout(10)
def test_a_base_archive_with_a_bad_size_field_is_bad_input(tmp_path: Path) -> None:
    data = bytearray(docker_save_like())
    data[124:136] = b"-0000001000\0"  # the first header
    block = bytearray(data[:512])
    fix_checksum(block)
    data[:512] = block
    (tmp_path / "base.tar").write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="bad size field in the header at byte 0"):
        archive_bases(tmp_path / "base.tar")


def test_what_a_base_archive_keeps_in_memory_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Configs come before the manifest that names them, so JSON members are kept until it
    # is read: an archive of nothing but JSON must not fill the memory.
    monkeypatch.setattr(delta, "METADATA_LIMIT", 64 * 1024)
    members = {f"blobs/sha256/{i:064x}": b"{" + b" " * 1000 + b"}" for i in range(100)}
    with pytest.raises(InvalidInput, match="more than 0 MiB of manifests and image configs"):
        _bases(tar_of(members))
    # Small layers in blobs/ are not JSON and not kept: no limit reached with them.
    layers = {f"blobs/sha256/{i:064x}": tar_of({"f": b"x" * 600}) for i in range(100)}
    with pytest.raises(InvalidInput, match="no image in that archive"):
        _bases(tar_of(layers))


@pytest.mark.parametrize("tail", [b"", b'{"errorDetail":{"message":"layer vanished"}}\r\n'])
def test_a_save_stream_cut_between_members_is_not_a_whole_delta(tail: bytes) -> None:
    # tarfile alone takes a stream that stops at a member's end for a whole archive, and
    # reads the engine's error document after it as a bad header.
    data = docker_save_like()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        cut = tar.getmember("manifest.json").offset
    with pytest.raises(TarProblem) as caught:
        delta._write_delta(io.BytesIO(data[:cut] + tail), io.BytesIO(), {}, lambda event: None)
    assert caught.value.engine_error == ("layer vanished" if tail else None)
    if not tail:
        assert caught.value.message.startswith("truncated tar")


# --- fuzz: mutated real archives --------------------------------------------------------------

FUZZ_SEEDS = [
    seed(docker_save_like()),
    seed(docker_save_like(first=(DELTA_NAME, json.dumps(RECORD).encode()))),
    seed(record_member(RECORD) + docker_save_like()),
    seed(legacy_save()),
    seed(archives.docker25(two_images()[:1])),
    seed(archives.podman(two_images()[:1])),
]


@pytest.mark.timeout(120)
@settings(max_examples=250, deadline=None)
@given(data=mutated(FUZZ_SEEDS), packing=st.sampled_from(["tar", "gzip"]))
def test_fuzz_the_delta_readers_only_ever_say_bad_input(data: bytes, packing: str) -> None:
    if packing == "gzip":
        data = gzip.compress(data, 1)
    try:
        _bases(data)
    except InvalidInput as exc:
        assert exc.exit_code == 2 and "\n" not in exc.message
    doc = read_delta(data)
    if doc is not None:
        try:
            needed_chains(doc, "d.tar")
        except InvalidInput as exc:
            assert exc.exit_code == 2 and "\n" not in exc.message


def test_a_base_archive_is_not_unpacked_past_its_end_marker() -> None:
    """A compressed base can carry gigabytes of zeros after the tar's end: once the end is
    seen, nothing more is read."""
    data = docker_save_like()

    class Padded(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            size = len(buffer)
            if self.served < len(data):
                piece = data[self.served : self.served + size]
                buffer[: len(piece)] = piece
                self.served += len(piece)
                return len(piece)
            self.served += size
            assert self.served < len(data) + (64 << 20), "read on past the end marker"
            buffer[:size] = bytes(size)
            return size

    assert [b.name for b in bases_in(Padded(), "base.tar")]  # type: ignore[arg-type]


def test_a_streamed_body_reads_as_a_file_whatever_its_pieces() -> None:
    buffer = bytearray(b"abcdefghij")
    # One reused buffer, as a transport may hand out: each piece is a view into it.
    pieces = (memoryview(buffer)[:size] for size in (3, 0, 10, 1))
    reader = delta.PieceReader(pieces)
    assert [reader.read(4), reader.read(4), reader.read(4), reader.read(-1), reader.read()] == [
        b"abc",
        b"abcd",
        b"efgh",
        b"ij",
        b"a",
    ]
    assert reader.read(4) == b""


# --- every engine's layout (tests/support/archives.py) ----------------------------------------


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_layout_is_cut_where_its_layers_pass(kind: str) -> None:
    images = two_images()
    data = WRITERS[kind](images)
    base = Base("one", images[0].id, tuple(images[0].diff_ids))
    omit = omittable([tuple(image.diff_ids) for image in images], [base])
    assert sorted(omit) == sorted(images[0].diff_ids)
    out = io.BytesIO()
    written = delta._write_delta(io.BytesIO(data), out, omit, lambda event: None)
    assert written.layout == kind and written.full == len(data)
    sizes = {archives.sha256(layer): len(layer) for layer in images[1].layers}
    assert written.cut == {d: sizes[d] for d in images[0].diff_ids}
    whole, kept = _contents(data), _contents(out.getvalue())
    gone = set(whole) - set(kept)
    assert {archives.sha256(whole[name]) for name in gone} == set(omit)  # type: ignore[arg-type]
    # Everything else as it was: configs, manifests, symlinks (Podman's dangle now).
    assert all(kept[name] == whole[name] for name in kept)


def _contents(data: bytes) -> dict[str, bytes | str]:
    """Each member's data, or a link's target."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m.linkname if m.issym() else _read(tar, m) for m in tar}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle else b""


def test_the_images_of_docker25_and_podman_archives_are_named_as_docker_names_them() -> None:
    images = two_images()
    expected = ["base.tar:app:1", "base.tar:example.com/team/app:2"]
    for writer in (archives.docker25, archives.podman):  # Podman: docker.io/library/app:1
        bases = _bases(writer(images))
        assert [b.name for b in bases] == expected
        assert [b.id for b in bases] == [image.id for image in images]
        assert [list(b.diff_ids) for b in bases] == [image.diff_ids for image in images]


def test_the_record_says_whose_layout_the_engine_streamed(tmp_path: Path) -> None:
    images = two_images()
    inspect = {"Id": images[1].id, "RootFS": {"Layers": images[1].diff_ids}}
    base = {"Id": images[0].id, "RootFS": {"Layers": images[0].diff_ids}}
    for kind, writer in WRITERS.items():
        engine = fake_engine(
            {
                "GET /images/app:2/json": (200, inspect),
                "GET /images/app:1/json": (200, base),
                "GET /images/get": (200, Pieces(chunked(writer(images[1:]), 700))),
            }
        )
        target = tmp_path / f"{kind}.tar"
        result = delta.save_delta(engine, ["app:2"], ["app:1"], target, gzip=False)
        assert len(result.omitted) == 2 and result.full_bytes == len(writer(images[1:]))
        record = read_delta(target.read_bytes())
        assert record is not None and record["layout"] == kind
        with tarfile.open(target) as tar:
            assert tar.getnames()[0] == DELTA_NAME
