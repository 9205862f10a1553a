"""commit, tag, history, layers, search and images over a fake engine: the requests made and
what the engine's refusals become."""

from __future__ import annotations

import json

import pytest

from dockops.core.images.commit import commit_container, image_history, tag_image, validate_changes
from dockops.core.images.layers import image_layers
from dockops.core.images.listing import list_images, podman_matches
from dockops.core.images.search import search_images
from dockops.engine.errors import Refused
from dockops.engine.wire import Lost
from dockops.errors import InvalidInput, RegistryUnreachable
from tests.support.fake_engine import fake_engine, transport

NO_IMAGE = (404, {"message": "No such image: nope"})
DOCKER = (200, {"Components": [{"Name": "Engine"}]})
PODMAN = (200, {"Components": [{"Name": "Podman Engine"}]})


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
    engine = fake_engine(
        {
            "GET /version": DOCKER,
            "GET /images/json": (200, [image]),
            "GET /containers/json": (200, [box]),
        }
    )
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
    engine = fake_engine({"GET /version": DOCKER, "GET /images/search": (200, HITS)})
    assert [h.name for h in search_images(engine, "x", min_stars=5)] == ["a"]
    assert [h.name for h in search_images(engine, "x", official_only=True)] == ["a"]
    request = transport(engine).requests[1]
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
    engine = fake_engine({"GET /version": DOCKER, "GET /images/search": reply})
    with pytest.raises(error) as info:
        search_images(engine, "x", timeout=1.5)
    assert str(info.value) == message


def test_validate_changes() -> None:
    assert validate_changes(["ENV A=1", 'cmd ["sh"]']) == ("ENV A=1", 'cmd ["sh"]')
    with pytest.raises(InvalidInput, match="use one of CMD"):
        validate_changes(["FROB x"])
    with pytest.raises(InvalidInput, match="CMD needs arguments"):
        validate_changes(["CMD"])


# --- podman: full names, its own filter rule, its commit parser, libpod's search fields -------


def test_podman_listing_shows_familiar_names_and_keeps_the_names_the_filter_matches() -> None:
    names = ["docker.io/team/app:1", "localhost/app:2", "docker.io/library/app:3", "quay.io/x:4"]
    image = {"Id": "sha256:a", "Created": 1, "Size": 5, "RepoTags": names}
    routes = {
        "GET /version": PODMAN,
        "GET /images/json": (200, [image]),
        "GET /containers/json": (200, []),
    }
    # Podman's rule: "app" is also the last component of team/app (`podman images app` too).
    rows = list_images(fake_engine(routes), reference="app")
    assert [(r.repository, r.tag) for r in rows] == [
        ("app", "3"), ("localhost/app", "2"), ("team/app", "1"),
    ]  # fmt: skip
    rows = list_images(fake_engine(routes), reference="localhost/app")
    assert [(r.repository, r.tag) for r in rows] == [("localhost/app", "2")]
    rows = list_images(fake_engine(routes))
    assert {f"{r.repository}:{r.tag}" for r in rows} == {
        "team/app:1", "localhost/app:2", "app:3", "quay.io/x:4",
    }  # fmt: skip
    # Matched by ID (no name matches): every name.
    assert len(list_images(fake_engine(routes), reference="a1b2c3d4e5f6")) == 4


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("app", "localhost/app:1", True),
        ("app", "docker.io/library/app:1", True),
        ("app", "docker.io/team/app:1", True),  # the last component, as podman matches it
        ("team/app", "docker.io/team/app:1", True),
        ("localhost/app", "docker.io/library/app:1", False),
        ("app:1", "localhost/app:1", True),
        ("app:2", "localhost/app:1", False),
        ("team/*", "docker.io/team/app:1", True),
        ("*", "docker.io/team/app:1", True),
        ("t?am/app", "docker.io/team/app:1", True),
        ("docker.io/*", "docker.io/team/app:1", False),  # * stops at "/", as Go's path.Match
        ("r:5000/app", "r:5000/app:1", True),
        ("other", "docker.io/team/app:1", False),
    ],
)
def test_podman_filter_rule(pattern: str, name: str, matches: bool) -> None:
    assert podman_matches(pattern, name) is matches


def _podman_commit(changes: tuple[str, ...]) -> list[str]:
    engine = fake_engine({"GET /version": PODMAN, "POST /commit": (201, {"Id": "c" * 64})})
    result = commit_container(engine, "box", changes=changes)
    assert result.id == "sha256:" + "c" * 64 and result.changes == changes
    return list(transport(engine).requests[-1].params["changes"])


