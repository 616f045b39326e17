"""Turns at start-up: at most so many devices of a process do their first round at once.

A device's first round is its first connect and a run of every poll group (see
`Worker`). Started within a second of each other (the worker's stagger), a thousand
devices outrun the event loop, and then every one of them is mid-connect or mid-read
at the same moment: request frames, queued work, half-open connections. The allocator
keeps the memory it has once used, so that moment sets the hub's size for good. Taking
turns, `limit` devices at a time, a waiting device holds one future. A turn ends when
the round does, or when a piece of it fails (the device is not answering: it retries
on its own), or after `hold` seconds, so slow devices do not hold the others up long.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Final

LIMIT: Final = 64
"""Devices in their first round at once (per event loop)."""
HOLD: Final = 1.0
"""Seconds a device keeps its turn at most."""


class _Turns:
    """One event loop's turns: how many are taken, who waits (oldest first)."""

    __slots__ = ("taken", "waiting")

    def __init__(self) -> None:
        self.taken = 0
        self.waiting: deque[asyncio.Future[None]] = deque()

    def give_back(self) -> None:
        """Hand the turn to the oldest waiter still waiting, else free it."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.taken -= 1


class Turn:
    """A device's turn; `end` it (more than once is fine)."""

    __slots__ = ("_timer", "_turns")

    def __init__(self, turns: _Turns, loop: asyncio.AbstractEventLoop, hold: float) -> None:
        self._turns: _Turns | None = turns
        self._timer = loop.call_later(hold, self.end)

    def end(self) -> None:
        turns, self._turns = self._turns, None
        if turns is not None:
            self._timer.cancel()
            turns.give_back()


class StartGate:
    """Gives out turns, `limit` at a time per event loop, each for `hold` seconds at most."""

    def __init__(self, limit: int = LIMIT, hold: float = HOLD) -> None:
        if limit < 1 or hold <= 0:
            raise ValueError(f"a start gate needs limit >= 1 and hold > 0 (not {limit}, {hold})")
        self.limit = limit
        self.hold = hold
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = (
            weakref.WeakKeyDictionary()
        )

    def busy(self) -> int:
        """Turns taken now on the running loop."""
        turns = self._loops.get(asyncio.get_running_loop())
        return 0 if turns is None else turns.taken

    def waiting(self) -> int:
        """Devices waiting for a turn on the running loop."""
        turns = self._loops.get(asyncio.get_running_loop())
        return 0 if turns is None else sum(not w.done() for w in turns.waiting)

    async def turn(self) -> Turn:
        """Wait for a turn (first come, first served)."""
        loop = asyncio.get_running_loop()
        turns = self._loops.get(loop)
        if turns is None:
            turns = self._loops[loop] = _Turns()
        if turns.taken < self.limit and not turns.waiting:
            turns.taken += 1
        else:
            waiter: asyncio.Future[None] = loop.create_future()
            turns.waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                    turns.give_back()
                raise
        return Turn(turns, loop, self.hold)


START_GATE = StartGate()
"""The gate every worker takes its first round through."""
