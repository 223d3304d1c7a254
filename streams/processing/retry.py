"""Retry schedule for batch handlers: exponential backoff with a cap and full jitter off.

The schedule is deterministic (no jitter): handler retries happen inside one consumer, so
there is no herd to spread, and a predictable schedule is easier to reason about in logs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (0-based): `initial * factor**n`, at most `maximum` seconds."""

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 30.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("Backoff needs initial >= 0, factor >= 1, maximum >= initial")

    def delay(self, retry: int) -> float:
        return min(self.maximum, self.initial * self.factor ** retry)

    def schedule(self, retries: int) -> list[float]:
        """The delays before each of `retries` retries."""
        return [self.delay(n) for n in range(retries)]
