"""Archives under bad conditions: a disk that fills up during save, and load/import fed corrupt,
truncated or non-tar input, or a tar whose manifest names layers it does not hold. Interrupted
saves and exports and streams cut by the engine are in test_interrupt.py; load's broken inputs
in test_save_load.py."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.support.imagefactory import FakeImage, write_save_tar
from tests.support.tools import error_line, make_image


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` for the block."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "dockops-test-full", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("name", ["x.tar", "x.tar.gz"])
def test_a_full_disk_during_save_is_one_clear_line_and_no_file(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, name: str
) -> None:
    ref = "dockops-test/full:1"
    make_image(docker_env, ref, megabytes=8)  # random data: gzip does not make it fit
    with small_disk(tmp_path / "small") as disk:
        target = disk / name
        line = error_line(cli("save", ref, "-o", str(target)), 2, progress=True)
        assert line == (
            f"dockops: error: save {ref}: cannot write {target}: no space left on device; "
            "nothing was left behind"
        )
        assert os.listdir(disk) == []
        # The disk is usable again at once: nothing of the attempt holds space.
        assert os.statvfs(disk).f_bfree == os.statvfs(disk).f_blocks


def _broken_inputs(good: bytes) -> dict[str, bytes]:
    """Ways a filesystem tar (or its gzip) arrives broken."""
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        big = max(tar.getmembers(), key=lambda m: m.size)
    packed = gzip.compress(good, 1)
    return {
        "truncated.tar": good[: big.offset_data + 100_000],
        "truncated.tar.gz": packed[: len(packed) // 2],
        "header.tar": good[: big.offset] + b"\xff" * 512 + good[big.offset + 512 :],
        "text.txt": b"not a tar at all\n" * 64,
        "random.bin": os.urandom(64 * 1024),
        "text.gz": gzip.compress(b"still not a tar\n" * 64),
    }


EXPECTED = {
    "truncated.tar": "truncated tar",
    "truncated.tar.gz": "corrupt or truncated gzip",
    "header.tar": "corrupt tar: bad header at byte",
    "text.txt": "not a tar archive",
    "random.bin": "not a tar archive",
    "text.gz": "corrupt tar: bad header at byte 0 (at the start)",
}


def test_import_refuses_corrupt_truncated_and_non_tar_input_and_makes_nothing(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    make_image(docker_env, "dockops-test/fs-source:1", megabytes=2)
    docker_env.containers.create(
        "dockops-test/fs-source:1", name="dockops-fs-source", network_mode="none"
    )
    good = tmp_path / "good.tar"
    assert cli("export", "dockops-fs-source", "-o", str(good)).code == 0
    before = {i["Id"] for i in docker_env.api.images(all=True)}
    for name, content in _broken_inputs(good.read_bytes()).items():
        path = tmp_path / name
        path.write_bytes(content)
        for args in (["import", str(path), "dockops-test/imported:bad"], ["load", "-i", str(path)]):
            line = error_line(cli(*args), 2, progress=True)
            assert EXPECTED[name] in line, (args, line)
            assert line.startswith(f"dockops: error: {path}: "), line
    assert {i["Id"] for i in docker_env.api.images(all=True)} == before  # nothing was made
    assert cli("import", str(good), "dockops-test/imported:good").code == 0  # the input was it


def _without_layers(tar_bytes: bytes) -> bytes:
    """The same save-format tar with every layer.tar left out (manifest.json still names them)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(tar_bytes)) as source,
        tarfile.open(fileobj=out, mode="w") as target,
    ):
        for member in source.getmembers():
            if not member.name.endswith("/layer.tar"):
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def test_a_tar_whose_manifest_names_missing_layers(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path, engine_kind: str
) -> None:
    full = io.BytesIO()
    image = FakeImage(seed="missing-layer", tags=("dockops-test/ml:1",))
    [image_id] = write_save_tar(full, [image])
    with tarfile.open(fileobj=io.BytesIO(full.getvalue())) as tar:
        layer = next(m.name for m in tar.getmembers() if m.name.endswith("/layer.tar"))
    partial = tmp_path / "partial.tar"
    partial.write_bytes(_without_layers(full.getvalue()))

    # The engine lacks the layer: refused, naming the file the tar should have held (Podman
    # does not say which one).
    refusal = (
        f"dockops: error: load {partial}: incomplete archive: its manifest.json names {layer}, "
        "which is not in the tar (and the engine does not hold that layer already)"
        if engine_kind == "docker"
        else f"dockops: error: load {partial}: incomplete archive: its manifest.json names "
        "layer files that are not in the tar (Podman loads no such archive, even when it holds "
        "those layers)"
    )
    assert error_line(cli("load", "-i", str(partial)), 2, progress=True) == refusal
    assert not docker_env.images.list(name="dockops-test/ml")

    # The engine has the layer (a delta archive's case): it loads, as `docker load` does.
    complete = tmp_path / "complete.tar"
    complete.write_bytes(full.getvalue())
    assert cli("load", "-i", str(complete)).code == 0
    docker_env.api.tag(image_id, "dockops-test/ml-keep", "1")  # keep the layer...
    docker_env.api.remove_image("dockops-test/ml:1", noprune=True)  # ...drop the name
    loaded = cli("load", "-i", str(partial), "--json")
    if engine_kind == "podman":
        # Difference: Podman wants every layer file in the tar, held or not.
        assert error_line(loaded, 2, progress=True) == refusal
        assert not docker_env.images.list(name="dockops-test/ml")
        return
    assert loaded.code == 0, loaded.err
    assert docker_env.images.get("dockops-test/ml:1").id == image_id
