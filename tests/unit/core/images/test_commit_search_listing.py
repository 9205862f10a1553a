"""commit, tag, history, layers, search and images over a fake engine: the requests made and
what the engine's refusals become."""

from __future__ import annotations

import json

import pytest

from dockops.core.images.commit import commit_container, image_history, tag_image, validate_changes
from dockops.core.images.layers import image_layers
from dockops.core.images.listing import list_images
from dockops.core.images.search import search_images
from dockops.engine.errors import Refused
from dockops.engine.wire import Lost
from dockops.errors import InvalidInput, RegistryUnreachable
from tests.support.fake_engine import fake_engine, transport

NO_IMAGE = (404, {"message": "No such image: nope"})


def test_commit_sends_the_changes_and_turns_a_400_into_bad_input() -> None:
    engine = fake_engine({"POST /commit": (201, {"Id": "sha256:new"})})
    result = commit_container(engine, "box", "app:2", message="m", changes=("EXPOSE 80",))
    assert result.id == "sha256:new" and result.reference == "app:2"
    assert transport(engine).requests[0].params == {
        "container": "box",
        "pause": 1,
        "repo": "app",
        "tag": "2",
        "comment": "m",
        "changes": ["EXPOSE 80"],
    }
    bad = fake_engine({"POST /commit": (400, {"message": "Invalid containerPort: abc"})})
    with pytest.raises(InvalidInput, match=r"^commit box: Invalid containerPort: abc$"):
        commit_container(bad, "box", changes=("EXPOSE abc",))
    gone = fake_engine({"POST /commit": (404, {"message": "No such container: box"})})
    with pytest.raises(InvalidInput, match=r"^commit box: No such container: box$"):
        commit_container(gone, "box")
    broken = fake_engine({"POST /commit": (500, {"message": "disk full"})})
    with pytest.raises(Refused, match=r"^commit box: disk full$"):
        commit_container(broken, "box")


def test_tag_history_and_layers_say_an_unknown_image_is_bad_input() -> None:
    engine = fake_engine({"GET /images/nope/json": NO_IMAGE, "GET /images/nope/history": NO_IMAGE})
    with pytest.raises(InvalidInput, match=r"^tag nope: No such image: nope$"):
        tag_image(engine, "nope", "app:1")
    with pytest.raises(InvalidInput, match=r"^history nope: No such image: nope$"):
        image_history(engine, "nope")
    with pytest.raises(InvalidInput, match=r"^layers nope: No such image: nope$"):
        image_layers(engine, ["nope"])


def test_tag_tags_the_image_by_its_id() -> None:
    engine = fake_engine(
        {
            "GET /images/bb/json": (200, {"Id": "sha256:b"}),
            "POST /images/sha256:b/tag": (201, b""),
        }
    )
    assert tag_image(engine, "bb", "r:5000/bb").target == "r:5000/bb:latest"
    assert transport(engine).requests[1].params == {"repo": "r:5000/bb", "tag": "latest"}


def test_images_lists_top_level_images_with_the_engine_s_filters() -> None:
    image = {"Id": "sha256:a", "Created": 1, "Size": 5, "RepoTags": ["app:1"]}
    box = {"Id": "c1", "Names": ["/box"], "ImageID": "sha256:a"}
    engine = fake_engine({"GET /images/json": (200, [image]), "GET /containers/json": (200, [box])})
    (row,) = list_images(engine, dangling=True, reference="app")
    assert (row.repository, row.tag, row.containers) == ("app", "1", ("box",))
    assert transport(engine).requests[0].params == {
        "all": 0,
        "filters": json.dumps({"dangling": ["true"], "reference": ["app"]}),
    }


@pytest.mark.parametrize("failing", ["images", "containers"])
def test_a_refused_listing_says_which_listing(failing: str) -> None:
    refusal = (500, {"message": "boom"})
    routes: dict[str, object] = {"GET /images/json": (200, []), "GET /containers/json": (200, [])}
    routes[f"GET /{failing}/json"] = refusal
    with pytest.raises(Refused, match=f"^list {failing}: boom$"):
        list_images(fake_engine(routes))  # type: ignore[arg-type]


HITS = [
    {"name": "a", "star_count": 9, "is_official": True},
    {"name": "b", "star_count": 1, "is_official": False},
]


def test_search_filters_and_bounds_the_wait() -> None:
    engine = fake_engine({"GET /images/search": (200, HITS)})
    assert [h.name for h in search_images(engine, "x", min_stars=5)] == ["a"]
    assert [h.name for h in search_images(engine, "x", official_only=True)] == ["a"]
    request = transport(engine).requests[0]
    assert request.params == {"term": "x", "limit": 25} and request.timeout == 20.0


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        ((400, {"message": "invalid term"}), InvalidInput, "search x: invalid term"),
        (
            (500, {"message": "dial tcp: refused"}),
            RegistryUnreachable,
            "search x: dial tcp: refused",
        ),
        (
            (200, Lost("timed out", timed_out=True)),
            RegistryUnreachable,
            "search x: the index did not answer within 1.5 s",
        ),
    ],
)
def test_search_failures(reply: tuple[int, object], error: type[Exception], message: str) -> None:
    engine = fake_engine({"GET /images/search": reply})
    with pytest.raises(error) as info:
        search_images(engine, "x", timeout=1.5)
    assert str(info.value) == message


def test_validate_changes() -> None:
    assert validate_changes(["ENV A=1", 'cmd ["sh"]']) == ("ENV A=1", 'cmd ["sh"]')
    with pytest.raises(InvalidInput, match="use one of CMD"):
        validate_changes(["FROB x"])
    with pytest.raises(InvalidInput, match="CMD needs arguments"):
        validate_changes(["CMD"])
