"""rmi over a fake engine: what the engine's answers become, per reference."""

from __future__ import annotations

from dockops.core.images.remove import DELETED, MISSING, REFUSED, UNTAGGED, remove_images
from tests.support.fake_engine import fake_engine, transport

IMAGE = {"Id": "sha256:" + "a" * 64, "RepoTags": ["app:1"], "RepoDigests": []}
STOPPED = {"Id": "c1", "Names": ["/box"], "ImageID": IMAGE["Id"], "State": "exited"}


def test_an_unknown_name_is_missing_with_the_engine_s_words_said_once() -> None:
    engine = fake_engine(
        {"GET /images/nope/json": (404, {"message": "no such image: nope: No such image: nope"})}
    )
    (outcome,) = remove_images(engine, ["nope"])
    assert outcome.outcome == MISSING and outcome.message == "rmi nope: No such image: nope"


def test_a_conflict_is_explained_from_the_holders() -> None:
    engine = fake_engine(
        {
            "GET /images/app:1/json": (200, IMAGE),
            "GET /containers/json": (200, [STOPPED]),
            "DELETE /images/app:1": (409, {"message": "conflict: unable to remove (must force)"}),
            "GET /images/json": (200, [IMAGE]),
        }
    )
    (outcome,) = remove_images(engine, ["app:1"])
    assert outcome.outcome == REFUSED and outcome.flag == "--force"
    assert outcome.message.startswith("app:1 is used by stopped container box: ")


def test_another_refusal_is_said_after_what_was_done() -> None:
    engine = fake_engine(
        {
            "GET /images/app:1/json": (200, IMAGE),
            "GET /containers/json": (200, []),
            "DELETE /images/app:1": (500, {"message": "driver failed"}),
        }
    )
    (outcome,) = remove_images(engine, ["app:1"])
    assert outcome.outcome == REFUSED and outcome.message == "rmi app:1: driver failed"


def test_with_containers_removes_them_then_deletes_the_image() -> None:
    engine = fake_engine(
        {
            "GET /images/app:1/json": (200, IMAGE),
            "GET /containers/json": (200, [STOPPED]),
            "GET /images/json": (200, [IMAGE]),
            "DELETE /containers/c1": (204, b""),
            "DELETE /images/app:1": (200, [{"Untagged": "app:1"}, {"Deleted": IMAGE["Id"]}]),
        }
    )
    (outcome,) = remove_images(engine, ["app:1"], with_containers=True)
    assert outcome.outcome == DELETED and outcome.removed_containers == ("box",)
    removal = next(r for r in transport(engine).requests if r.path == "/containers/c1")
    assert removal.params == {"force": 0, "v": 0}


def test_an_untagged_image_that_stays_says_why() -> None:
    engine = fake_engine(
        {
            "GET /images/app:1/json": (200, IMAGE),
            "GET /containers/json": (200, []),
            "DELETE /images/app:1": (200, [{"Untagged": "app:1"}]),
            f"GET /images/{IMAGE['Id']}/json": (200, {**IMAGE, "RepoTags": ["app:2"]}),
            "GET /images/json": (200, []),
        }
    )
    (outcome,) = remove_images(engine, ["app:1"])
    assert outcome.outcome == UNTAGGED
    assert outcome.message == "app:1: untagged; image aaaaaaaaaaaa kept: still tagged app:2"
