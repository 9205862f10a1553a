"""Bounded retries of transient failures, the one way dockops retries anything (tenacity).

Two policies: TRANSFER for a whole pull or push (the daemon's or the direct one), where one
try is long and a registry may need seconds to come back; REQUEST for one registry API request.
Both are read when a retry starts, not when a module is imported, so a test may shorten them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenacity import AttemptManager, Retrying


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with full-jitter exponential backoff (seconds)."""

    attempts: int = 4
    first_wait: float = 1.0
    max_wait: float = 20.0


TRANSFER = RetryPolicy()
REQUEST = RetryPolicy(attempts=3, first_wait=0.5, max_wait=5.0)

# (attempt number that failed, its error, seconds until the next one)
OnRetry = Callable[[int, BaseException, float], None]


class Retries:
    """The attempts of one piece of work: `for attempt in retries: with attempt: work()`.

    An error `transient` accepts starts another attempt while the policy allows one; any
    other error, or the last transient one, is raised as it is.
    """

    def __init__(self, retrying: Retrying) -> None:
        self._retrying = retrying

    def __iter__(self) -> Iterator[AttemptManager]:
        return iter(self._retrying)

    @property
    def attempts(self) -> int:
        """How many attempts were made so far (1 before the first ends)."""
        return int(self._retrying.statistics.get("attempt_number", 1))


def retrying(
    policy: RetryPolicy,
    *,
    transient: type[BaseException] | Callable[[BaseException], bool],
    on_retry: OnRetry | None = None,
) -> Retries:
    """Attempts of a piece of work under `policy`; only errors `transient` accepts (an
    exception class, or a test of the error) are tried again."""
    # tenacity costs some 60 ms to import: only commands that retry pay for it.
    from tenacity import (
        RetryCallState,
        Retrying,
        retry_if_exception,
        stop_after_attempt,
        wait_random_exponential,
    )

    accepts: Callable[[BaseException], bool]
    if isinstance(transient, type):
        kind = transient
        accepts = lambda exc: isinstance(exc, kind)  # noqa: E731
    else:
        accepts = transient

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if on_retry is not None and error is not None:
            on_retry(state.attempt_number, error, wait)

    return Retries(
        Retrying(
            stop=stop_after_attempt(max(1, policy.attempts)),
            wait=wait_random_exponential(multiplier=policy.first_wait, max=policy.max_wait),
            retry=retry_if_exception(accepts),
            before_sleep=before_sleep,
            reraise=True,
        )
    )
