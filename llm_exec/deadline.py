"""The deadline a task's `timeout_seconds` becomes. A module of its own, importing nothing heavy:
llm-route needs it without llm_exec.retry, whose retry loop loads asyncio (~17 ms)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass
class Deadline:
    """An absolute point on a monotonic clock; `timeout_seconds` becomes one of these."""

    at: float
    clock: Clock = time.monotonic

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0
