"""How hard we may lean on the registry: the rate, the retries, and reading ``Retry-After``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Politeness:
    """How hard we may lean on the registry."""

    rate: float = 1.0  # requests per second, on average
    burst: int = 1
    retries: int = 5
    backoff: float = 2.0  # seconds before the first retry; doubles each time
    max_backoff: float = 120.0
    timeout: float = 60.0  # seconds for a whole request, connect to last byte


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` waits."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, max(1, burst), clock, sleep
        self.tokens = float(self.burst)
        self.stamp = clock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
            self.stamp = self.clock()
            self.tokens = 0.0
        else:
            self.tokens -= 1


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
