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
    """The innermost OS-level reason of an exception chain (requests, urllib3, http.client,
    ssl), as one short line: what a user can act on, not a library's repr."""
    from http.client import RemoteDisconnected

    seen: set[int] = set()
    stack: list[object] = [exc]
    hung_up = False
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
            continue
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
        # An engine that goes away between two requests: no errno, only http.client's words
        # ("('Connection aborted.', RemoteDisconnected(...))" is no line for a user).
        hung_up = hung_up or isinstance(item, RemoteDisconnected)
        stack.extend([item.__cause__, item.__context__, *item.args])
    if hung_up:
        return "connection closed without an answer"
    return " ".join(str(exc).split())
