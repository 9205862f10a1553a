"""Tars made to order for the tar readers' tests: header blocks with any field, PAX records;
and archives to fuzz the readers with (hypothesis): small real tars, one laid out as `docker
save` writes it (OCI layout beside the legacy files), and mutations of their headers. Most
mutations set the checksum right again, so that the mutated field, not the checksum, is what
a reader meets; some leave it, cut the archive, flip bytes anywhere or break the JSON of a
manifest or config.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

from hypothesis import strategies as st

from tests.support.imagefactory import FakeImage, tar_of, write_save_tar

BLOCK = 512
SIZE = slice(124, 136)
CHECKSUM = slice(148, 156)
TYPE = 156
END = bytes(2 * BLOCK)  # the end-of-archive marker: two zero blocks

# Members that take each format's long-name and multi-block paths.
SAMPLE = {
    "manifest.json": b"[]",
    "a" * 150 + "/long-name-needs-pax": b"x" * 1000,
    "layer.tar": bytes(range(256)) * 5000,
}


def fix_checksum(block: bytearray) -> None:
    """Set a header block's checksum for what it now holds (POSIX: its own field as spaces)."""
    block[CHECKSUM] = b" " * 8
    block[CHECKSUM] = f"{sum(block):06o}\0 ".encode()


def header(
    name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, size_field: bytes | None = None
) -> bytes:
    """One ustar header block; `size_field`, when given, replaces the size field as is."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    if size_field is not None:
        block[124:136] = size_field
    fix_checksum(block)
    return bytes(block)


def member(name: str, data: bytes) -> bytes:
    return header(name, len(data)) + data + bytes(-len(data) % 512)


def pax(records: bytes, kind: bytes = tarfile.XHDTYPE) -> bytes:
    return header("PaxHeaders/x", len(records), kind) + records + bytes(-len(records) % 512)


def record(key: str, value: str) -> bytes:
    """A well-formed PAX record."""
    body = f" {key}={value}\n".encode()
    return str(_record_length(body)).encode() + body


def _record_length(body: bytes) -> int:
    """A PAX record's length counts its own digits."""
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return length


def docker_save_like(first: tuple[str, bytes] | None = None) -> bytes:
    """What `docker save` writes since moby 25: an OCI layout (blobs/sha256/...) with the
    legacy manifest.json and repositories beside it; `first` goes before everything."""
    layer = tar_of({"etc/hostname": b"box\n", "x" * 120 + "/deep": b"1" * 700})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    blobs = {diff_id[7:]: layer, config_digest: config}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))

        if first is not None:
            add(*first)
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for digest, data in blobs.items():
            add(f"blobs/sha256/{digest}", data)
        add("index.json", b'{"schemaVersion":2,"manifests":[]}')
        add(
            "manifest.json",
            json.dumps(
                [
                    {
                        "Config": f"blobs/sha256/{config_digest}",
                        "RepoTags": ["app:1"],
                        "Layers": [f"blobs/sha256/{diff_id[7:]}"],
                    }
                ]
            ).encode(),
        )
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("repositories", b'{"app":{"1":"' + config_digest.encode() + b'"}}')
    return buffer.getvalue()


def legacy_save() -> bytes:
    """The pre-25 `docker save` layout: <id>.json, <id>/layer.tar, manifest.json."""
    out = io.BytesIO()
    write_save_tar(out, [FakeImage(tags=("app:1",), layer_bytes=600, seed="fuzz")])
    return out.getvalue()


