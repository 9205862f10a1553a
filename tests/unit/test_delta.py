"""Which layers a delta archive may leave out, and finding its record at the archive's start."""

from __future__ import annotations

import gzip
import io
import tarfile

from dockops.core.archive_io import HeadFirst, read_head
from dockops.core.delta import (
    DELTA_NAME,
    Base,
    _header,
    omittable,
    read_delta,
)


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
