"""dockops.retry: only transient failures are tried again, within the policy's attempts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dockops import retry
from dockops.retry import RetryPolicy, retrying

FAST = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.002)


class Flaky(Exception):
    pass


def _run(
    work: list[BaseException | None],
    transient: type[BaseException] | Callable[[BaseException], bool],
) -> tuple[int, list[tuple[int, str]]]:
    """Run attempts that fail with work[i] (None: succeed); (attempts made, retry notices)."""
    told: list[tuple[int, str]] = []
    retries = retrying(
        FAST, transient=transient, on_retry=lambda n, error, _: told.append((n, str(error)))
    )
    for attempt in retries:
        with attempt:
            error = work.pop(0)
            if error is not None:
                raise error
    return retries.attempts, told


def test_a_transient_failure_is_tried_again_until_it_succeeds() -> None:
    made, told = _run([Flaky("one"), Flaky("two"), None], transient=Flaky)
    assert made == 3
    assert told == [(1, "one"), (2, "two")]


def test_the_last_transient_failure_is_raised_as_it_is() -> None:
    with pytest.raises(Flaky, match="third"):
        _run([Flaky("first"), Flaky("second"), Flaky("third"), None], transient=Flaky)


def test_any_other_failure_is_raised_at_once() -> None:
    work: list[BaseException | None] = [ValueError("bad input"), None]
    with pytest.raises(ValueError, match="bad input"):
        _run(work, transient=Flaky)
    assert work == [None]  # no second attempt


def test_transient_may_be_a_test_of_the_error() -> None:
    made, _ = _run([Flaky("503"), None], transient=lambda e: "503" in str(e))
    assert made == 2
    with pytest.raises(Flaky, match="404"):
        _run([Flaky("404"), None], transient=lambda e: "503" in str(e))


def test_one_attempt_means_no_retry() -> None:
    retries = retrying(RetryPolicy(attempts=1), transient=Flaky)
    with pytest.raises(Flaky):
        for attempt in retries:
            with attempt:
                raise Flaky("once")
    assert retries.attempts == 1


def test_the_notice_says_how_long_until_the_next_attempt() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=2, first_wait=0.001, max_wait=0.01)
    for attempt in retrying(policy, transient=Flaky, on_retry=lambda n, e, w: waits.append(w)):
        with attempt:
            if not waits:
                raise Flaky("again")
    assert len(waits) == 1 and 0 <= waits[0] <= 0.01


def test_the_two_policies() -> None:
    # A whole transfer waits longer between its tries than one registry request does.
    assert retry.TRANSFER.attempts >= retry.REQUEST.attempts
    assert retry.TRANSFER.max_wait > retry.REQUEST.max_wait
