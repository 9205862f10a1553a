"""A small client for the registry v2 HTTP API, speaking to a registry the way the daemon does.

HTTPS first, trusting `<certs.d>/HOST:PORT/ca.crt` when present; plain HTTP only for a loopback
registry that does not speak TLS (the daemon's own fallback for 127.0.0.0/8). Credentials come
from where the docker CLI keeps them; Basic and Bearer challenges are both answered (auth.py).
Idempotent requests are retried, bounded, on transient faults only (connection errors, 5xx, 429).

As docker does, credentials go to the registry's own scheme, host and port only: a Link, an
upload Location or a redirect pointing elsewhere is followed without them, and a Bearer realm
gets the login only over https (or on loopback). Every body is read with a size cap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dockops import retry
from dockops.core.registry.auth import RegistryAuth, login_hint
from dockops.core.registry.trust import is_insecure, is_loopback, trusted_ca
from dockops.errors import (
    DockopsError,
    EngineRefused,
    LoginRequired,
    RegistryTransient,
    RegistryUnreachable,
    root_cause,
)
from dockops.retry import RetryPolicy

if TYPE_CHECKING:
    from pathlib import Path

    import requests

    from dockops.core.registry.credentials import Credentials

# HEAD with all four, or an OCI manifest answers 404 and registry 2.8 may convert a docker one
# to schema1 (a different digest).
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
# (connect, read) seconds: an unreachable registry fails in bounded time.
TIMEOUT = (5.0, 60.0)
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
# Body caps, so a broken or hostile registry cannot fill the memory. A manifest gets what
# distribution itself accepts (4 MiB): a larger one cannot be one it stored. Catalog pages, tag
# lists (2.8 sends every tag in one answer: 16 MiB is some 500,000 tags), config blobs and token
# answers get MAX_BODY. An error body is cut at _ERROR_MAX, not refused: it is only quoted.
MAX_BODY = 16 << 20
MANIFEST_MAX = 4 << 20
_ERROR_MAX = 64 << 10


class _Transient(Exception):
    """A failure another try may fix; carries the error to raise when the tries run out."""

    def __init__(self, error: DockopsError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Ping:
    url: str  # the base URL that answered, https://… or http://…
    status: int
    api_version: str | None  # Docker-Distribution-Api-Version


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port filled in: what credentials are bound to."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a port at all: matches no registry
        port = -1
    return scheme, parts.hostname or "", port or {"https": 443, "http": 80}.get(scheme, 0)


class RegistryClient:
    """One registry, one requests session; `base_url` is settled by the first request.

    Safe to share between threads (browse.search_catalog does): see RegistryAuth.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        certs_d: Path | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        import requests

        self.registry = registry
        self.credentials = credentials
        self.policy = policy or retry.REQUEST
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy for the outside world is no way to a registry
        ca = trusted_ca(registry, certs_d)
        self.session.verify = str(ca) if ca else True
        if not is_loopback(registry) and is_insecure(registry):
            # Named insecure by the user: as the daemon, TLS without verification, then http.
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self.session.verify = False
        self.base_url: str | None = None
        self.auth = RegistryAuth(registry, credentials, self._ask_token_service)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public calls ---------------------------------------------------------------------

    def ping(self) -> Ping:
        """GET /v2/ (authenticated when credentials are known); 200 means reachable and let in.

        Raises:
            RegistryUnreachable: unreachable, TLS failure, or authentication refused.
        """
        response = self.request("GET", "/v2/")
        return Ping(
            url=str(self.base_url),
            status=response.status_code,
            api_version=response.headers.get("Docker-Distribution-Api-Version"),
        )

    def get_json(self, path: str, **kwargs: Any) -> tuple[Any, requests.Response]:
        """GET a JSON document; the decoded body and the response (for its headers).

        Raises:
            EngineRefused: the body is not JSON.
        """
        response = self.request("GET", path, **kwargs)
        return self.decode(response, path), response

    def decode(self, response: requests.Response, what: str) -> Any:
        """The JSON of an answer.

        Raises:
            EngineRefused: the body is not JSON.
        """
        try:
            return response.json()
        except ValueError:
            raise EngineRefused(f"{self.registry}: {what}: the answer is not JSON") from None

    def owns(self, url: str) -> bool:
        """True when `url` is on the registry's own scheme, host and port."""
        return self.base_url is not None and origin(url) == origin(self.base_url)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The registry's digest for repository:reference (HEAD, all manifest types); None
        when it has no such manifest."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            allow=(404,),
        )
        if response.status_code == 404:
            return None
        return response.headers.get("Docker-Content-Digest")

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
        max_body: int = MAX_BODY,
        **kwargs: Any,
    ) -> requests.Response:
        """One request with auth, scheme fallback and (for GET/HEAD) bounded retries.

        Statuses in `allow` are returned rather than raised. `path` is a path on the registry
        or an absolute URL it gave (a Link, a Location); the body is read, at most `max_body`.

        Raises:
            RegistryUnreachable: unreachable, TLS or auth failure, transient faults outlasting
                the retries.
            EngineRefused: any other error status (the registry's own error text), or a body
                over `max_body`.
        """
        # Only an idempotent request is sent again.
        policy = self.policy if method in ("GET", "HEAD") else replace(self.policy, attempts=1)
        try:
            for attempt in retry.retrying(policy, transient=_Transient):
                with attempt:
                    return self._once(method, path, headers or {}, allow, max_body, kwargs)
        except _Transient as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- internals ------------------------------------------------------------------------

    def _once(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        allow: tuple[int, ...],
        max_body: int,
        kwargs: dict[str, Any],
    ) -> requests.Response:
        authorization = self.auth.authorization()
        response = self._send(method, path, headers, kwargs, authorization)
        if response.status_code == 401 and self.owns(response.url):
            challenge = response.headers.get("WWW-Authenticate", "")
            again = self.auth.answer(challenge, authorization)
            if again is not None:
                self._read(response, _ERROR_MAX, cut=True)
                response = self._send(method, path, headers, kwargs, again)
        status = response.status_code
        if status < 400 or status in allow:
            self._read(response, max_body)
            return response
        self._read(response, _ERROR_MAX, cut=True)
        text = _error_text(response)
        if status == 401 and not self.owns(response.url):
            raise RegistryUnreachable(
                f"{self.registry}: {response.url} is not the registry, and asks for credentials"
            )
        if status == 401:
            if self.credentials:
                raise RegistryUnreachable(f"{self.registry}: credentials refused ({text})")
            raise LoginRequired(login_hint(self.registry))
        if status == 403:
            raise RegistryUnreachable(f"{self.registry}: access denied ({text})")
        error = EngineRefused(f"{self.registry}: {method} {path}: {status} {text}")
        if status in _TRANSIENT_STATUS:
            raise _Transient(RegistryTransient(error.message))
        raise error

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        kwargs: dict[str, Any],
        authorization: str | None,
    ) -> requests.Response:
        import requests

        # stream: the body is read by _read, under a cap. A redirect elsewhere loses the
        # Authorization header in requests itself (should_strip_auth).
        kwargs = {"timeout": _timeout(), "allow_redirects": True, **kwargs, "stream": True}
        bases = [self.base_url] if self.base_url else [f"https://{self.registry}"]
        if not self.base_url and is_insecure(self.registry):
            bases.append(f"http://{self.registry}")
        absolute = path.startswith(("https://", "http://"))  # a Link or Location, resolved
        if absolute:
            bases = [""]
        for i, base in enumerate(bases):
            sent = dict(headers)
            if authorization and (not absolute or self.owns(path)):
                sent["Authorization"] = authorization
            try:
                response = self.session.request(method, base + path, headers=sent, **kwargs)
            except requests.exceptions.SSLError as exc:
                # A plain-HTTP registry answers a TLS hello with garbage or a hang-up; for
                # loopback the daemon then uses http, and so do we. A certificate that does
                # not verify is never a reason to drop to http.
                if i + 1 < len(bases) and "certificate" not in str(exc).lower():
                    continue
                from dockops.core.registry.trust import untrusted_hint

                text = f"{self.registry}: TLS: {root_cause(exc)}"
                hint = untrusted_hint(self.registry, text)
                raise RegistryUnreachable(f"{text}; {hint}" if hint else text) from None
            except requests.exceptions.ConnectionError as exc:
                if i + 1 < len(bases):
                    continue
                raise _Transient(
                    RegistryTransient(f"{self.registry} unreachable: {root_cause(exc)}")
                ) from None
            except requests.exceptions.Timeout as exc:
                raise _Transient(
                    RegistryTransient(f"{self.registry} timed out: {root_cause(exc)}")
                ) from None
            self.base_url = self.base_url or base
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, response: requests.Response, limit: int, *, cut: bool = False) -> None:
        """Read the body into `response.content`, refusing one over `limit` bytes (decoded, so
        a gzip bomb is caught too); with `cut`, keep its first `limit` bytes instead."""
        import requests

        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 << 10):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    response.close()
                    if cut:
                        break
                    raise EngineRefused(
                        f"{self.registry}: {response.url}: the answer is over "
                        f"{limit >> 20} MiB; not reading it"
                    )
        except requests.exceptions.RequestException as exc:
            raise _Transient(
                RegistryTransient(f"{self.registry}: the answer broke off: {root_cause(exc)}")
            ) from None
        # What requests itself does when not streaming: response.content/json() read it.
        response._content = b"".join(chunks)[:limit]

    def _ask_token_service(
        self, realm: str, params: dict[str, str], login: Credentials
    ) -> tuple[int, Any]:
        """GET a token from `realm` with the login: (status, the JSON body when 200)."""
        import requests

        try:
            response = self.session.get(
                realm,
                params=params,
                auth=(login.username, login.password),
                timeout=_timeout(),
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(f"token service {realm}: {root_cause(exc)}") from None
        try:
            self._read(response, MAX_BODY)
        except _Transient as exc:
            raise exc.error from None
        if response.status_code != 200:
            return response.status_code, None
        return 200, self.decode(response, f"token service {realm}")


def _timeout() -> tuple[float, float]:
    """TIMEOUT, with the read part from $DOCKOPS_STALL_TIMEOUT when set: one knob for how
    long a silent registry may take, for the daemon's pushes and for dockops's own requests."""
    import os

    from dockops.engine.address import STALL_TIMEOUT_ENV, stall_timeout

    return (TIMEOUT[0], stall_timeout()) if os.environ.get(STALL_TIMEOUT_ENV) else TIMEOUT


def _error_text(response: requests.Response) -> str:
    """The registry's error message ({"errors": [{"code", "message"}]}), else the status text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    # Any JSON may come back (a proxy's [] or "oops"): only the documented shape is quoted.
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    return response.reason or str(response.status_code)


def registry_client(registry: str, policy: RetryPolicy | None = None) -> RegistryClient:
    """A client for `registry` with the stored login (dockops or docker login), if any."""
    from dockops.core.registry.credentials import get_credentials

    return RegistryClient(registry, credentials=get_credentials(registry), policy=policy)
