"""One retry policy for every provider. It knows no provider: the SDKs' own retries are off
(max_retries=0) and each provider maps its failures onto errors that say whether they are
retryable and how long the provider asked us to wait.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .deadline import Deadline
from .errors import LlmError, TimeoutError

T = TypeVar("T")

__all__ = ["Deadline", "RetryPolicy", "Sleep", "call_with_retries", "deadline_error"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring the provider's requested wait.

    Attempt n (n >= 1 retries so far) waits `initial_delay * 2**(n-1)`, capped at `max_delay`,
    reduced by up to `jitter` (a fraction) at random so that many clients do not retry in step.
    A wait the provider asked for (retry-after-ms, retry-after, RetryInfo) replaces the backoff.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, retry_number: int) -> float:
        base = min(self.max_delay, self.initial_delay * (2 ** (retry_number - 1)))
        return base * (1 - self.jitter * self.rng.random())

    def wait_before_retry(self, error: LlmError, retry_number: int) -> float:
        if error.retry_after is not None:
            return max(0.0, error.retry_after)
        return self.backoff(retry_number)


def deadline_error(deadline_seconds: float | None = None) -> TimeoutError:
    what = f" of {deadline_seconds:g} s" if deadline_seconds else ""
    return TimeoutError(f"deadline{what} reached (timeout_seconds)", error_type="timeout")


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    sleep: Sleep = asyncio.sleep,
    may_retry: Callable[[], bool] = lambda: True,
    on_retry: Callable[[LlmError, float, int], None] | None = None,
) -> tuple[T, int]:
    """Run `attempt` until it succeeds, fails for good, or the deadline would be passed.

    Returns (value, attempts). A final failure is raised with `.attempts` set. Each attempt runs
    under the time left until the deadline. We never sleep past the deadline: when the wait the
    policy (or provider) asks for does not fit, we fail now and report that wait in
    `retry_after`. `may_retry()` lets the caller forbid retries, e.g. once stream deltas have
    already been written.
    """
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline.remaining()
        try:
            if remaining <= 0:
                raise deadline_error()
            async with asyncio.timeout(remaining):
                return await attempt(), attempts
        except builtins.TimeoutError as exc:  # asyncio.timeout fired; ours shadows the name
            error: LlmError = deadline_error()
            error.__cause__ = exc
            error.retryable = False  # no time is left for another attempt
        except LlmError as exc:
            error = exc
        if not error.retryable or attempts > policy.max_retries or not may_retry():
            error.attempts = attempts
            raise error
        wait = policy.wait_before_retry(error, attempts)
        if wait >= deadline.remaining():
            error.attempts = attempts
            if error.retry_after is None:
                error.retry_after = round(wait, 3)
            error.message += f" (gave up: the next retry, in {wait:.2f} s, would pass the deadline)"
            raise error
        if on_retry is not None:
            on_retry(error, wait, attempts)
        await sleep(wait)