def gnu_with_links() -> bytes:
    """GNU format: a long name (an 'L' header), a symlink, a folder, a FIFO."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind in (("d", tarfile.DIRTYPE), ("d/link", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "target" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info)
        info = tarfile.TarInfo("f" * 150)
        info.size = 1500
        tar.addfile(info, io.BytesIO(b"q" * 1500))
        info = tarfile.TarInfo("fifo")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    return buffer.getvalue()


@dataclass(frozen=True)
class Seed:
    data: bytes
    headers: tuple[int, ...]  # offsets of every header block (extended ones included)
    extended: tuple[int, ...]  # offsets of PAX and GNU long-name headers (data after them)
    contents: tuple[int, ...]  # where the data of small members (manifests, configs) starts


def seed(data: bytes) -> Seed:
    headers, extended, contents = [], [], []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile() and 0 < member.size < 4096:
                contents.append(member.offset_data)
            own = member.offset_data - BLOCK
            position = member.offset
            while position < own:  # the extended headers before the member's own
                extended.append(position)
                headers.append(position)
                size = int(data[position + 124 : position + 136].strip(b" \0") or b"0", 8)
                position += BLOCK + -(-size // BLOCK) * BLOCK
            headers.append(own)
    return Seed(data, tuple(headers), tuple(extended), tuple(contents))


SIZES = [
    b"-0000001000\0",
    b"-0000000001\0",
    b"00000000008\0",
    b"0o1000\0\0\0\0\0\0",
    b"+0000001000\0",
    b"0000_001000\0",
    b"00 0001000\0\0",
    b"\xff" * 12,
    b"\xff" + bytes(10) + b"\x01",
    b"\x80" + bytes(10) + b"\x01",
    b"\x80" + b"\xff" * 11,
    b"\xc0" + bytes(11),
    b"77777777777\0",
    bytes(12),
    b" " * 12,
]
TYPES = [b"x", b"g", b"L", b"K", b"S", b"0", b"\0", b"1", b"2", b"3", b"5", b"6", b"7", b"Z"]
PAX_KEYS = [b"size", b"path", b"linkpath", b"GNU.sparse.major", b"comment", b""]
PAX_VALUES = [b"0", b"5", b"1000", b"8589934593", b"-1", b"9" * 25, b"", b"x", b"1 2", b"\0"]


@st.composite
def pax_records(draw: st.DrawFn) -> bytes:
    records = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(PAX_KEYS) | st.binary(max_size=8))
        value = draw(st.sampled_from(PAX_VALUES) | st.binary(max_size=16))
        body = b" " + key + b"=" + value + b"\n"
        length = _record_length(body) + draw(st.sampled_from([0, 0, 0, -1, 1, -10, 100]))
        records.append(str(length).encode() + body)
    return b"".join(records)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Seed]) -> bytes:
    """One of `seeds`, its headers (or the start of a small member) rewritten a few times."""
    chosen = draw(st.sampled_from(seeds))
    data = bytearray(chosen.data)

    def put(at: int, offset: int, value: bytes) -> None:
        data[at + offset : at + offset + len(value)] = value[: max(0, len(data) - at - offset)]

    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["size", "type", "field", "pax", "content", "byte", "cut"]))
        at = draw(st.sampled_from(chosen.headers))
        if at + BLOCK > len(data):
            break  # cut before it
        if how == "size":
            put(at, SIZE.start, draw(st.sampled_from(SIZES) | st.binary(min_size=12, max_size=12)))
        elif how == "type":
            put(at, TYPE, draw(st.sampled_from(TYPES)))
            if draw(st.booleans()):
                put(at, 482, b"\1")  # the old GNU sparse "more of the map follows" flag
        elif how == "field":
            start = draw(st.integers(0, BLOCK - 1))
            put(at, start, draw(st.binary(min_size=1, max_size=16))[: BLOCK - start])
        elif how == "pax" and chosen.extended:
            at = draw(st.sampled_from(chosen.extended))
            records = draw(pax_records())
            put(at, TYPE, draw(st.sampled_from([b"x", b"g", b"L"])))
            put(at, SIZE.start, f"{len(records):011o}\0".encode())
            put(at, BLOCK, records)
        elif how == "content" and chosen.contents:
            start = draw(st.sampled_from(chosen.contents)) + draw(st.integers(0, 40))
            if start < len(data):  # JSON broken, or made something else
                data[start] = draw(st.sampled_from(b'[{]}"1\0'))
            continue
        elif how == "byte":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            continue
        elif how == "cut":
            del data[draw(st.integers(0, len(data))) :]
            break
        if draw(st.integers(0, 9)):  # mostly: a header that passes its checksum
            block = bytearray(data[at : at + BLOCK])
            fix_checksum(block)
            data[at : at + BLOCK] = block
    return bytes(data)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]
