"""What a daemon's pull/push/search failure text means: transient, registry-side, or neither.

The daemon reports registry trouble as text (an `errorDetail` line, or the explanation of an
HTTP 500/404 on the Engine API), never with the registry's status code, so the decision is made
on the words it uses. Pure functions: unit-tested on texts the 20.10 daemon really produced.
"""

from __future__ import annotations

import functools
import re

# Worth another try: the registry (or something in front of it) was briefly unable to answer.
# 501 Not Implemented is a permanent answer, so 5xx is spelled out.
_TRANSIENT = (
    r"\b50[0234]\s+(?:internal server error|bad gateway|service unavailable|gateway time-?out)",
    r"\bhttp (?:status|response)\D{0,20}50[0234]\b",
    r"\b429\b",
    r"too ?many ?requests",
    r"\bunavailable:",  # registry error code UNAVAILABLE (a 503 with a JSON body)
    r"connection reset by peer",
    r"\bunexpected eof\b",
    r"[:\s]eof$",  # Go's io.EOF at the end of a message: the connection was cut
    r"broken pipe",
)

# The registry could not be reached, or would not let us in: exit 4 rather than 1.
_REGISTRY = (
    r"connection refused",
    r"no such host",
    r"dial tcp",
    r"i/o timeout",
    r"network is unreachable",
    r"no route to host",
    r"proxyconnect",
    r"\btls\b",
    r"x509",
    r"certificate",
    r"server gave http response to https client",
    r"unauthorized",
    r"authentication required",
    r"no basic auth credentials",
    r"\bdenied\b",
    r"\b401\b",
    r"\b403\b",
)


# The registry wanted credentials it did not get. For a loopback registry behind TLS the daemon
# may retry over plain HTTP after the 401 and report nginx's "plain HTTP request was sent to
# HTTPS port".
_LOGIN = (
    r"no basic auth credentials",
    r"unauthorized",
    r"authentication required",
    r"plain http request was sent to https port",
)

_PATTERNS = {
    "transient": _TRANSIENT,
    "registry": _REGISTRY,
    "login": _LOGIN,
}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in _PATTERNS[name]), re.IGNORECASE)


def is_transient(message: str) -> bool:
    """True when the daemon's text says the registry failed in a way another try may fix
    (connection reset or cut, HTTP 500/502/503/504, 429 rate limit); never for 4xx or bad input."""
    return _pattern("transient").search(message.strip()) is not None


def is_registry_cause(message: str) -> bool:
    """True when the text says the registry is unreachable, or TLS or authentication failed."""
    return is_transient(message) or _pattern("registry").search(message) is not None


def wants_login(message: str) -> bool:
    """True when the daemon's text says the registry asked for credentials."""
    return _pattern("login").search(message) is not None
