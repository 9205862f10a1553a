"""A small client for the registry v2 HTTP API, speaking to a registry the way the daemon does.

HTTPS first, trusting `<certs.d>/HOST:PORT/ca.crt` when present; plain HTTP only for a loopback
registry that does not speak TLS (the daemon's own fallback for 127.0.0.0/8). Credentials come
from where the docker CLI keeps them; Basic and Bearer challenges are both answered. Idempotent
requests are retried, bounded, on transient faults only (connection errors, 5xx, 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.core.faults import RetryPolicy
from dockops.core.registry.trust import is_insecure, is_loopback, trusted_ca
from dockops.errors import (
    DockopsError,
    EngineRefused,
    LoginRequired,
    RegistryTransient,
    RegistryUnreachable,
)

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
RETRY = RetryPolicy(attempts=3, first_wait=0.5, max_wait=5.0)
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


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


def login_hint(registry: str) -> str:
    return f"authentication required: run dockops login {registry}"


class RegistryClient:
    """One registry, one requests session; `base_url` is settled by the first request."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        certs_d: Path | None = None,
        policy: RetryPolicy = RETRY,
    ) -> None:
        import requests

        self.registry = registry
        self.credentials = credentials
        self.policy = policy
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
        self._token: str | None = None
        self._challenge: dict[str, str] | None = None

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
            str(self.base_url),
            response.status_code,
            response.headers.get("Docker-Distribution-Api-Version"),
        )

    def get_json(self, path: str, **kwargs: Any) -> tuple[Any, requests.Response]:
        """GET a JSON document; the decoded body and the response (for its headers).

        Raises:
            EngineRefused: the body is not JSON.
        """
        response = self.request("GET", path, **kwargs)
        try:
            return response.json(), response
        except ValueError:
            raise EngineRefused(f"{self.registry}: {path}: the answer is not JSON") from None

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
        **kwargs: Any,
    ) -> requests.Response:
        """One request with auth, scheme fallback and (for GET/HEAD) bounded retries.

        Statuses in `allow` are returned rather than raised.

        Raises:
            RegistryUnreachable: unreachable, TLS or auth failure, transient faults outlasting
                the retries.
            EngineRefused: any other error status (the registry's own error text).
        """
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        attempts = self.policy.attempts if method in ("GET", "HEAD") else 1
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(attempts),
                wait=wait_random_exponential(
                    multiplier=self.policy.first_wait, max=self.policy.max_wait
                ),
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return self._once(method, path, headers or {}, allow, kwargs)
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
        kwargs: dict[str, Any],
    ) -> requests.Response:
        response = self._send(method, path, headers, kwargs)
        if response.status_code == 401 and self._answer_challenge(response):
            response = self._send(method, path, headers, kwargs)
        status = response.status_code
        if status < 400 or status in allow:
            return response
        text = _error_text(response)
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
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> requests.Response:
        import requests

        if self._token:
            headers = {**headers, "Authorization": f"Bearer {self._token}"}
        kwargs = {"timeout": _timeout(), "allow_redirects": True, **kwargs}
        bases = [self.base_url] if self.base_url else [f"https://{self.registry}"]
        if not self.base_url and is_insecure(self.registry):
            bases.append(f"http://{self.registry}")
        if path.startswith(("https://", "http://")):  # a Link header, already resolved
            bases = [""]
        for i, base in enumerate(bases):
            try:
                response = self.session.request(method, base + path, headers=headers, **kwargs)
            except requests.exceptions.SSLError as exc:
                # A plain-HTTP registry answers a TLS hello with garbage or a hang-up; for
                # loopback the daemon then uses http, and so do we. A certificate that does
                # not verify is never a reason to drop to http.
                if i + 1 < len(bases) and "certificate" not in str(exc).lower():
                    continue
                from dockops.core.faults import untrusted_hint

                text = f"{self.registry}: TLS: {reason(exc)}"
                hint = untrusted_hint(self.registry, text)
                raise RegistryUnreachable(f"{text}; {hint}" if hint else text) from None
            except requests.exceptions.ConnectionError as exc:
                if i + 1 < len(bases):
                    continue
                raise _Transient(
                    RegistryTransient(f"{self.registry} unreachable: {reason(exc)}")
                ) from None
            except requests.exceptions.Timeout as exc:
                raise _Transient(
                    RegistryTransient(f"{self.registry} timed out: {reason(exc)}")
                ) from None
            self.base_url = self.base_url or base
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer_challenge(self, response: requests.Response) -> bool:
        """Set up auth for a 401's challenge; False when there is nothing (new) to offer."""
        scheme, _, params = response.headers.get("WWW-Authenticate", "").partition(" ")
        if self.credentials is None:
            return False
        if scheme.lower() == "basic":
            if self.session.auth is not None:
                return False
            self.session.auth = (self.credentials.username, self.credentials.password)
            return True
        if scheme.lower() == "bearer":
            # A token is good for one scope; a challenge for a new scope asks for another.
            challenge = _challenge_params(params)
            if challenge == self._challenge:
                return False
            self._challenge = dict(challenge)
            self._token = self._fetch_token(challenge)
            return True
        return False

    def _fetch_token(self, params: dict[str, str]) -> str:
        import requests

        realm = params.pop("realm", "")
        if not realm:
            raise RegistryUnreachable(f"{self.registry}: Bearer challenge without a realm")
        assert self.credentials is not None
        try:
            response = self.session.get(
                realm,
                params=params,
                auth=(self.credentials.username, self.credentials.password),
                timeout=TIMEOUT,
            )
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(f"token service {realm}: {reason(exc)}") from None
        if response.status_code != 200:
            raise RegistryUnreachable(
                f"{self.registry}: credentials refused by the token service "
                f"({response.status_code})"
            )
        body = response.json()
        return str(body.get("token") or body.get("access_token") or "")


