"""Reading a registry that answers badly: pages that loop or never end, a manifest too big to
be one. In-process loopback servers stand in for the registry (registry:2 cannot be made to).
And the repository name filter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dockops.core.registry import browse
from dockops.core.registry.browse import matches
from dockops.core.registry.client import RegistryClient
from dockops.errors import EngineRefused
from tests.conftest import Cli
from tests.support.fake_registry import Answer, Seen, serve

# Requests a server answers before it says 404: a client that follows a looping registry for
# ever (as the old one did) then stops too, and the test fails instead of hanging.
PATIENCE = 30


def _page(items: dict[str, Any], link: str | None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if link:
        headers["Link"] = f'<{link}>; rel="next"'
    return Answer(200, headers, json.dumps(items).encode())


def _patient(answer: Callable[[Seen], Answer]) -> Callable[[Seen], Answer]:
    count = 0

    def handle(request: Seen) -> Answer:
        nonlocal count
        count += 1
        return answer(request) if count <= PATIENCE else Answer(404)

    return handle


def _looping_catalog(request: Seen) -> Answer:
    # Page 2 leads back to itself, its query in another order.
    last = parse_qs(urlsplit(request.path).query).get("last")
    if last is None:
        return _page({"repositories": ["a"]}, "/v2/_catalog?last=a&n=1000")
    return _page({"repositories": ["b"]}, "/v2/_catalog?n=1000&last=a")


def _looping_tags(request: Seen) -> Answer:
    # registry 2.8 never pages tags; one that does, badly, points page 2 back to page 1.
    if "last" not in request.path:
        return _page({"name": "r", "tags": ["1"]}, "/v2/r/tags/list?last=1")
    return _page({"name": "r", "tags": ["2"]}, "/v2/r/tags/list")


def test_a_catalog_whose_pages_loop_is_refused() -> None:
    with (
        serve(_patient(_looping_catalog)) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match=r"the repositories pages loop"),
    ):
        list(browse.catalog(api))
    assert len(server.seen) == 2


def test_tags_whose_pages_loop_are_refused() -> None:
    with (
        serve(_patient(_looping_tags)) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match=r"the tags pages loop"),
    ):
        browse.tags(api, "r")
    assert len(server.seen) == 2


def _redirected_catalog(request: Seen) -> Answer:
    # Page 1 links to a new URL, which redirects back to page 1: no Link ever repeats.
    if "next" in request.path:
        return Answer(302, {"Location": "/v2/_catalog?n=1000"})
    return _page({"repositories": ["a"]}, "/v2/_catalog?next=1")


def test_pages_that_loop_through_a_redirect_are_refused() -> None:
    listed: list[str] = []
    with (
        serve(_patient(_redirected_catalog)) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match=r"the repositories pages loop"),
    ):
        listed.extend(browse.catalog(api))
    assert listed == ["a"]  # page 1 once, not again after the redirect
    assert [s.path for s in server.seen] == [
        "/v2/_catalog?n=1000",
        "/v2/_catalog?next=1",
        "/v2/_catalog?n=1000",
    ]


def test_pages_that_never_end_stop_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browse, "MAX_PAGES", 5)

    def endless(request: Seen) -> Answer:
        last = int(parse_qs(urlsplit(request.path).query).get("last", ["0"])[0])
        return _page({"repositories": [str(last)]}, f"/v2/_catalog?n=1000&last={last + 1}")

    with (
        serve(_patient(endless)) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match=r"past 5 pages"),
    ):
        list(browse.catalog(api))
    assert len(server.seen) == 5


def test_ls_on_a_looping_registry_exits_1_with_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "config.toml"))
    with serve(_patient(_looping_catalog)) as server:
        code, out, err = cli("registry", "ls", "--registry", server.address)
    assert (code, out) == (1, "")
    assert err == (
        f"dockops: error: {server.address}: the repositories pages loop "
        f"(back to {server.url}/v2/_catalog?n=1000&last=a)\n"
    )


def test_a_manifest_over_4_mib_is_refused() -> None:
    """distribution accepts no manifest over 4 MiB: a bigger answer is not one it stored."""
    layers = [{"digest": "sha256:" + "0" * 64, "size": 1}] * 60_000  # ~5 MiB
    body = json.dumps({"schemaVersion": 2, "layers": layers}).encode()
    assert len(body) > 4 << 20
    manifest = Answer(200, {"Content-Type": "application/json"}, body)
    with (
        serve(lambda r: manifest) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match=r"over 4 MiB"),
    ):
        browse.manifest(api, "r", "latest")


@pytest.mark.parametrize(
    ("name", "pattern", "hit"),
    [
        ("team/app", None, True),
        ("team/app", "app", True),
        ("team/app", "team/*", True),
        ("team/app", "*/ap?", True),
        ("team/app", "other*", False),
        ("team/app", "[st]eam/app", True),
    ],
)
def test_matches(name: str, pattern: str | None, hit: bool) -> None:
    assert matches(name, pattern) is hit
