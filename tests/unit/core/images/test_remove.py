"""rmi over a fake engine: what the engine's answers become, per reference, on docker and on
podman (whose forced DELETE would remove containers: dockops never sends it); and the exit
code."""

from __future__ import annotations

import pytest

from dockops.core.images.remove import (
    DELETED,
    MISSING,
    REFUSED,
    UNTAGGED,
    RmiOutcome,
    remove_images,
    rmi_failure,
)
from dockops.errors import EngineRefused, InvalidInput, PartialFailure
from tests.support.fake_engine import fake_engine, transport

IMAGE = {"Id": "sha256:" + "a" * 64, "RepoTags": ["app:1"], "RepoDigests": []}
DOCKER = (200, {"Components": [{"Name": "Engine"}]})
PODMAN = (200, {"Components": [{"Name": "Podman Engine"}]})
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
            "GET /version": DOCKER,
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
            "GET /version": DOCKER,
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
            "GET /version": DOCKER,
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
            "GET /version": DOCKER,
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


# --- podman: its forced DELETE removes containers, so dockops never sends force there ---------

PODMAN_IMAGE = {
    "Id": "sha256:" + "b" * 64,
    "RepoTags": ["docker.io/team/app:1"],
    "RepoDigests": ["docker.io/team/app@sha256:" + "d" * 64],
}
RUNNING = {"Id": "c2", "Names": ["/run"], "ImageID": PODMAN_IMAGE["Id"], "State": "running"}
PODMAN_STOPPED = {**RUNNING, "Id": "c3", "Names": ["/stop"], "State": "exited"}
BY_ID = f"/images/{PODMAN_IMAGE['Id']}/json"


def _never_forced(engine: object) -> None:
    deletes = [r for r in transport(engine).requests if r.method == "DELETE"]  # type: ignore[arg-type]
    assert all(r.params.get("force") == 0 for r in deletes if r.path.startswith("/images/"))


def test_podman_forced_untag_of_an_image_in_use_is_podman_s_own_untag() -> None:
    untagged = {**PODMAN_IMAGE, "RepoTags": [], "RepoDigests": []}
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/team/app:1/json": (200, PODMAN_IMAGE),
            "GET /containers/json": (200, [RUNNING]),
            f"POST /libpod/images/{PODMAN_IMAGE['Id']}/untag": (201, b""),
            f"GET {BY_ID}": (200, untagged),
            "GET /images/json": (200, [untagged]),
        }
    )
    (outcome,) = remove_images(engine, ["team/app:1"], force=True)
    assert (outcome.outcome, outcome.dangling, outcome.untagged) == (
        UNTAGGED, True, ("team/app:1",),
    )  # fmt: skip
    assert outcome.message.endswith("kept, now dangling: held by container run")
    untag = next(r for r in transport(engine).requests if r.path.endswith("/untag"))
    assert untag.params == {"repo": "docker.io/team/app", "tag": "1"}
    assert not any(r.method == "DELETE" for r in transport(engine).requests)


def test_podman_forced_rmi_under_a_stopped_container_untags_and_says_how_to_delete() -> None:
    untagged = {**PODMAN_IMAGE, "RepoTags": None, "RepoDigests": []}
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/team/app:1/json": (200, PODMAN_IMAGE),
            "GET /containers/json": (200, [PODMAN_STOPPED]),
            f"POST /libpod/images/{PODMAN_IMAGE['Id']}/untag": (201, b""),
            f"GET {BY_ID}": (200, untagged),
            "GET /images/json": (200, [untagged]),
        }
    )
    (outcome,) = remove_images(engine, ["team/app:1"], force=True)
    assert outcome.outcome == UNTAGGED and outcome.containers == ("stop",)
    assert outcome.message.endswith(
        "held by container stop; --with-containers removes them and the image"
    )


def test_podman_answers_bare_ids_and_full_names_read_as_docker_s() -> None:
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/team/app:1/json": (200, PODMAN_IMAGE),
            "GET /containers/json": (200, []),
            "DELETE /images/team/app:1": (
                200,
                [{"Deleted": "b" * 64}, {"Untagged": "docker.io/team/app:1"}],
            ),
        }
    )
    (outcome,) = remove_images(engine, ["team/app:1"], force=True)
    assert (outcome.outcome, outcome.deleted, outcome.untagged) == (
        DELETED, (PODMAN_IMAGE["Id"],), ("team/app:1",),
    )  # fmt: skip
    _never_forced(engine)


def test_an_image_gone_after_the_delete_was_deleted_whatever_the_answer_said() -> None:
    # Podman deletes a parent of child images and answers only Untagged.
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/team/app:1/json": (200, PODMAN_IMAGE),
            "GET /containers/json": (200, []),
            "DELETE /images/team/app:1": (200, [{"Untagged": "docker.io/team/app:1"}]),
            f"GET {BY_ID}": (404, {"message": "image not known"}),
        }
    )
    (outcome,) = remove_images(engine, ["team/app:1"])
    assert (outcome.outcome, outcome.deleted) == (DELETED, (PODMAN_IMAGE["Id"],))


def test_podman_forced_rmi_by_id_of_several_names_untags_them_then_deletes() -> None:
    two = {**PODMAN_IMAGE, "RepoTags": ["docker.io/team/app:1", "docker.io/team/app:2"]}
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/bbbbbbbbbbbb/json": (200, two),
            "GET /containers/json": (200, []),
            f"POST /libpod/images/{two['Id']}/untag": (201, b""),
            f"DELETE /images/{two['Id']}": (200, [{"Deleted": "b" * 64}]),
        }
    )
    (outcome,) = remove_images(engine, ["bbbbbbbbbbbb"], force=True)
    assert outcome.outcome == DELETED and outcome.untagged == ("team/app:1", "team/app:2")
    untag = next(r for r in transport(engine).requests if r.path.endswith("/untag"))
    assert untag.params == {}
    _never_forced(engine)


@pytest.mark.parametrize(
    ("holders", "text", "flag", "words"),
    [
        ([], "unable to delete image by ID with more than one tag ([...]): please force removal",
         "--force", "is an ID with several tags: --force removes every tag and the image"),
        ([PODMAN_STOPPED], "image is in use by a container", "--with-containers",
         "podman deletes no image a container uses, even with --force"),
        ([PODMAN_STOPPED], "by ID with more than one tag", "--with-containers --force",
         "--with-containers --force removes them, every tag and the image"),
        ([RUNNING], "image is in use by a container", "--with-containers --force",
         "is used by running container run: --with-containers --force removes"),
    ],
)  # fmt: skip
def test_podman_refusals_by_id_name_what_would_do_it(
    holders: list[dict[str, str]], text: str, flag: str, words: str
) -> None:
    status = 409 if "in use" in text else 500
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/bbbbbbbbbbbb/json": (200, PODMAN_IMAGE),
            "GET /containers/json": (200, holders),
            "DELETE /images/bbbbbbbbbbbb": (status, {"message": text}),
            "GET /images/json": (200, [PODMAN_IMAGE]),
        }
    )
    # Forced when a container uses it (docker would still refuse a running one, or delete the
    # image under a stopped one): podman is asked without force all the same.
    (outcome,) = remove_images(engine, ["bbbbbbbbbbbb"], force=bool(holders))
    assert outcome.outcome == REFUSED and outcome.flag == flag and words in outcome.message
    _never_forced(engine)
