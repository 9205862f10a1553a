"""The registry client's own HTTP logic, against in-process loopback servers: where credentials
go, how Bearer tokens are shared between threads and renewed, how much of an answer is read."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dockops.core.registry import auth
from dockops.core.registry.blobs import put_blob
from dockops.core.registry.browse import catalog, search_catalog
from dockops.core.registry.client import RegistryClient
from dockops.core.registry.credentials import Credentials
from dockops.errors import EngineRefused
from tests.conftest import Cli
from tests.support.fake_registry import Answer, Seen, Server, basic, serve

LOGIN = Credentials("alice", "s3cret", "test")


def _json(body: Any, status: int = 200, **headers: str) -> Answer:
    headers = {"Content-Type": "application/json", **headers}
    return Answer(status, headers, json.dumps(body).encode())


class TokenService:
    """Issues t1, t2, … for the scope asked, with `extra` fields in the answer; counts fetches."""

    def __init__(self, extra: dict[str, Any] | None = None, delay: float = 0.0) -> None:
        self.extra = extra or {}
        self.delay = delay
        self.issued: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: Seen) -> Answer:
        if request.headers.get("authorization") != basic(LOGIN.username, LOGIN.password):
            return Answer(401)
        time.sleep(self.delay)
        scope = parse_qs(urlsplit(request.path).query).get("scope", [""])[0]
        with self.lock:
            token = f"t{len(self.issued) + 1}:{scope}"
            self.issued.append(token)
        return _json({"token": token, **self.extra})


def _scope(path: str) -> str:
    """The scope a registry would ask for a path ('' for /v2/ itself)."""
    match = re.match(r"/v2/(.+?)/(?:manifests|blobs|tags)/", path)
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    return f"repository:{match.group(1)}:pull" if match else ""


def _bearer(tokens: Server, request: Seen) -> Answer | None:
    """The 401 a token-auth registry gives a request without a token of the right scope."""
    needed = _scope(urlsplit(request.path).path)
    given = request.headers.get("authorization", "").removeprefix("Bearer ")
    if given.startswith("t") and (needed == "" or given.endswith(f":{needed}")):
        return None
    challenge = f'Bearer realm="{tokens.url}/token",service="fake"'
    if needed:
        challenge += f',scope="{needed}"'
    return Answer(401, {"WWW-Authenticate": challenge})


# --- point: credentials go to the registry's own origin only -------------------------------


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_links_locations_and_redirects_elsewhere_get_no_credentials(scheme: str) -> None:
    """A Link, an upload Location and a redirect to another port are followed, without the
    login or the token; the registry itself gets them."""
    tokens_served = TokenService()

    def elsewhere(request: Seen) -> Answer:
        if request.path.startswith("/v2/_catalog"):
            return _json({"repositories": ["b"]})
        return Answer(201 if request.method == "PUT" else 200, body=b"{}")

    def registry(request: Seen) -> Answer:
        if scheme == "basic":
            if request.headers.get("authorization") != basic(LOGIN.username, LOGIN.password):
                return Answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
        elif (refused := _bearer(token_server, request)) is not None:
            return refused
        if request.path.startswith("/v2/_catalog"):
            link = f'<{other.url}/v2/_catalog?last=a&n=1000>; rel="next"'
            return _json({"repositories": ["a"]}, Link=link)
        if request.method == "POST":
            return Answer(202, {"Location": f"{other.url}/v2/r/blobs/uploads/1"})
        return Answer(307, {"Location": f"{other.url}{request.path}"})

    with (
        serve(elsewhere) as other,
        serve(tokens_served) as token_server,
        serve(registry) as server,
        RegistryClient(server.address, credentials=LOGIN) as api,
    ):
        assert list(catalog(api)) == ["a", "b"]
        put_blob(api, "r", "sha256:" + "0" * 64, b"data")
        api.request("GET", "/v2/r/manifests/latest")
    assert [s.method for s in other.seen] == ["GET", "PUT", "GET"]
    assert other.authorizations() == []
    assert server.authorizations()  # the registry itself was asked with them


@pytest.fixture
def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A docker config.json with LOGIN for any registry the test names (via `login_for`)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("DOCKOPS_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "docker").mkdir()
    yield tmp_path / "docker" / "config.json"


def _login_for(config: Path, registry: str) -> None:
    pair = base64.b64encode(f"{LOGIN.username}:{LOGIN.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry: {"auth": pair}}}))


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL requests would send to an address other than 127.0.0.1, refused unsent."""
    refused: list[str] = []
    real = requests.adapters.HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if urlsplit(request.url).hostname != "127.0.0.1":
            refused.append(request.url)
            raise requests.exceptions.ConnectionError("not sent: the test stays on loopback")
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    return refused


