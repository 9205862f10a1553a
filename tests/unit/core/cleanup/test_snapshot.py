"""The snapshot prune-dangling plans from, over a fake engine: Docker's and Podman's answers,
and an engine another process is deleting from at the same time."""

from __future__ import annotations

from typing import Any

import pytest

from dockops.core.cleanup import snapshot
from dockops.core.cleanup.snapshot import engine_state, settled
from dockops.engine.errors import Refused
from tests.support.fake_engine import fake_engine, transport

PODMAN_VERSION = {
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
}
DOCKER_VERSION = {"Version": "20.10.24", "ApiVersion": "1.41", "Components": [{"Name": "Engine"}]}
PARENT, CHILD = "a" * 64, "b" * 64


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot.time, "sleep", lambda seconds: None)


def _image(hex_id: str, parent: str, size: int) -> dict[str, Any]:
    return {"Id": f"sha256:{hex_id}", "ParentId": parent, "Created": 1, "Size": size}


def test_podman_parents_without_the_prefix_still_have_children_and_its_own_df_sizes() -> None:
    # Podman 4.3: ParentId is bare hex; SharedSize is 0 everywhere in the compat API, and the
    # unique size is only in its own df (libpod), keyed by bare hex too.
    engine = fake_engine(
        {
            "GET /version": (200, PODMAN_VERSION),
            "GET /images/json": (
                200,
                [_image(PARENT, "", 2_000_000), _image(CHILD, PARENT, 2_000_500)],
            ),
            "GET /libpod/system/df": (
                200,
                {
                    "Images": [
                        {"ImageID": PARENT, "UniqueSize": 7},
                        {"ImageID": CHILD, "UniqueSize": 500},
                    ]
                },
            ),
            "GET /containers/json": (200, []),
        }
    )
    states = {s.id: s for s in engine_state(engine)}
    assert states[f"sha256:{PARENT}"].has_children and not states[f"sha256:{CHILD}"].has_children
    assert (states[f"sha256:{PARENT}"].size, states[f"sha256:{CHILD}"].size) == (7, 500)
    assert "GET /system/df" not in transport(engine).paths()  # its compat df says nothing more


def test_docker_sizes_come_from_its_df_below_api_1_42() -> None:
    engine = fake_engine(
        {
            "GET /version": (200, DOCKER_VERSION),
            "GET /images/json": (
                200,
                [_image(PARENT, "", 10), _image(CHILD, f"sha256:{PARENT}", 30)],
            ),
            "GET /system/df": (
                200,
                {
                    "Images": [
                        {"Id": f"sha256:{PARENT}", "Size": 10, "SharedSize": 10},
                        {"Id": f"sha256:{CHILD}", "Size": 30, "SharedSize": 10},
                    ]
                },
            ),
            "GET /containers/json": (200, []),
        }
    )
    states = {s.id: s for s in engine_state(engine)}
    assert states[f"sha256:{PARENT}"].has_children
    assert (states[f"sha256:{PARENT}"].size, states[f"sha256:{CHILD}"].size) == (0, 20)
    assert "GET /libpod/system/df" not in transport(engine).paths()


HALF_DELETED = (
    500,
    {"message": 'list images: checking if image "aa" is dangling: locating image with ID "aa": '
     "image not known"},
)  # fmt: skip


def test_a_listing_that_meets_an_image_half_deleted_is_asked_again() -> None:
    engine = fake_engine(
        {
            "GET /version": (200, PODMAN_VERSION),
            "GET /images/json": [HALF_DELETED, HALF_DELETED, (200, [_image(PARENT, "", 5)])],
            "GET /libpod/system/df": (200, {"Images": []}),
            "GET /containers/json": (200, []),
        }
    )
    assert [s.id for s in engine_state(engine)] == [f"sha256:{PARENT}"]
    assert transport(engine).paths().count("GET /images/json") == 3


def test_asking_again_is_bounded_and_only_for_an_image_going() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise Refused("list images: reading image: image not known", 500)

    with pytest.raises(Refused, match="image not known"):
        settled(broken)
    assert len(calls) == 5

    def other() -> None:
        calls.append(1)
        raise Refused("driver failed", 500)

    calls.clear()
    with pytest.raises(Refused, match="driver failed"):
        settled(other)
    assert len(calls) == 1
