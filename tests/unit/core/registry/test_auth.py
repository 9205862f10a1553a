"""RegistryAuth on its own: challenges in, Authorization headers out, the token service faked."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from dockops.core.registry import auth
from dockops.core.registry.auth import RegistryAuth, login_hint
from dockops.core.registry.credentials import Credentials
from dockops.errors import RegistryUnreachable

LOGIN = Credentials(username="alice", password="s3cret", source="test")
REALM = "https://auth.example/token"
BEARER = f'Bearer realm="{REALM}",service="registry",scope="repository:app:pull"'


class TokenService:
    """Answers every ask with the next of `answers` (status, body); records what was asked."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, str], str]] = []

    def __call__(self, realm: str, params: dict[str, str], login: Credentials) -> tuple[int, Any]:
        self.asked.append((realm, params, login.username))
        return self.answers.pop(0)


def test_nothing_is_sent_before_a_challenge() -> None:
    assert RegistryAuth("r:5000", LOGIN, TokenService()).authorization() is None


def test_basic_is_answered_once_then_sent_first() -> None:
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    state = RegistryAuth("r:5000", LOGIN, TokenService())
    assert state.answer('Basic realm="Registry realm"', None) == basic
    assert state.authorization() == basic
    assert state.answer('Basic realm="Registry realm"', basic) is None  # refused: no retry


def test_without_a_login_there_is_nothing_to_answer() -> None:
    assert RegistryAuth("r:5000", None, TokenService()).answer(BEARER, None) is None


def test_a_bearer_token_is_fetched_for_the_scope_and_kept() -> None:
    service = TokenService((200, {"token": "t1", "expires_in": 300}))
    state = RegistryAuth("r:5000", LOGIN, service)
    assert state.answer(BEARER, None) == "Bearer t1"
    assert service.asked == [
        (REALM, {"service": "registry", "scope": "repository:app:pull"}, "alice")
    ]
    assert state.authorization() == "Bearer t1"
    assert len(service.asked) == 1


def test_a_refused_token_is_fetched_anew() -> None:
    service = TokenService((200, {"access_token": "t1"}), (200, {"token": "t2"}))
    state = RegistryAuth("r:5000", LOGIN, service)
    assert state.answer(BEARER, None) == "Bearer t1"
    assert state.answer(BEARER, "Bearer t1") == "Bearer t2"


def test_an_expired_token_is_fetched_before_it_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(auth, "_now", lambda: now[0])
    service = TokenService((200, {"token": "t1", "expires_in": 10}), (200, {"token": "t2"}))
    state = RegistryAuth("r:5000", LOGIN, service)
    state.answer(BEARER, None)
    now[0] += auth.TOKEN_LIFETIME - 1  # expires_in under docker's 60 s counts as 60 s
    assert state.authorization() == "Bearer t1"
    now[0] += 2
    assert state.authorization() == "Bearer t2"


@pytest.mark.parametrize(
    ("challenge", "answers", "message"),
    [
        ('Bearer service="registry"', [], "Bearer challenge without a realm"),
        (
            'Bearer realm="http://auth.example/token"',
            [],
            "the token service http://auth.example/token is not https",
        ),
        (BEARER, [(401, None)], "credentials refused by the token service (401)"),
        (BEARER, [(200, {"token": ""})], f"the token service {REALM} gave no token"),
        (BEARER, [(200, ["not", "a", "dict"])], "gave no token"),
    ],
)
def test_what_gets_no_token_says_why(
    challenge: str, answers: list[tuple[int, Any]], message: str
) -> None:
    service = TokenService(*answers)
    with pytest.raises(RegistryUnreachable, match=re.escape(message)):
        RegistryAuth("r:5000", LOGIN, service).answer(challenge, None)
    if "not https" in message:
        assert service.asked == []  # the login never left


def test_a_loopback_realm_may_be_plain_http() -> None:
    service = TokenService((200, {"token": "t"}))
    state = RegistryAuth("127.0.0.1:5000", LOGIN, service)
    assert state.answer('Bearer realm="http://127.0.0.1:5001/token"', None) == "Bearer t"


def test_login_hint() -> None:
    assert login_hint("r:5000") == "authentication required: run dockops login r:5000"
