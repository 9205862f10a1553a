"""Which member of an archive is which, in each engine's layout as tests/support/archives.py
writes it (checked there against the engines' own save streams)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Sequence

import pytest

from dockops.core.archive import layout
from tests.support import archives
from tests.support.archives import Image, layer_tar, on_top

Writer = Callable[[Sequence[Image]], bytes]
WRITERS: dict[str, Writer] = {
    layout.DOCKER: archives.legacy,
    layout.DOCKER_OCI: archives.docker25,
    layout.PODMAN: archives.podman,
}


def two_images() -> list[Image]:
    """app:1 (two layers) and app:2 on top of it: layers the archive holds once, each of its
    own tar size."""
    base = Image(
        config=archives.go_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "rootfs": {"type": "layers", "diff_ids": [archives.sha256(layer_tar({"a": b"a"}))]},
            }
        ),
        layers=(layer_tar({"a": b"a"}),),
    )
    one = on_top(base, {"b": b"b" * 3000}, "app:1")
    return [one, on_top(one, {"c": b"c" * 600}, "example.com/team/app:2")]


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_layout_is_told_by_its_members(kind: str) -> None:
    names = [m.name for m in _members(WRITERS[kind](two_images()))]
    told = {layout.layout_told(name) for name in names} - {None}
    assert told == (set() if kind == layout.DOCKER else {kind})


@pytest.mark.parametrize("kind", list(WRITERS))
def test_the_layers_are_found_in_each_layout(kind: str) -> None:
    images = two_images()
    diff_ids = {d for image in images for d in image.diff_ids}
    members = _members(WRITERS[kind](images))
    layers = [m for m in members if m.isfile() and layout.may_be_layer(m.name)]
    named = {layout.named_digest(m.name) for m in layers}
    if kind == layout.DOCKER:
        # <v1 id>/layer.tar: which layer each is, only its bytes tell; a layer met again
        # under another v1 ID is a symlink.
        assert named == {None} and len(layers) == len(diff_ids)
        links = [m.linkname.removeprefix("../") for m in members if m.issym()]
        assert len(links) == 1 and links[0] in {m.name for m in layers}
    elif kind == layout.PODMAN:
        assert named == diff_ids  # <diff id>.tar, each once; the symlinks are no regular files
        assert all(m.issym() for m in members if m.name.endswith("/layer.tar"))
    else:
        # Every blob may be a layer: configs and manifests too, which no image lists.
        assert diff_ids < named and len(named) == len(layers)
    assert all(layout.label(m.name) == m.name.removeprefix("blobs/sha256/")[:12] for m in layers)


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_image_config_is_where_config_names_say(kind: str) -> None:
    images = two_images()
    names = {m.name for m in _members(WRITERS[kind](images))}
    for image in images:
        assert len(set(layout.config_names(image.id)) & names) == 1
        assert {layout.may_be_metadata(n) for n in layout.config_names(image.id)} == {True}
    assert layout.may_be_metadata("manifest.json")


@pytest.mark.parametrize(
    "name",
    [
        "blobs/sha256/" + "a" * 63,  # short
        "blobs/sha512/" + "a" * 64,
        "x/blobs/sha256/" + "a" * 64,
        "A" * 64 + ".tar",  # upper case: no digest
        "a" * 64 + ".tar.gz",
        "a" * 64 + "/layer.tar/x",
        "manifest.json",
    ],
)
def test_names_that_are_no_digest_name_none(name: str) -> None:
    assert layout.named_digest(name) is None and not layout.may_be_layer(name)


def test_labels_are_the_short_ids() -> None:
    assert layout.label("blobs/sha256/" + "ab" * 32) == "abababababab"
    assert layout.label("cd" * 32 + ".tar") == "cdcdcdcdcdcd"
    assert layout.label("ef" * 32 + "/layer.tar") == "efefefefefef"
