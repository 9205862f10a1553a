"""The DockopsError hierarchy: every failure a user can meet, each with its exit code.

The codes are a contract (the exit-code tables of the README and docs/cli.md); cron jobs and make
targets branch on them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    ENGINE_UNREACHABLE = 3
    REGISTRY_UNREACHABLE = 4
    PARTIAL = 5
    LOCKED = 75


class DockopsError(Exception):
    """Base of every error dockops reports; its message is the one line the user sees."""

    exit_code: ExitCode = ExitCode.REFUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class EngineRefused(DockopsError):
    """The engine answered, and said no (conflict, not found, bad request...)."""

    exit_code = ExitCode.REFUSED


class InvalidInput(DockopsError):
    """Bad reference, bad flag value, missing file: caught before any engine call."""

    exit_code = ExitCode.USAGE


class EngineUnreachable(DockopsError):
    exit_code = ExitCode.ENGINE_UNREACHABLE


class RegistryUnreachable(DockopsError):
    """Registry down, TLS failure or authentication failure."""

    exit_code = ExitCode.REGISTRY_UNREACHABLE


class LoginRequired(RegistryUnreachable):
    """The registry answered 401 and no credentials were offered: a login would help."""


class RegistryTransient(RegistryUnreachable):
    """A fault another attempt may not meet (unreachable, timed out, 429, 5xx) that outlasted
    the registry client's own tries; a whole operation (a direct push) may start over."""


class PartialFailure(DockopsError):
    """Some items were done, some failed; `result` is rendered before exiting 5."""

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class LockHeld(DockopsError):
    exit_code = ExitCode.LOCKED


def root_cause(exc: BaseException) -> str:
    """The innermost reason of an exception chain (requests, urllib3, http.client, ssl), as one
    line of at most 200 characters: what a user can act on, not a library's repr.

    In this order: OpenSSL's verify reason ("certificate verify failed: self-signed
    certificate"), an OS error's own words ("connection refused"), a peer that hung up, a
    body cut short ("connection closed"), else
    the words of the innermost exception ("timed out").
    """
    from http.client import IncompleteRead, RemoteDisconnected

    chain = _chain(exc)
    for item in chain:
        verify = getattr(item, "verify_message", None)
        if verify:  # OpenSSL's own words: "self-signed certificate", "hostname mismatch"...
            return _line(f"certificate verify failed: {verify}")
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return _line(item.strerror).lower()
    # An engine that goes away between two requests: no errno, only http.client's words
    # ("('Connection aborted.', RemoteDisconnected(...))" is no line for a user).
    if any(isinstance(item, RemoteDisconnected) for item in chain):
        return "connection closed without an answer"
    # A framed body (chunked, or of a length) that ended early: the engine closed it.
    if any(isinstance(item, IncompleteRead) for item in chain):
        return "connection closed"
    inner = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    cause = getattr(inner, "reason", None)  # urllib3's errors keep the inner one there
    return _line(str(cause if cause is not None else inner)) or _line(str(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """Every exception reachable from `exc` (causes, contexts, arguments, urllib3's reason),
    each once, outermost first."""
    seen: set[int] = set()
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
            continue
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        found.append(item)
        stack.extend(
            reversed([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
        )
    return found


def _line(text: str) -> str:
    """`text` on one line, without a leading "[Errno 111] " or "[SSL: …] " tag, cut at 200."""
    text = " ".join(text.split())
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    return text[:200]