def test_podman_commit_gets_one_pair_per_env_or_label() -> None:
    assert _podman_commit(('LABEL team=ops tier="back end"', "ENV A=1 B=2", "EXPOSE 80")) == [
        'LABEL "team"="ops"', 'LABEL "tier"="back end"', 'ENV "A"="1"', 'ENV "B"="2"', "EXPOSE 80",
    ]  # fmt: skip
    assert _podman_commit(("ENV GREETING hello world",)) == ['ENV "GREETING"="hello world"']
    assert _podman_commit(("LABEL quoted='\"q\"'",)) == ['LABEL "quoted"=""q""']
    # What cannot be split safely goes as it is: the engine decides.
    assert _podman_commit(('ENV A="unbalanced',)) == ['ENV A="unbalanced']


def test_podman_commit_refuses_onbuild_and_reads_its_500_as_bad_input() -> None:
    engine = fake_engine({"GET /version": PODMAN})
    with pytest.raises(InvalidInput, match="podman does not keep ONBUILD"):
        commit_container(engine, "box", changes=("ONBUILD RUN x",))
    assert transport(engine).paths() == ["GET /version"]
    message = 'CommitFailure: invalid change "HEALTHCHECK CMD true" - invalid instruction'
    refusing = fake_engine({"POST /commit": (500, {"message": message})})
    with pytest.raises(InvalidInput, match=r"^commit box: CommitFailure: invalid change"):
        commit_container(refusing, "box", changes=("HEALTHCHECK CMD true",))


def test_an_unknown_container_or_image_is_said_in_docker_s_words() -> None:
    gone = fake_engine(
        {"POST /commit": (404, {"message": 'no container with name or ID "box" found'})}
    )
    with pytest.raises(InvalidInput, match=r"^commit box: No such container: box$"):
        commit_container(gone, "box")
    message = "failed to find image nope: docker.io/library/nope: No such image"
    engine = fake_engine({"GET /images/nope/history": (404, {"message": message})})
    with pytest.raises(InvalidInput, match=r"^history nope: No such image: nope$"):
        image_history(engine, "nope")


def test_podman_history_gets_ids_with_their_algorithm_and_each_step_s_tags() -> None:
    steps = [
        {"Id": "a" * 64, "Created": 2, "CreatedBy": "/bin/sh", "Size": 1536, "Tags": None},
        {"Id": "b" * 64, "Created": 1, "CreatedBy": "ADD", "Size": 9, "Tags": None},
    ]
    images = [
        {"Id": "sha256:" + "a" * 64, "RepoTags": ["docker.io/team/app:1"]},
        {"Id": "sha256:" + "b" * 64, "RepoTags": ["docker.io/library/busybox:latest"]},
    ]
    engine = fake_engine(
        {
            "GET /version": PODMAN,
            "GET /images/app/history": (200, steps),
            "GET /images/json": (200, images),
        }
    )
    rows = image_history(engine, "app")
    assert [(r.id, r.tags) for r in rows] == [
        ("sha256:" + "a" * 64, ("team/app:1",)),
        ("sha256:" + "b" * 64, ("busybox:latest",)),
    ]


PODMAN_HITS = [
    {"Index": "r:5000", "Name": "r:5000/team/a", "Stars": 3, "Official": "", "Automated": "[OK]"},
    {"Index": "docker.io", "Name": "docker.io/library/a", "Stars": 9, "Official": "[OK]"},
]


def test_podman_search_reads_libpod_fields_and_skips_tls_on_loopback_only() -> None:
    engine = fake_engine({"GET /version": PODMAN, "GET /images/search": (200, PODMAN_HITS)})
    hits = search_images(engine, "127.0.0.1:5000/a")
    assert [(h.name, h.stars, h.official, h.automated) for h in hits] == [
        ("r:5000/team/a", 3, False, True),
        ("a", 9, True, False),
    ]
    assert search_images(engine, "r:5000/a", official_only=True)[0].name == "a"
    sent = [r.params.get("tlsVerify") for r in transport(engine).requests[1:]]
    assert sent == ["false", None]


def test_podman_search_404_is_no_hits_and_its_multierror_is_unwrapped() -> None:
    nothing = fake_engine(
        {"GET /version": PODMAN, "GET /images/search": (404, {"message": "image not known"})}
    )
    assert search_images(nothing, "busybox") == []
    text = '1 error occurred:\n\t* couldn\'t search registry "r:1": connection refused\n\n'
    refusing = fake_engine({"GET /version": PODMAN, "GET /images/search": (500, {"message": text})})
    with pytest.raises(RegistryUnreachable) as info:
        search_images(refusing, "r:1/x")
    assert str(info.value) == 'search r:1/x: couldn\'t search registry "r:1": connection refused'
    docker = fake_engine(
        {"GET /version": DOCKER, "GET /images/search": (404, {"message": "not found"})}
    )
    with pytest.raises(RegistryUnreachable):
        search_images(docker, "busybox")
