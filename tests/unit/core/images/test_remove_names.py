"""The names an rmi removes and leaves, by the engine's rules, in docker's familiar form
whatever form the engine stores them in (podman: docker.io/team/app:1, localhost/app:1)."""

from __future__ import annotations

import pytest

from dockops.core.images.remove_names import is_id, last_tag, names_left, will_stay

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


# --- podman stores full names: docker.io/team/app:1, docker.io/library/app:1, localhost/app:1 --


@pytest.mark.parametrize(
    ("reference", "tags", "digests", "left"),
    [
        ("team/app:1", ["docker.io/team/app:1"], [f"docker.io/team/app@{DIGEST}"], ()),
        ("app:1", ["docker.io/library/app:1", "docker.io/library/app:2"], [], ("app:2",)),
        ("team/app:1", ["docker.io/team/app:1", "docker.io/team/app:2"],
         [f"docker.io/team/app@{DIGEST}"], ("team/app:2", f"team/app@{DIGEST}")),
        # A short name podman keeps under localhost/ is that name...
        ("app:1", ["localhost/app:1"], [], ()),
        ("localhost/app:1", ["localhost/app:1", "docker.io/library/app:1"], [], ("app:1",)),
        # ...but docker.io's comes first, as the engine resolves it.
        ("app:1", ["docker.io/library/app:1", "localhost/app:1"], [], ("localhost/app:1",)),
    ],
)  # fmt: skip
def test_podman_names_are_compared_familiar(
    reference: str, tags: list[str], digests: list[str], left: tuple[str, ...]
) -> None:
    assert names_left(reference, {"RepoTags": tags, "RepoDigests": digests}) == left


def test_podman_last_tag_is_the_stored_name_and_an_id_is_no_name() -> None:
    image = {"Id": "sha256:" + "b" * 64, "RepoTags": ["docker.io/team/app:1"], "RepoDigests": []}
    assert last_tag("team/app:1", image) == "docker.io/team/app:1"
    assert last_tag("app:1", {**image, "RepoTags": ["localhost/app:1"]}) == "localhost/app:1"
    two = {**image, "RepoTags": ["docker.io/team/app:1", "docker.io/team/app:2"]}
    assert last_tag("team/app:1", two) is None
    assert not is_id("team/app:1", image) and is_id("bbbbbbbbbbbb", image)
    assert "several names" in (will_stay("bbbbbbbbbbbb", two, by_id=True, force=False) or "")
