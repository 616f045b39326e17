"""Capped exponential backoff with jitter."""

from __future__ import annotations

import random


class Backoff:
    """Delays of min·2ⁿ capped at max, each with ±jitter, reset after a success."""

    __slots__ = ("_next", "jitter", "maximum", "minimum")

    def __init__(self, minimum: float, maximum: float, jitter: float = 0.2) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.jitter = jitter
        self._next = minimum

    def next_delay(self) -> float:
        """The delay before the next attempt; doubles the one after it."""
        base = self._next
        self._next = min(self._next * 2, self.maximum)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def penalize(self) -> float:
        """The longest delay, for failures retrying soon cannot fix (bad password)."""
        self._next = self.maximum
        return self.next_delay()

    def reset(self) -> None:
        self._next = self.minimum
