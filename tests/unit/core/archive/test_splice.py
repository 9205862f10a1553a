"""A delta loaded on Podman: the layers it left out put back from the engine's own save, under
the names the delta's manifest.json gives them, in each engine's layout; checked as they pass;
nothing sent when the engine lacks them, the upload left unfinished when its save fails."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from dockops.core.archive import delta, layout
from dockops.core.archive.delta_record import Held, read_delta
from dockops.core.archive.splice import MANIFEST_LIMIT, Splice, layer_names, load_delta
from dockops.core.archive.tarcheck import TarWalker
from dockops.engine.api import Engine
from dockops.engine.wire import StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput
from tests.support import archives
from tests.support.archives import Image, on_top
from tests.support.fake_engine import FakeTransport, Pieces, fake_engine
from tests.support.tarfuzz import END, chunked
from tests.unit.core.archive.test_layout import WRITERS, two_images

PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER = {"Components": [{"Name": "Engine", "Version": "20.10.24"}]}


def _inspect(image: Image) -> dict[str, Any]:
    return {"Id": image.id, "RootFS": {"Layers": image.diff_ids}}


def _images() -> tuple[Image, list[Image]]:
    """app:1, the base; app:2 on it, and app:3 on app:2."""
    one, two = two_images()
    return one, [two, on_top(two, {"d": b"d" * 900}, "app:3")]


def _cut(kind: str, images: list[Image], base: Image) -> bytes:
    """A delta of `images` against `base`, cut from a save stream in `kind`'s layout."""
    refs = [f"img{i}" for i in range(len(images))]
    routes: dict[str, Any] = {
        f"GET /images/{ref}/json": (200, _inspect(image))
        for ref, image in zip(refs, images, strict=True)
    }
    routes["GET /images/base/json"] = (200, _inspect(base))
    routes["GET /images/get"] = (200, Pieces(chunked(WRITERS[kind](images), 700)))
    out = io.BytesIO()
    delta.save_delta(fake_engine(routes), refs, ["base"], out, gzip=False)
    return out.getvalue()


def _engine(base: Image, save: bytes | Pieces, server: dict[str, Any] = PODMAN) -> Engine:
    transport = FakeTransport(
        {
            f"GET /images/{base.id}/json": (200, _inspect(base)),
            "GET /images/get": (
                200,
                save if isinstance(save, Pieces) else Pieces(chunked(save, 700)),
            ),
            "POST /images/load": (200, b'{"stream":"Loaded image: ' + base.id.encode() + b'"}\n'),
        }
    )
    transport.server = server
    return Engine(transport)


def _load(engine: Engine, data: bytes) -> bytes:
    record = read_delta(data)
    assert record is not None
    load_delta(engine, io.BytesIO(data), record, "d.tar")
    assert isinstance(engine.transport, FakeTransport)
    return engine.transport.uploaded


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("kind", list(WRITERS))
def test_podman_gets_the_delta_with_the_layers_it_left_out_back(kind: str, count: int) -> None:
    base, images = _images()
    images = images[:count]
    cut = _cut(kind, images, base)
    engine = _engine(base, archives.podman([base]))
    sent = _load(engine, cut)
    paths = engine.transport.paths()  # type: ignore[attr-defined]
    if kind == layout.DOCKER_OCI and count == 1:  # read as OCI: Podman skips what it holds
        assert sent == cut and "GET /images/get" not in paths
        return
    # What Podman reads is the whole archive, as the engine's full save would have given it.
    assert archives.read_images(sent) == images
    saves = [r for r in engine.transport.requests if r.path == "/images/get"]  # type: ignore[attr-defined]
    assert [r.params["names"] for r in saves] == [[base.id]]  # asked once, by ID
    # The delta as it was, less its end marker, then the layers, then the end marker.
    walker = TarWalker()
    walker.feed(sent)
    walker.finish()
    assert walker.end_at == len(sent) - len(END)
    delta_end = TarWalker()
    delta_end.feed(cut)
    assert sent.startswith(cut[: delta_end.end_at])
    added = _names(sent)[len(_names(cut)) :]
    assert sorted(archives.sha256(_read(sent, n)) for n in added) == sorted(base.diff_ids)


def _read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_docker_loads_the_delta_as_it_is(kind: str) -> None:
    base, images = _images()
    cut = _cut(kind, images, base)
    engine = _engine(base, b"", server=DOCKER)
    assert _load(engine, cut) == cut
    assert "GET /images/get" not in engine.transport.paths()  # type: ignore[attr-defined]


