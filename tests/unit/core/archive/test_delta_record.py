"""The delta record: written as the archive's first member, found again at its start, and
checked (as what comes from a file) before the engine is asked about the layers it names."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops.core.archive.delta_record import (
    DELTA_NAME,
    Held,
    check_delta,
    needed_chains,
    read_as_oci,
    read_delta,
    record_member,
)
from dockops.engine.errors import Missing
from dockops.errors import EngineRefused, InvalidInput
from tests.support.tarfuzz import docker_save_like

RECORD = {
    "format": 1,
    "images": [
        {"reference": "app:2", "id": "sha256:" + "c" * 64, "diff_ids": ["sha256:" + "a" * 64]}
    ],
    "bases": [{"name": "app:1", "id": "sha256:" + "d" * 64}],
    "omitted": [
        {"diff_id": "sha256:" + "a" * 64, "image": 0, "position": 0, "provided_by": ["app:1"]}
    ],
}


def _archive(doc: dict[str, object] | None) -> bytes:
    raw = io.BytesIO()
    if doc is not None:
        raw.write(record_member(doc))
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


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


class _Engine:
    """An engine holding `images` (ID -> its layers), answering as an Engine does."""

    def __init__(self, images: dict[str, list[str]] | None = None, *, podman: bool = False) -> None:
        self._images = images or {}
        self.asked: list[str] = []
        self.is_podman = podman

    def image(self, reference: str, what: str = "") -> dict[str, object]:
        self.asked.append(reference)
        if reference not in self._images:
            raise Missing(f"{what}: No such image: {reference}", 404)
        return {"Id": reference, "RootFS": {"Layers": self._images[reference]}}

    def images(self, *, all: bool = True) -> list[dict[str, object]]:
        self.asked.append("*")
        return [{"Id": image_id} for image_id in self._images]


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
    doc = json.loads(json.dumps(RECORD))
    if inner is None or not isinstance(doc[key], list):
        doc[key] = value
    else:
        doc[key][0][inner] = value
    try:
        check_delta(_Engine(), doc, "d.tar")  # type: ignore[arg-type]
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


def test_the_base_the_delta_was_cut_against_is_asked_first() -> None:
    base = "sha256:" + "d" * 64
    engine = _Engine({base: ["sha256:" + "a" * 64, "sha256:" + "b" * 64]})
    check_delta(engine, RECORD, "d.tar")  # type: ignore[arg-type]
    assert engine.asked == [base]  # never the whole image list


def test_another_image_holding_the_chain_will_do() -> None:
    other = "sha256:" + "e" * 64
    engine = _Engine({other: ["sha256:" + "a" * 64]})
    check_delta(engine, RECORD, "d.tar")  # type: ignore[arg-type]
    assert engine.asked == ["sha256:" + "d" * 64, "*", other]


def test_an_engine_without_the_layers_is_told_which_base_to_load() -> None:
    engine = _Engine({"sha256:" + "e" * 64: ["sha256:" + "b" * 64]})
    with pytest.raises(EngineRefused) as caught:
        check_delta(engine, RECORD, "d.tar")  # type: ignore[arg-type]
    assert caught.value.message == (
        "load d.tar: a delta archive; this engine lacks 1 of the layers it leaves out "
        "(aaaaaaaaaaaa): load the base image first (app:1)"
    )


def test_the_check_says_which_images_hold_the_layers_left_out() -> None:
    base, other = "sha256:" + "d" * 64, "sha256:" + "e" * 64
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    doc = json.loads(json.dumps(RECORD))
    doc["images"][0]["diff_ids"] = [a, b]
    doc["omitted"].append({"diff_id": b, "image": 0, "position": 1, "provided_by": ["app:1"]})
    # The base holds the first layer only; another image holds both: both are named, as found.
    engine = _Engine({base: [a], other: [a, b]})
    held = check_delta(engine, doc, "d.tar")  # type: ignore[arg-type]
    assert held == Held(layers=frozenset({a, b}), images=(base, other))
    # An image looked at that adds nothing to what the others hold is not named.
    engine = _Engine({base: [b], other: [a, b]})
    held = check_delta(engine, doc, "d.tar")  # type: ignore[arg-type]
    assert held.images == (other,) and engine.asked == [base, "*", base, other]
    assert check_delta(_Engine(), {**RECORD, "omitted": []}, "d.tar") == Held(  # type: ignore[arg-type]
        layers=frozenset(), images=()
    )


@pytest.mark.parametrize(
    ("layout", "images", "as_oci"),
    [
        (None, 1, False),  # a record from before the layout was written
        ("docker", 1, False),
        ("podman", 1, False),
        ("docker-oci", 1, True),
        ("docker-oci", 2, False),
        ("junk", 1, False),
    ],
)
def test_podman_reads_as_oci_only_docker_25_s_archive_of_one_image(
    layout: str | None, images: int, as_oci: bool
) -> None:
    doc = json.loads(json.dumps(RECORD))
    doc["images"] *= images
    if layout is not None:
        doc["layout"] = layout
    assert read_as_oci(doc) is as_oci


@pytest.mark.parametrize("layout", [None, "docker", "podman", "docker-oci"])
def test_podman_is_checked_as_docker_is_whatever_the_layout(layout: str | None) -> None:
    # Podman needs the layer files of a docker-archive in the tar: splice.py puts them back,
    # so the check is Docker's, and no refusal of Podman's own before it.
    doc = {**RECORD, **({"layout": layout} if layout else {})}
    base = "sha256:" + "d" * 64
    held = check_delta(_Engine({base: ["sha256:" + "a" * 64]}, podman=True), doc, "d.tar")  # type: ignore[arg-type]
    assert held.images == (base,)
    with pytest.raises(EngineRefused, match="lacks 1 of the layers") as caught:
        check_delta(_Engine(podman=True), doc, "d.tar")  # type: ignore[arg-type]
    assert caught.value.exit_code == 1
