"""A registry's 401s answered: Basic with the login, or Bearer with a token from the realm.

A token is good for one scope (realm, service, scope: one repository), so tokens are kept by
scope; threads listing different repositories at once each need their own. The login goes
to a realm only over https (or on loopback), as docker does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.core.registry.trust import is_loopback
from dockops.errors import RegistryUnreachable

if TYPE_CHECKING:
    from dockops.core.registry.credentials import Credentials

# A token's lifetime when the answer does not say, and the least assumed when it does: docker's
# (older clients ignored expires_in and assumed it, so token services never issue less).
TOKEN_LIFETIME = 60

Scope = tuple[str, str, str]  # (realm, service, scope) of a Bearer challenge
# Ask a token service: GET realm?params with the login; (status, JSON body when 200).
AskTokenService = Callable[[str, dict[str, str], "Credentials"], tuple[int, Any]]


def login_hint(registry: str) -> str:
    return f"authentication required: run dockops login {registry}"


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class _Token:
    authorization: str  # "Bearer …"
    expires: float  # time.time() seconds


class RegistryAuth:
    """The Authorization header a registry's requests carry, learnt from its challenges.

    Safe to share between threads: one lock over the state, and one token fetch per scope
    however many threads ask.
    """

    def __init__(
        self, registry: str, credentials: Credentials | None, ask: AskTokenService
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self._ask = ask
        self._lock = threading.Lock()
        self._basic: str | None = None  # the Authorization header, once Basic was asked for
        self._tokens: dict[Scope, _Token] = {}
        self._scope: Scope | None = None  # the last asked for: sent first

    def authorization(self) -> str | None:
        """What a request carries first: Basic once asked for, else the token of the scope
        asked for last, fetched again when it has expired."""
        with self._lock:
            if self._basic or self._scope is None:
                return self._basic
            token = self._tokens.get(self._scope)
            if token is None or token.expires <= _now():
                token = self._fetch_token(self._scope)
            return token.authorization

    def answer(self, challenge: str, sent: str | None) -> str | None:
        """The Authorization to try again with after a 401 whose WWW-Authenticate is
        `challenge` on a request that carried `sent`; None when there is nothing (new) to
        offer."""
        import base64

        scheme, _, params = challenge.partition(" ")
        if self.credentials is None:
            return None
        if scheme.lower() == "basic":
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            basic = "Basic " + base64.b64encode(pair).decode()
            with self._lock:
                self._basic = basic
            return None if sent == basic else basic
        if scheme.lower() == "bearer":
            # A challenge for a new scope asks for another token. The token just refused
            # (expired, revoked) is fetched anew; one another thread has fetched meanwhile is
            # taken as it is.
            found = _challenge_params(params)
            scope = (found.get("realm", ""), found.get("service", ""), found.get("scope", ""))
            with self._lock:
                self._scope = scope
                token = self._tokens.get(scope)
                if token is None or token.authorization == sent or token.expires <= _now():
                    token = self._fetch_token(scope)
                return token.authorization
        return None

    def _fetch_token(self, scope: Scope) -> _Token:
        """A token from the realm, with the login (called with the lock held)."""
        from dockops.units import parse_timestamp

        realm, service, what = scope
        if not realm:
            raise RegistryUnreachable(f"{self.registry}: Bearer challenge without a realm")
        self._check_realm(realm)
        assert self.credentials is not None
        params = {key: value for key, value in (("service", service), ("scope", what)) if value}
        status, body = self._ask(realm, params, self.credentials)
        if status != 200:
            raise RegistryUnreachable(
                f"{self.registry}: credentials refused by the token service ({status})"
            )
        body = body if isinstance(body, dict) else {}
        token = body.get("token") or body.get("access_token")
        if not token or not isinstance(token, str):
            raise RegistryUnreachable(f"{self.registry}: the token service {realm} gave no token")
        try:
            lifetime = max(TOKEN_LIFETIME, int(body.get("expires_in") or 0))
        except (TypeError, ValueError):
            lifetime = TOKEN_LIFETIME
        issued = parse_timestamp(str(body.get("issued_at") or ""))
        start = issued.timestamp() if issued else _now()
        self._tokens[scope] = _Token(authorization=f"Bearer {token}", expires=start + lifetime)
        return self._tokens[scope]

    def _check_realm(self, realm: str) -> None:
        """Refuse, before connecting, a realm that would get the login in clear text."""
        from urllib.parse import urlsplit

        parts = urlsplit(realm)
        host = parts.hostname or ""
        if parts.scheme == "https" and host:
            return
        if parts.scheme == "http" and host and is_loopback(f"[{host}]" if ":" in host else host):
            return
        raise RegistryUnreachable(
            f"{self.registry}: the token service {realm} is not https; "
            "not sending the credentials there"
        )


def _challenge_params(text: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'(\w+)="([^"]*)"', text))
