"""Retry delays: exponential backoff with a cap, and optional jitter.

One convention for every retry loop of the platform: `delay(retry)` is the wait before
retry number `retry`, counted from 0 (the wait after the first failure). Batch handlers use
it without jitter: their retries happen inside one consumer, so there is no herd to spread
and a predictable schedule is easier to follow in logs. The publisher uses `jitter=0.5`,
so retries from many producers spread out while each still backs off.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (0-based): `initial * factor**n` seconds, at most `maximum`.

    With `jitter` j the delay is drawn from [d * (1 - j), d]: `jitter=0.5` is "equal
    jitter", a random point in the upper half.

    >>> Backoff(0.2, 2.0, 1.0).schedule(5)
    [0.2, 0.4, 0.8, 1.0, 1.0]
    """

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if (self.initial < 0 or self.factor < 1 or self.maximum < self.initial
                or not 0 <= self.jitter <= 1):
            raise ValueError("Backoff needs initial >= 0, factor >= 1, maximum >= initial "
                             "and jitter from 0 to 1")

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        try:
            ceiling = min(self.maximum, self.initial * self.factor ** retry)
        except OverflowError:  # factor**retry beyond a float: long past the cap
            ceiling = self.maximum
        if not self.jitter:
            return ceiling
        return ceiling * (1 - self.jitter * (1 - rand()))

    def schedule(self, retries: int) -> list[float]:
        """The delays before each of `retries` retries (their upper bounds with jitter)."""
        return [self.delay(n, rand=lambda: 1.0) for n in range(retries)]