def test_a_gzip_delta_is_spliced_as_the_tar_inside() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    plain = _load(_engine(base, archives.podman([base])), cut)
    assert _load(_engine(base, archives.podman([base])), gzip.compress(cut)) == plain


def test_nothing_is_sent_where_the_engine_lacks_the_base() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    engine = fake_engine({"GET /images/json": (200, [])})
    engine.transport.server = PODMAN  # type: ignore[attr-defined]
    with pytest.raises(EngineRefused) as caught:
        _load(engine, cut)
    assert "lacks 2 of the layers it leaves out" in caught.value.message
    assert "\n" not in caught.value.message
    assert "POST /images/load" not in engine.transport.paths()  # type: ignore[attr-defined]


def _spliced(cut: bytes, engine: Engine, base: Image, pieces: int = 1 << 20) -> Iterator[bytes]:
    record = read_delta(cut)
    assert record is not None
    held = Held(layers=frozenset(base.diff_ids), images=(base.id,))
    return Splice(engine, record, held, "d.tar")(iter(chunked(cut, pieces)))


def test_a_layer_that_is_not_what_its_name_says_never_completes_the_upload() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    bad = archives.podman([base]).replace(b"b" * 3000, b"x" * 3000)
    sent: list[bytes] = []
    with pytest.raises(EngineRefused) as caught:
        sent.extend(_spliced(cut, _engine(base, bad), base))
    layer = archives.sha256(base.layers[1])
    assert caught.value.message == (
        f"load d.tar: the layers it leaves out, from the engine's save of {base.id[7:19]}: "
        f"its layer {layer[7:19]} does not hash to that diff ID; nothing was loaded"
    )
    # Its header went, not its data: the upload stops inside the member.
    assert sent[-1][:100].rstrip(b"\0") == f"{layer[7:]}.tar".encode()


def test_a_save_without_a_wanted_layer_is_refused() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    doc = base.doc()
    doc["rootfs"]["diff_ids"] = base.diff_ids[:1]
    first = Image(config=archives.go_json(doc), layers=base.layers[:1])  # lacks the second
    with pytest.raises(EngineRefused) as caught:
        list(_spliced(cut, _engine(base, archives.podman([first])), base))
    assert caught.value.message.endswith(
        f": it lacks layer {base.diff_ids[1][7:19]}; nothing was loaded"
    )


@pytest.mark.parametrize(
    ("cut_at", "error"), [("stream", EngineUnreachable), ("tar", EngineRefused)]
)
def test_a_broken_save_stream_stops_the_upload(cut_at: str, error: type[Exception]) -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    save = archives.podman([base])
    broken = Pieces([save[:2000], StreamBroken("connection reset")])
    short = Pieces([save[: len(save) - 2048]])  # ends without its end marker
    with pytest.raises(error):
        list(_spliced(cut, _engine(base, broken if cut_at == "stream" else short), base))


@pytest.mark.parametrize("pieces", [1, 100, 511, 512, 513, 700, 1 << 20])
def test_the_delta_s_end_marker_goes_whatever_its_pieces(pieces: int) -> None:
    base, images = _images()
    cut = _cut(layout.DOCKER, images, base) + bytes(10 * 1024)  # padded to a record, as tar does
    sent = b"".join(_spliced(cut, _engine(base, archives.podman([base])), base, pieces))
    walker = TarWalker()
    walker.feed(sent)
    assert walker.ended and walker.end_at == len(sent) - len(END)
    assert archives.read_images(sent) == images


def test_a_layer_under_two_names_is_sent_once() -> None:
    # Docker before 25 links a layer met again to its first file: both names may be asked for.
    base, images = _images()
    diff_id = base.diff_ids[0]
    record = {"images": [{"id": i.id, "diff_ids": i.diff_ids} for i in images]}
    # Each image's layers in folders a…, b…, c…: the first layer in a… in both.
    manifest = [
        {
            "Config": f"{i.id[7:]}.json",
            "Layers": [f"{n}{i.id[8:]}/layer.tar" for n in "abcd"][: len(i.diff_ids)],
        }
        for i in images
    ]
    names = layer_names(json.dumps(manifest).encode(), record, frozenset([diff_id]), "d.tar")
    first, second = f"a{images[0].id[8:]}/layer.tar", f"a{images[1].id[8:]}/layer.tar"
    assert names == {diff_id: [first, second]}
    engine = _engine(base, archives.podman([base]))
    splice = Splice(engine, record, Held(frozenset([diff_id]), (base.id,)), "d.tar")
    out = b"".join(splice.layers(names)) + END
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        got = tar.getmembers()
    assert [(m.name, m.issym(), m.linkname) for m in got] == [
        (first, False, ""),
        (second, True, f"../{first}"),
    ]


