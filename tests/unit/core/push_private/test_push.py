"""push-private's naming and route: where REF lands in the registry, and which way it goes."""

from __future__ import annotations

import pytest

from dockops.core.push_private.push import resolve_via, target
from dockops.errors import InvalidInput


@pytest.mark.parametrize(
    ("source", "as_", "expected"),
    [
        ("myimg", None, ("R/myimg", "latest")),
        ("busybox:1.36", None, ("R/busybox", "1.36")),
        ("docker.io/library/nginx:stable", None, ("R/nginx", "stable")),
        ("index.docker.io/library/nginx:1", None, ("R/nginx", "1")),
        ("docker.io/team/app:1", None, ("R/team/app", "1")),
        ("ghcr.io/org/app:2", None, ("R/org/app", "2")),
        ("localhost:5000/team/app", None, ("R/team/app", "latest")),
        ("myimg:1", "other", ("R/other", "1")),
        ("myimg:1", "team/other:9", ("R/team/other", "9")),
        ("sha256:" + "a" * 64, "app:1", ("R/app", "1")),
        ("app@sha256:" + "b" * 64, "app:2", ("R/app", "2")),
    ],
)
def test_push_private_target(source: str, as_: str | None, expected: tuple[str, str]) -> None:
    assert target(source, "R", as_) == expected


@pytest.mark.parametrize(
    ("source", "as_", "error"),
    [
        ("a" * 64, None, "--as NAME:TAG"),
        ("app@sha256:" + "b" * 64, None, "--as NAME:TAG"),
        ("app", "other.io/app:1", "without a registry"),
        ("app", "Bad Name", "invalid"),
    ],
)
def test_push_private_target_refuses(source: str, as_: str | None, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        target(source, "R", as_)


@pytest.mark.parametrize(
    ("host", "via"),
    [
        ("unix:///var/run/docker.sock", "direct"),
        ("tcp://10.0.0.5:2376", "daemon"),
        ("ssh://builder", "daemon"),
    ],
)
def test_auto_via_follows_where_the_engine_is(
    host: str, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert resolve_via("auto") == via
    assert resolve_via("daemon") == "daemon" and resolve_via("direct") == "direct"
    with pytest.raises(InvalidInput, match="choose auto, direct or daemon"):
        resolve_via("pigeon")


def test_a_tag_in_the_way_names_the_other_tags_as_docker_prints_them() -> None:
    """podman lists docker.io/library/busybox:latest where docker lists busybox:latest."""
    from dockops.core.push_private.push import _tag_in_the_way
    from tests.support.fake_engine import fake_engine

    held, mine = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    tags = ["r:5000/app:1", "docker.io/library/busybox:latest", "localhost/x:1"]
    engine = fake_engine({f"GET /images/{held}/json": (200, {"RepoTags": tags})})
    assert _tag_in_the_way(engine, "push-private busybox", "r:5000/app:1", held, mine) == (
        "push-private busybox: the local tag r:5000/app:1 names another image, aaaaaaaaaaaa; "
        "--move-tag moves it to bbbbbbbbbbbb, leaving aaaaaaaaaaaa tagged busybox:latest, "
        "localhost/x:1"
    )
