"""Time for automation: an injectable clock, so tests drive schedules and durations.

Everything in `hub.automation` that waits (a `wait` step, a `wait_until` timeout, a
trigger's `for:`, the next scheduled run) asks its `Clock`, never `asyncio.sleep` or
the loop's timers directly. `SystemClock` is the real one; `ManualClock` only moves
when told to, firing what fell due in order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger("avhub.automation")

Callback = Callable[[], None]
SETTLE_TURNS = 20  # loop turns ManualClock gives woken tasks before moving on


class Timer(Protocol):
    """What a clock's `call_later`/`call_at` returns."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall-clock time and timers; see the module docstring."""

    def time(self) -> float:
        """Now, in Unix seconds."""
        ...

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Call `callback` once `delay` seconds have passed (elapsed time, not the wall clock)."""
        ...

    def call_at(self, when: float, callback: Callback) -> Timer:
        """Call `callback` once the wall clock reads `when` (Unix seconds)."""
        ...


class SystemClock:
    """The machine's clock and the running event loop's timers."""

    MAX_NAP = 60.0
    """`call_at` looks at the wall clock again at least this often, so a clock that is
    set (NTP, a resumed laptop) moves a scheduled run with it."""

    def time(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)

    def call_at(self, when: float, callback: Callback) -> Timer:
        return _WallTimer(self, when, callback)


class _WallTimer:
    """A `SystemClock.call_at` timer: naps of at most `MAX_NAP` until the wall clock is there."""

    def __init__(self, clock: SystemClock, when: float, callback: Callback) -> None:
        self._clock = clock
        self._when = when
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        left = self._when - self._clock.time()
        if left <= 0:
            self._handle = None
            self._callback()
            return
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(min(left, self._clock.MAX_NAP), self._arm)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that stands still until `advance`d: for tests and dry runs of schedules.

    Elapsed time and the wall clock are one timeline here: advancing an hour moves both.
    """

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return self.call_at(self._now + max(delay, 0.0), callback)

    def call_at(self, when: float, callback: Callback) -> Timer:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def pending(self) -> list[float]:
        """When the timers still armed fire, earliest first."""
        return sorted(when for when, _, t in self._timers if not t.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing each timer that falls due at its own moment, in order.

        After each timer (and at the end) woken tasks get a few loop turns to run,
        so a timer they arm in turn fires in the same advance if it is due.
        """
        await self.advance_to(self._now + seconds)

    async def advance_to(self, when: float) -> None:
        """Move time forward to `when` (Unix seconds); see `advance`."""
        while self._timers and self._timers[0][0] <= when:
            due, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, due)
            timer.callback()
            await settle()
        self._now = max(self._now, when)
        await settle()


async def settle() -> None:
    """Give tasks that were just woken a few turns of the event loop."""
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)


async def sleep(clock: Clock, seconds: float) -> None:
    """`asyncio.sleep` on `clock`."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    timer = clock.call_later(seconds, wake)
    try:
        await future
    finally:
        timer.cancel()


# ---------------------------------------------------------------------------- time zones


def zone(name: str | None) -> tzinfo:
    """The IANA zone `name` (`hub.timezone`), or the machine's when None."""
    return ZoneInfo(name) if name else local_zone()


def local_zone() -> tzinfo:
    """The machine's time zone: `TZ`, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("TZ=%r is not a known time zone; using /etc/localtime", name)
    localtime = Path("/etc/localtime")
    target = str(localtime.resolve())
    if "/zoneinfo/" in target:
        try:
            return ZoneInfo(target.split("/zoneinfo/", 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with localtime.open("rb") as file:
            return ZoneInfo.from_file(file, key="localtime")
    except (OSError, ValueError):
        return UTC