def test_a_plain_http_realm_off_loopback_is_refused_before_connecting(
    cli: Cli, logged_in: Path, loopback_only: list[str]
) -> None:
    def registry(request: Seen) -> Answer:
        challenge = 'Bearer realm="http://192.0.2.10:5001/token",service="fake"'
        return Answer(401, {"WWW-Authenticate": challenge})

    with serve(registry) as server:
        _login_for(logged_in, server.address)
        code, out, err = cli("registry", "ls", "--registry", server.address)
    assert (code, out) == (4, "")
    assert err == (
        f"dockops: error: {server.address}: the token service "
        "http://192.0.2.10:5001/token is not https; not sending the credentials there\n"
    )
    assert loopback_only == []


# --- point: tokens shared between threads, and renewed ---------------------------------------


def _now_plus(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's clock, `offset[0]` seconds ahead of the real one."""
    offset = [0.0]
    monkeypatch.setattr(auth, "_now", lambda: time.time() + offset[0])
    return offset


def _issued_ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("extra", "still_good", "expired"),
    [
        ({"expires_in": 300}, 290, 310),
        ({}, 50, 70),  # docker's 60 s when the answer does not say
        ({"expires_in": 10}, 50, 70),  # and never less
        ({"expires_in": 300, "issued_at": 250}, 40, 60),  # issued 250 s ago
    ],
    ids=["expires_in", "default-60s", "at-least-60s", "issued_at"],
)
def test_an_expired_token_is_fetched_again(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], still_good: float, expired: float
) -> None:
    """The registry here never refuses an old token (as one whose clock lags would not): the
    client alone must see that it has expired."""
    offset = _now_plus(monkeypatch)
    if "issued_at" in extra:
        extra = {**extra, "issued_at": _issued_ago(extra["issued_at"])}
    issuer = TokenService(extra)
    with (
        serve(issuer) as tokens,
        serve(lambda r: _bearer(tokens, r) or _json({"tags": []})) as server,
        RegistryClient(server.address, credentials=LOGIN) as api,
    ):
        api.request("GET", "/v2/r/tags/list")
        offset[0] = still_good
        api.request("GET", "/v2/r/tags/list")
        assert len(issuer.issued) == 1
        offset[0] = expired
        api.request("GET", "/v2/r/tags/list")
        assert len(issuer.issued) == 2
    last = server.seen[-1].headers["authorization"]
    assert last == f"Bearer {issuer.issued[-1]}"


def test_threads_asking_for_one_scope_share_one_token() -> None:
    issuer = TokenService(delay=0.3)  # every thread meets the 401 while the token is fetched
    digest = "sha256:" + "1" * 64
    start = threading.Barrier(8)
    with (
        serve(issuer) as tokens,
        serve(lambda r: _bearer(tokens, r) or Answer(200, {"Docker-Content-Digest": digest})) as s,
        RegistryClient(s.address, credentials=LOGIN) as api,
    ):

        def head(_: int) -> str | None:
            start.wait()
            return api.manifest_digest("r", "latest")

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(head, range(8)))
    assert found == [digest] * 8
    assert len(issuer.issued) == 1


def test_threads_on_different_repositories_each_keep_their_token() -> None:
    """search lists the tags of many repositories at once, each with a token of its own scope;
    a second search has them all already."""
    names = [f"app{i}" for i in range(16)]
    issuer = TokenService(delay=0.02)

    def registry(request: Seen) -> Answer:
        if (refused := _bearer(tokens, request)) is not None:
            return refused
        if request.path.startswith("/v2/_catalog"):
            return _json({"repositories": names})
        return _json({"tags": [request.path.split("/")[2]]})

    with (
        serve(issuer) as tokens,
        serve(registry) as server,
        RegistryClient(server.address, credentials=LOGIN) as api,
    ):
        found = search_catalog(api, "app")
        assert search_catalog(api, "app") == found
    assert {r.repository: r.tags for r in found} == {name: (name,) for name in names}
    assert len(issuer.issued) == len(names) + 1  # one per repository, one for the catalog


# --- point: answers are read with a cap ------------------------------------------------------


def test_an_answer_over_the_cap_is_refused() -> None:
    huge = b'{"repositories": ["' + b"a" * (16 << 20) + b'"]}'
    with (
        serve(lambda r: Answer(200, {"Content-Type": "application/json"}, huge)) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused, match="over 16 MiB"),
    ):
        api.get_json("/v2/_catalog")


@pytest.mark.parametrize(
    "body", [b"[]", b'"oops"', b"3", b"null", b'{"errors": 5}', b'{"errors": ["x", 1]}']
)
def test_an_error_body_of_any_other_json_is_quoted_as_the_status(body: bytes) -> None:
    def broken(request: Seen) -> Answer:
        return Answer(400, {"Content-Type": "application/json"}, body)

    with (
        serve(broken) as server,
        RegistryClient(server.address) as api,
        pytest.raises(EngineRefused) as info,
    ):
        api.request("GET", "/v2/_catalog")
    assert info.value.message == f"{server.address}: GET /v2/_catalog: 400 Bad Request"
