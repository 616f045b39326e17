"""What projector simulators share: power knobs, the standby lockout, hour meters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from drivers.config import Duration
from simulators.base import Knobs


class ProjectorKnobs(Knobs):
    """Knobs of every projector simulator; state knobs only set the start state."""

    power: Literal["off", "on"] = Field("off", description="power state at start")
    warmup: Duration = Field(5.0, description="warming → on")
    cooldown: Duration = Field(5.0, description="cooling → off")
    standby_lockout: Literal["all", "set", "none"] = Field(
        "all",
        description="input and mute while not on are refused: all (queries too), only sets, "
        "or none",
    )

    def refuses(self, on: bool, *, setting: bool) -> bool:
        """True when an input or mute command must be refused (see `standby_lockout`)."""
        mode = self.standby_lockout
        if on or mode == "none":
            return False
        return mode == "all" or setting


class HourMeter:
    """Hours a projector counts while it is on, `rate()` hours per real second."""

    def __init__(self, hours: float, rate: Callable[[], float]) -> None:
        self._hours = float(hours)
        self._rate = rate
        self._since: float | None = None  # counting since (monotonic), or stopped

    @property
    def hours(self) -> int:
        return int(self._hours + self._gained())

    def run(self, running: bool) -> None:
        """Start or stop counting (the projector turned on, or left on)."""
        self._hours += self._gained()
        self._since = time.monotonic() if running else None

    def set(self, hours: float) -> None:
        self._hours = float(hours)
        if self._since is not None:
            self._since = time.monotonic()

    def _gained(self) -> float:
        if self._since is None:
            return 0.0
        return (time.monotonic() - self._since) * self._rate()
