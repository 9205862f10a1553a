"""Fault classification (core/images/failures.py), on texts the 20.10 daemon really produced:
transient (retried), a registry's (exit 4) or neither; and the hint an untrusted certificate
gets."""

from __future__ import annotations

import pytest

from dockops.core.images import transfer
from dockops.core.images.failures import is_registry_cause, is_transient
from dockops.errors import RegistryUnreachable

TRANSIENT = [
    "received unexpected HTTP status: 503 Service Unavailable",
    "received unexpected HTTP status: 502 Bad Gateway",
    "received unexpected HTTP status: 500 Internal Server Error",
    "received unexpected HTTP status: 504 Gateway Timeout",
    "toomanyrequests: You have reached your pull rate limit.",
    "unavailable: injected fault",
    'Get "http://127.0.0.1:5000/v2/": read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection '
    "reset by peer",
    'Head "http://127.0.0.1:5000/v2/bb/manifests/v1": EOF',
    "unexpected EOF",
    "error parsing HTTP 429 response body: invalid character",
]


PERMANENT_REGISTRY = [
    'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
    'Get "https://index.docker.io/v1/search?q=busybox&n=25": proxyconnect tcp: dial tcp '
    "127.0.0.1:9: connect: connection refused",
    'Get "https://r.example:443/v2/": x509: certificate signed by unknown authority',
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "Get https://r.example/v2/: http: server gave HTTP response to HTTPS client",
    'Get "https://nohost.invalid/v2/": dial tcp: lookup nohost.invalid: no such host',
]


NEITHER = [
    "manifest for 127.0.0.1:5911/bb:nope not found: manifest unknown: manifest unknown",
    "An image does not exist locally with the tag: 127.0.0.1:5999/zz",
    "received unexpected HTTP status: 501 Not Implemented",
    "invalid reference format",
]


@pytest.mark.parametrize("text", TRANSIENT)
def test_transient_faults_are_recognised(text: str) -> None:
    assert is_transient(text)
    assert is_registry_cause(text)


@pytest.mark.parametrize("text", PERMANENT_REGISTRY)
def test_unreachable_tls_and_auth_are_registry_causes_but_not_retried(text: str) -> None:
    assert not is_transient(text)
    assert is_registry_cause(text)


@pytest.mark.parametrize("text", NEITHER)
def test_refusals_are_neither(text: str) -> None:
    assert not is_transient(text)
    assert not is_registry_cause(text)


# --- an untrusted certificate: the hint names the certs.d file ---------------------------------


# As the 20.10 daemon says it (tests/unit/core/registry/test_trust.py has the other wordings).
UNTRUSTED_TEXT = 'Get "https://r.example:443/v2/": x509: certificate signed by unknown authority'


def test_a_pull_refused_for_trust_is_exit_4_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKOPS_CERTS_D", "/etc/docker/certs.d")
    error = transfer._failure(
        "pull r.example:443/app:1",
        transfer._DaemonError(UNTRUSTED_TEXT),
        1,
        "r.example:443",
    )
    assert isinstance(error, RegistryUnreachable)
    assert error.message.endswith(
        "x509: certificate signed by unknown authority; to trust its CA, put it in "
        "/etc/docker/certs.d/r.example:443/ca.crt (dockops registry secure does it with --trust)"
    )
