"""Which layers a delta archive may leave out, finding its record at the archive's start, and
reading base archives and delta records, which come from files and are checked as such."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops.core.archive import delta
from dockops.core.archive.delta import (
    DELTA_NAME,
    Base,
    _header,
    archive_bases,
    bases_in,
    check_delta,
    needed_chains,
    omittable,
    read_delta,
)
from dockops.core.archive.files import HeadFirst, read_head
from dockops.core.archive.tarcheck import TarProblem
from dockops.errors import EngineRefused, InvalidInput
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import docker_save_like, fix_checksum, legacy_save, mutated, seed


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


def _archive(doc: dict[str, object] | None) -> bytes:
    raw = io.BytesIO()
    if doc is not None:
        raw.write(_header(doc))
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    return raw.getvalue()


def test_read_delta_plain_and_gzip() -> None:
    doc = {"format": 1, "omitted": [{"diff_id": "sha256:" + "a" * 64}], "name": "é" * 200}
    assert read_delta(_archive(doc)) == doc
    assert read_delta(gzip.compress(_archive(doc))) == doc
    assert read_delta(_archive(None)) is None
    assert read_delta(b"junk" * 400) is None
    assert read_delta(b"") is None
    with tarfile.open(fileobj=io.BytesIO(_archive(doc))) as tar:
        names = tar.getnames()
    assert names == [DELTA_NAME, "manifest.json"]  # what docker load sees: a normal tar


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


@pytest.mark.parametrize(
    "change",
    [
        {"format": 2},
        {"images": {"a": 1}},
        {"images": [{"diff_ids": ["sha256:" + "a" * 64, 5]}]},
        {"omitted": [{"image": True, "position": 0}]},
        {"omitted": [{"image": 0, "position": -1}]},  # the chain would be empty: "present"
        {"omitted": [{"image": 0, "position": 1}]},
        {"omitted": [{"image": 3, "position": 0}]},
        {"omitted": [{"image": 0, "position": "0"}]},
        {"omitted": [{"provided_by": 7}]},
        {"omitted": [{"diff_id": "sha256:" + "b" * 64}]},  # not the layer at that place
        {"bases": [{"name": "x", "id": "../../containers/x"}]},  # goes into the engine's URL
        {"bases": "all"},
    ],
)
def test_a_damaged_delta_record_is_refused_before_the_engine_is_asked(
    change: dict[str, object],
) -> None:
    diff_id = "sha256:" + "a" * 64
    omitted = {"diff_id": diff_id, "image": 0, "position": 0, "provided_by": ["app:1"]}
    doc = {
        "format": 1,
        "images": [{"reference": "app:2", "id": "sha256:" + "c" * 64, "diff_ids": [diff_id]}],
        "bases": [{"name": "app:1", "id": "sha256:" + "d" * 64}],
        "omitted": [omitted],
    }
    [needed] = needed_chains(doc, "d.tar")
    assert (needed.chain, needed.position, needed.entry) == ((diff_id,), 0, omitted)
    for key, value in change.items():
        merged = (
            [{**omitted, **value[0]}] if key == "omitted" and isinstance(value, list) else value
        )
        doc[key] = merged
    with pytest.raises(InvalidInput, match=r"^load d\.tar: its dockops-delta\.json is damaged$"):
        check_delta(None, doc, "d.tar")  # type: ignore[arg-type]  # never reaches the engine


def test_a_delta_record_that_is_not_a_json_object_reads_as_damaged() -> None:
    for content in (b"[1]", b"{oops", b"[" * 100_000):
        data = docker_save_like(first=(DELTA_NAME, content))
        doc = read_delta(data)
        assert doc == {}
        with pytest.raises(InvalidInput, match="is damaged"):
            check_delta(None, doc, "d.tar")  # type: ignore[arg-type]
    assert read_delta(docker_save_like(first=("other.json", b"{}"))) is None
    assert read_delta(b"\x1f\x8b\x08\x00" + b"junk" * 100) is None  # a broken gzip start


@pytest.mark.parametrize("tail", [b"", b'{"errorDetail":{"message":"layer vanished"}}\r\n'])
def test_a_save_stream_cut_between_members_is_not_a_whole_delta(tail: bytes) -> None:
    # tarfile alone takes a stream that stops at a member's end for a whole archive, and
    # reads the engine's error document after it as a bad header.
    data = docker_save_like()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        cut = tar.getmember("manifest.json").offset
    response = types.SimpleNamespace(raw=io.BytesIO(data[:cut] + tail))
    with pytest.raises(TarProblem) as caught:
        delta._write_delta(response, io.BytesIO(), {}, {}, lambda event: None)
    assert caught.value.engine_error == ("layer vanished" if tail else None)
    if not tail:
        assert caught.value.message.startswith("truncated tar")


# --- fuzz: mutated real archives --------------------------------------------------------------

_RECORD = {
    "format": 1,
    "images": [
        {"reference": "app:2", "id": "sha256:" + "c" * 64, "diff_ids": ["sha256:" + "a" * 64]}
    ],
    "bases": [{"name": "app:1", "id": "sha256:" + "d" * 64}],
    "omitted": [
        {"diff_id": "sha256:" + "a" * 64, "image": 0, "position": 0, "provided_by": ["app:1"]}
    ],
}
FUZZ_SEEDS = [
    seed(docker_save_like()),
    seed(docker_save_like(first=(DELTA_NAME, json.dumps(_RECORD).encode()))),
    seed(_header(_RECORD) + docker_save_like()),
    seed(legacy_save()),
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


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


class _EmptyEngine:
    """An engine that holds no image: every omitted layer is missing (pure logic, no I/O)."""

    class api:  # docker-py's client.api
        @staticmethod
        def inspect_image(image_id: str) -> dict[str, object]:
            import docker

            raise docker.errors.NotFound(image_id)

        @staticmethod
        def images(all: bool = False) -> list[dict[str, object]]:
            return []


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from(["format", "images", "omitted", "bases"]),
    inner=st.sampled_from([None, "image", "position", "diff_id", "provided_by", "diff_ids", "id"]),
    value=_JSON,
)
def test_fuzz_a_delta_record_with_any_json_in_any_field(
    key: str, inner: str | None, value: object
) -> None:
    # Refused as damaged, or checked against the engine: one line either way, nothing else.
    doc = json.loads(json.dumps(_RECORD))
    if inner is None or not isinstance(doc[key], list):
        doc[key] = value
    else:
        doc[key][0][inner] = value
    try:
        check_delta(_EmptyEngine(), doc, "d.tar")  # type: ignore[arg-type]
    except (InvalidInput, EngineRefused) as exc:
        assert "\n" not in exc.message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("shape", ["long chain", "repeated entries"])
def test_a_delta_record_cannot_make_the_check_copy_without_end(shape: str) -> None:
    """A record of a few MiB once named 20,000 layers 13,000 times: each omitted entry copied
    its chain, some 2 GB, before the engine was asked. The record must be refused first."""
    diff_id = "sha256:" + "a" * 64
    layers = 20_000 if shape == "long chain" else 3
    position = layers - 1
    entry = {"diff_id": diff_id, "image": 0, "position": position, "provided_by": ["app:1"]}
    doc = {
        "format": 1,
        "images": [
            {"reference": "app:2", "id": "sha256:" + "c" * 64, "diff_ids": [diff_id] * layers}
        ],
        "bases": [{"name": "app:1", "id": "sha256:" + "d" * 64}],
        "omitted": [entry] * (13_000 if shape == "long chain" else 2),
    }
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="damaged"):
            needed_chains(doc, "d.tar")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


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
