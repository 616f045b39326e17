"""The hub process's long-lived objects, kept out of CPython's full collections.

A full (generation 2) collection walks every object the cycle collector tracks, and the
event loop stands still meanwhile: every event to every panel waits. Most of those objects
live long. After start-up: imported modules, pydantic schemas, the configuration, rooms
and drivers (about 80,000 objects on the demo building). Then the panels: each connected
panel holds about 190 (python-engineio's and aiohttp's tasks, futures, timers and buffers
for its WebSocket), so 2,000 panels are some 400,000 objects and a full collection of them
stops the loop for 100-150 ms. Events streaming to many panels promote enough short-lived
objects that such a collection comes round every 20-45 s.

`Heap` freezes what lives long (`gc.freeze`), so full collections walk only what came after:

- `settle()` collects once and freezes everything alive: at start-up, and after a reload.
- `keep(rooms)` runs beside the hub. Every `period` it looks at the rooms' panel counters:
  when panels have joined since it last looked, it freezes every object alive, the new
  panels' among them (instant: no collection first).
- A frozen object is never collected as part of a cycle, so cyclic garbage frozen with
  the rest stays in memory until the next sweep: `thaw()` then `settle()`, one full
  collection (the pause, once, instead of every half minute). A panel on a WebSocket
  leaves little of it: the hub's side of its socket (driver, aiohttp request, tasks) is
  freed as it goes, frozen or not, since hub/fanout.py serves it without
  python-engineio's reference cycles, stops its ping task and drops the traceback that
  tied aiohttp's response into one when the panel hung up (asyncio's transport, a
  handful of objects in a cycle of its own on Python 3.11, is what is left); a
  long-polling panel's go to the sweep. A sweep
  comes when `sweep_after` panels have left (at least, and at least a quarter of those
  connected), or when any panel left more than `sweep_every` ago. A reload thaws before
  it applies and settles after, so the devices and rooms it removes are collected.

Only `avhub run` does this (the process is the hub's); a hub inside another program, or a
test's, leaves the collector alone. /metrics shows what the last settle froze
(`avhub_gc_frozen_objects`) and the sweeps (`avhub_gc_sweeps_total`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.room import Room

log = logging.getLogger("avhub")

__all__ = ["Heap"]


class Heap:
    """Freezes what lives long; sweeps after panels leave; thaws for a reload."""

    def __init__(
        self,
        *,
        period: float = 10.0,
        sweep_after: int = 100,
        sweep_every: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = period
        self.sweep_after = sweep_after
        self.sweep_every = sweep_every
        self.clock = clock
        self.frozen = 0
        """Objects frozen at the last settle (start, sweep, reload)."""
        self.sweeps = 0
        self._joined = 0
        self._left = 0
        self._first_left_at: float | None = None
        """When the first panel left since the last sweep (None: none has)."""

    # ---- the three moves -----------------------------------------------------------

    def settle(self) -> int:
        """Collect everything, then freeze every object alive; returns how many are frozen."""
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        self._first_left_at = None
        log.debug(
            "heap settled: %d objects frozen, %.0f ms",
            self.frozen,
            (time.perf_counter() - started) * 1000,
        )
        return self.frozen

    def thaw(self) -> None:
        """Give the frozen objects back to the collector (before a reload drops some)."""
        gc.unfreeze()
        self.frozen = 0

    def freeze(self) -> None:
        """Freeze every object alive, without collecting first.

        Instant: the collector's lists are moved, not walked (a young collection first
        stopped the loop for ~10 ms after a hundred panels joined; counting the frozen
        objects walks them all, so `frozen` is the last settle's count). The cost: cyclic
        garbage alive at that moment is kept until the next sweep, like a panel that left.
        """
        gc.freeze()

    # ---- keeping it -----------------------------------------------------------------

    def step(self, rooms: Iterable[Room]) -> str | None:
        """Look at the panel counters once: `"swept"`, `"froze"` or None (nothing to do)."""
        joined = left = panels = 0
        for room in rooms:
            counters = room.counters
            joined += counters.joined
            left += counters.left
            panels += counters.panels
        if joined < self._joined or left < self._left:  # a room went away (a reload)
            self._joined, self._left = joined, left
            return None
        new_joins, new_leaves = joined - self._joined, left - self._left
        now = self.clock()
        if new_leaves and self._first_left_at is None:
            self._first_left_at = now
        due = self._first_left_at is not None and now - self._first_left_at >= self.sweep_every
        if new_leaves and (new_leaves >= max(self.sweep_after, panels // 4) or due):
            started = time.perf_counter()
            self.thaw()
            self.settle()
            self.sweeps += 1
            self._joined, self._left = joined, left
            log.info(
                "heap swept after %d panels left: %d objects frozen, %.0f ms",
                new_leaves,
                self.frozen,
                (time.perf_counter() - started) * 1000,
            )
            return "swept"
        if new_joins:
            self.freeze()
            self._joined = joined
            log.debug("heap: froze after %d panels joined", new_joins)
            return "froze"
        return None

    async def keep(self, rooms: Callable[[], Iterable[Room]]) -> None:
        """`step` every `period` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.period)
            try:
                self.step(rooms())
            except Exception:  # the hub runs on: the heap is only left as it was
                log.exception("heap: keeping the collector's generations failed")