def _timeout() -> tuple[float, float]:
    """TIMEOUT, with the read part from $DOCKOPS_STALL_TIMEOUT when set: one knob for how
    long a silent registry may take, for the daemon's pushes and for dockops's own requests."""
    import os

    from dockops.engine import STALL_TIMEOUT_ENV, stall_timeout

    return (TIMEOUT[0], stall_timeout()) if os.environ.get(STALL_TIMEOUT_ENV) else TIMEOUT


def _challenge_params(text: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def _error_text(response: requests.Response) -> str:
    """The registry's error message ({"errors": [{"code", "message"}]}), else the status text."""
    try:
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    except ValueError:
        pass
    return response.reason or str(response.status_code)


def _verify_message(exc: BaseException | None) -> str | None:
    seen = 0
    while exc is not None and seen < 10:
        message = getattr(exc, "verify_message", None)
        if message:
            return str(message)
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, BaseException) and (inner := _verify_message(arg)):
                return inner
        cause = getattr(exc, "reason", None)
        exc = cause if isinstance(cause, BaseException) else exc.__cause__ or exc.__context__
        seen += 1
    return None


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    verify = _verify_message(exc)
    if verify:  # OpenSSL's own words: "self-signed certificate", "hostname mismatch"...
        return f"certificate verify failed: {verify}"
    cause = getattr(exc, "reason", None)
    text = str(cause if cause is not None else exc)
    if "] " in text and text.startswith("["):  # "[SSL: CERTIFICATE_VERIFY_FAILED] cert…"
        text = text.split("] ", 1)[1]
    return " ".join(text.split())[:200]


def connect(registry: str, policy: RetryPolicy = RETRY) -> RegistryClient:
    """A client for `registry` with the stored login (dockops or docker login), if any."""
    from dockops.core.registry.credentials import get_credentials

    return RegistryClient(registry, credentials=get_credentials(registry), policy=policy)
