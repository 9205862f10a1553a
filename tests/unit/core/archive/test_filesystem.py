"""What `import` loses of an image (core/archive/filesystem.py) and the --change lines it takes;
how import names the image and checks its input on each engine, and export's unknown name."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from dockops.core.archive.files import CHUNK
from dockops.core.archive.filesystem import (
    CONFIG_FIELDS,
    export_container,
    import_image,
    lost_by_import,
)
from dockops.core.images.commit import validate_changes
from dockops.engine.api import Engine
from dockops.errors import InvalidInput
from dockops.progress import ProgressEvent
from tests.support.fake_engine import FakeTransport
from tests.support.imagefactory import tar_of
from tests.support.tarfuzz import SAMPLE


def test_what_import_loses() -> None:
    assert lost_by_import([]) == ("history", *CONFIG_FIELDS)
    lost = lost_by_import(['CMD ["sh"]', "env A=b"])
    assert "CMD" not in lost and "ENV" not in lost and lost[0] == "history"
    assert validate_changes(["WORKDIR /x"]) == ("WORKDIR /x",)
    for bad in ["RUN make", "", "FROM busybox"]:
        with pytest.raises(InvalidInput, match="invalid change"):
            validate_changes([bad])


PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER = {"Components": [{"Name": "Engine", "Version": "20.10.24"}]}
IMAGE_ID = "sha256:" + "c" * 64


def _engine(routes: dict[str, Any], server: dict[str, Any]) -> tuple[Engine, FakeTransport]:
    transport = FakeTransport(routes)
    transport.server = server
    return Engine(transport), transport


@pytest.mark.parametrize("server", [DOCKER, PODMAN])
def test_import_names_the_image_in_repo_as_the_docker_cli_does(server: dict[str, Any]) -> None:
    # Podman 4 ignores `tag`: with repo=NAME and tag=TAG, its image was NAME:latest.
    engine, transport = _engine({"POST /images/create": (200, {"status": IMAGE_ID})}, server)
    result = import_image(engine, io.BytesIO(tar_of(SAMPLE)), "team/app:v2")
    [sent] = [r for r in transport.requests if r.path == "/images/create"]
    assert sent.params == {"fromSrc": "-", "repo": "team/app:v2"}
    assert (result.reference, result.id) == ("team/app:v2", IMAGE_ID)
    engine, transport = _engine({"POST /images/create": (200, {"status": IMAGE_ID})}, server)
    assert import_image(engine, io.BytesIO(tar_of(SAMPLE)), "app").reference == "app:latest"
    assert transport.requests[-1].params["repo"] == "app:latest"


class _Pipe(io.RawIOBase):
    """stdin from a pipe: read once, no seeking."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


@pytest.mark.parametrize("pipe", [False, True])
def test_on_podman_a_broken_import_is_refused_before_a_byte_is_sent(
    pipe: bool, tmp_path: Path
) -> None:
    # Podman 4.3 imports what part of a body it got when the upload stops: check all first.
    data = tar_of({"big": b"x" * (3 * CHUNK)})
    path = tmp_path / "cut.tar"
    path.write_bytes(data[: 2 * CHUNK + 100])
    engine, transport = _engine({"POST /images/create": (200, {"status": IMAGE_ID})}, PODMAN)
    source: Path | BinaryIO = (
        cast(BinaryIO, io.BufferedReader(_Pipe(path.read_bytes()))) if pipe else path
    )
    with pytest.raises(InvalidInput, match="truncated tar"):
        import_image(engine, source, "app:1")
    assert "POST /images/create" not in transport.paths()

    # A whole tar, checked first, is then sent from its start: from a pipe, through a spool.
    good: Path | BinaryIO = cast(BinaryIO, io.BufferedReader(_Pipe(data))) if pipe else path
    if not pipe:
        path.write_bytes(data)
    events: list[ProgressEvent] = []
    result = import_image(engine, good, "app:1", progress=events.append)
    assert result.bytes == len(data) and result.id == IMAGE_ID
    assert {e.status for e in events} >= {"checking", "sending"}


def test_an_unknown_container_to_export_is_said_in_docker_s_words_on_any_engine() -> None:
    refusal = 'no container with name or ID "gone" found: no such container'
    engine, _ = _engine({"GET /containers/gone/json": (404, {"message": refusal})}, PODMAN)
    with pytest.raises(InvalidInput) as caught:
        export_container(engine, "gone", io.BytesIO())
    assert caught.value.message == "export gone: No such container: gone"