def _manifest_doc() -> tuple[bytes, dict[str, Any], frozenset[str]]:
    base, images = _images()
    manifest = [
        {
            "Config": f"blobs/sha256/{i.id[7:]}",
            "Layers": [f"blobs/sha256/{d[7:]}" for d in i.diff_ids],
        }
        for i in images
    ]
    record = {"images": [{"id": i.id, "diff_ids": i.diff_ids} for i in images]}
    return json.dumps(manifest).encode(), record, frozenset(base.diff_ids)


def test_the_names_come_from_the_delta_s_manifest() -> None:
    raw, record, omitted = _manifest_doc()
    names = layer_names(raw, record, omitted, "d.tar")
    assert names == {d: [f"blobs/sha256/{d[7:]}"] for d in sorted(omitted)}
    # Go cleans a name before it looks for it: so is it here.
    manifest = json.loads(raw)
    for entry in manifest:
        entry["Layers"] = [f"./{name}" for name in entry["Layers"]]
    assert layer_names(json.dumps(manifest).encode(), record, omitted, "d.tar") == names


@pytest.mark.parametrize(
    "damage",
    ["missing", "not json", "not a list", "other image", "fewer layers", "escapes", "not a layer"],
)
def test_a_manifest_that_does_not_name_the_layers_is_bad_input(damage: str) -> None:
    raw, record, omitted = _manifest_doc()
    manifest = json.loads(raw)
    if damage == "other image":
        manifest[0]["Config"] = "blobs/sha256/" + "f" * 64
    elif damage == "fewer layers":
        manifest[0]["Layers"].pop()
    elif damage == "escapes":
        manifest[0]["Layers"][0] = "../../etc/passwd"
    elif damage == "not a layer":
        manifest[0]["Layers"][0] = "manifest.json"
    given = {
        "missing": None,
        "not json": b"[{",
        "not a list": b'{"Layers": []}',
    }.get(damage, json.dumps(manifest).encode())
    with pytest.raises(InvalidInput) as caught:
        layer_names(given, record, omitted, "d.tar")
    expected = (
        f"load d.tar: a delta archive without a manifest.json of at most {MANIFEST_LIMIT >> 20} MiB"
        if damage == "missing"
        else "load d.tar: its manifest.json does not list the delta's images and layers"
    )
    assert caught.value.message == expected and caught.value.exit_code == 2


def test_a_delta_without_its_manifest_is_refused_before_the_engine_is_asked_to_save() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    with tarfile.open(fileobj=io.BytesIO(cut)) as tar:
        kept = [m for m in tar if m.name != "manifest.json"]
    data = [_read(cut, m.name) if m.isfile() else b"" for m in kept]
    without = b"".join(
        m.tobuf(tarfile.PAX_FORMAT) + d + bytes(-len(d) % 512)
        for m, d in zip(kept, data, strict=True)
    )
    engine = _engine(base, archives.podman([base]))
    with pytest.raises(InvalidInput, match=r"without a manifest\.json"):
        list(_spliced(without + END, engine, base))
    assert "GET /images/get" not in engine.transport.paths()  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
def test_a_large_layer_passes_in_constant_memory() -> None:
    empty = Image(
        config=archives.go_json({"rootfs": {"type": "layers", "diff_ids": []}, "os": "linux"}),
        layers=(),
    )
    big = on_top(empty, {"big": bytes(range(256)) * (64 << 12)}, "big:1")  # 64 MiB
    cut = _cut(layout.PODMAN, [on_top(big, {"s": b"s"}, "small:1")], big)
    engine = _engine(big, Pieces(chunked(archives.podman([big]), 1 << 20)))
    held = Image(config=big.config, layers=())  # its ID and diff IDs, without the data
    del big
    tracemalloc.start()
    try:
        sent = sum(len(piece) for piece in _spliced(cut, engine, held))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent > 64 << 20
    assert peak < 12 << 20  # ~8 MiB here, for a layer of 4 MiB as of 64: a few CHUNKs in flight


def test_a_truncated_delta_never_reaches_the_engine_s_save() -> None:
    base, images = _images()
    cut = _cut(layout.PODMAN, images, base)
    engine = _engine(base, archives.podman([base]))
    with pytest.raises(InvalidInput, match="truncated tar"):
        _load(engine, cut[: len(cut) - 1536])
    assert "GET /images/get" not in engine.transport.paths()  # type: ignore[attr-defined]
