"""rmi over a fake engine: what the engine's answers become, per reference; and the pure
decisions behind it: the exit code, the names a delete leaves, what stays."""

from __future__ import annotations

import pytest

from dockops.core.images.remove import (
    DELETED,
    MISSING,
    REFUSED,
    UNTAGGED,
    RmiOutcome,
    names_left,
    remove_images,
    rmi_failure,
    will_stay,
)
from dockops.errors import EngineRefused, InvalidInput, PartialFailure
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


# --- the rmi exit decision and the names a delete leaves -------------------------------------


def _outcome(ref: str, outcome: str) -> RmiOutcome:
    return RmiOutcome(ref, outcome, None, f"{ref}: {outcome}")


def test_rmi_failure_decides_the_exit_code() -> None:
    assert rmi_failure([_outcome("a", "deleted"), _outcome("b", "untagged")]) is None
    partial = rmi_failure([_outcome("a", "deleted"), _outcome("b", "refused")])
    assert isinstance(partial, PartialFailure) and partial.exit_code == 5
    assert [o.reference for o in partial.result] == ["a", "b"]
    missing = rmi_failure([_outcome("a", "missing")])
    assert isinstance(missing, InvalidInput) and missing.message == "a: missing"
    refused = rmi_failure([_outcome("a", "missing"), _outcome("b", "refused")])
    assert isinstance(refused, EngineRefused) and refused.exit_code == 1


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "tags", "digests", "left"),
    [
        ("app:1", ["app:1", "app:2"], [], ("app:2",)),
        ("app", ["app:latest", "app:2"], [], ("app:2",)),
        ("docker.io/library/app:1", ["app:1", "app:2"], [], ("app:2",)),
        ("docker.io/team/app:1", ["team/app:1"], [], ()),
        # A tag takes its repository's digests along when it is that repository's last tag...
        ("r:5000/app:1", ["r:5000/app:1"], [f"r:5000/app@{DIGEST}"], ()),
        # ...not while another tag of the repository remains, nor another repository's.
        ("r:5000/app:1", ["r:5000/app:1", "r:5000/app:2"], [f"r:5000/app@{DIGEST}"],
         ("r:5000/app:2", f"r:5000/app@{DIGEST}")),
        ("app:1", ["app:1"], [f"r:5000/app@{DIGEST}"], (f"r:5000/app@{DIGEST}",)),
        # A digest goes alone.
        (f"r:5000/app@{DIGEST}", ["r:5000/app:1"], [f"r:5000/app@{DIGEST}"], ("r:5000/app:1",)),
    ],
)  # fmt: skip
def test_rmi_names_left_follow_the_engine(
    reference: str, tags: list[str], digests: list[str], left: tuple[str, ...]
) -> None:
    assert names_left(reference, {"RepoTags": tags, "RepoDigests": digests}) == left


def test_rmi_will_stay_by_name_and_by_id() -> None:
    two = {"RepoTags": ["app:1", "app:2"], "RepoDigests": []}
    assert will_stay("app:1", two, by_id=False, force=True) == "other tags remain: app:2"
    assert will_stay("app:2", {"RepoTags": ["app:2"]}, by_id=False, force=False) is None
    # By ID: several tags need force (then every tag goes); one tag and its digests do not.
    assert "several names" in (will_stay("abc", two, by_id=True, force=False) or "")
    assert will_stay("abc", two, by_id=True, force=True) is None
    one = {"RepoTags": ["r:5000/app:1"], "RepoDigests": [f"r:5000/app@{DIGEST}"]}
    assert will_stay("abc", one, by_id=True, force=False) is None
    assert will_stay("abc", {"RepoTags": [], "RepoDigests": []}, by_id=True, force=False) is None
