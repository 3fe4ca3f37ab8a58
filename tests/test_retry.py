"""The one retry policy, timed with an injected clock: no test sleeps for real."""

from __future__ import annotations

import asyncio
import random

import pytest

from llm_exec.errors import AuthenticationError, LlmError, RateLimitError, ServiceUnavailableError
from llm_exec.retry import Deadline, RetryPolicy, call_with_retries


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(failures: list[LlmError], *, policy: RetryPolicy | None = None, budget: float = 600.0,
        fake: FakeTime | None = None) -> tuple[object, int, FakeTime]:
    fake = fake or FakeTime()
    queue = list(failures)

    async def attempt() -> str:
        if queue:
            raise queue.pop(0)
        return "ok"

    async def main() -> tuple[str, int]:
        return await call_with_retries(
            attempt, policy=policy or RetryPolicy(rng=random.Random(0)),
            deadline=Deadline(budget, clock=fake.clock), sleep=fake.sleep,
        )

    value, attempts = asyncio.run(main())
    return value, attempts, fake


def test_provider_wait_is_honoured_exactly() -> None:
    value, attempts, fake = run([RateLimitError("slow down", status_code=429, retry_after=1.5)])
    assert (value, attempts) == ("ok", 2)
    assert fake.sleeps == [1.5]


def test_exponential_backoff_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_retries=4, initial_delay=0.5, max_delay=8.0, jitter=0.25, rng=random.Random(1))
    errors = [ServiceUnavailableError("boom", status_code=500) for _ in range(4)]
    _, attempts, fake = run(errors, policy=policy)
    assert attempts == 5
    for wait, base in zip(fake.sleeps, [0.5, 1.0, 2.0, 4.0], strict=True):
        assert base * 0.75 <= wait <= base


def test_retries_exhausted_reports_attempts() -> None:
    errors = [ServiceUnavailableError("boom", status_code=500) for _ in range(5)]
    with pytest.raises(ServiceUnavailableError) as info:
        run(errors)
    assert info.value.attempts == 3  # max_retries 2 -> 3 attempts, as in the SDKs


def test_not_retryable_fails_at_once() -> None:
    with pytest.raises(AuthenticationError) as info:
        run([AuthenticationError("bad key", status_code=401)])
    assert info.value.attempts == 1


def test_x_should_retry_false_is_respected() -> None:
    error = ServiceUnavailableError("no", status_code=500, retryable=False)
    with pytest.raises(ServiceUnavailableError) as info:
        run([error])
    assert info.value.attempts == 1


def test_never_sleeps_past_the_deadline() -> None:
    error = RateLimitError("wait a minute", status_code=429, retry_after=60)
    with pytest.raises(RateLimitError) as info:
        run([error], budget=10)
    assert info.value.attempts == 1
    assert info.value.retry_after == 60  # the provider's requested wait is reported
    assert "deadline" in info.value.message


def test_backoff_that_would_pass_deadline_is_reported() -> None:
    policy = RetryPolicy(initial_delay=5, jitter=0, rng=random.Random(0))
    with pytest.raises(ServiceUnavailableError) as info:
        run([ServiceUnavailableError("boom", status_code=503)], policy=policy, budget=3)
    assert info.value.retry_after == 5


def test_attempt_is_cut_at_the_deadline() -> None:
    async def slow() -> str:
        await asyncio.sleep(5)
        return "late"

    async def main() -> None:
        await call_with_retries(slow, policy=RetryPolicy(), deadline=Deadline(asyncio.get_running_loop().time() + 0.1,
                                                                                clock=asyncio.get_running_loop().time))

    with pytest.raises(LlmError) as info:
        asyncio.run(main())
    assert info.value.type == "timeout" and info.value.attempts == 1
