"""The per-device work queue: commands before reconnects before polls, with coalescing."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable
from enum import IntEnum
from typing import Any


class Kind(IntEnum):
    """Work kinds, in priority order."""

    COMMAND = 0
    CONNECT = 1
    POLL = 2


_KINDS = tuple(Kind)  # iterating the enum itself is slow, and this runs for every piece of work
_TIMERS = contextvars.Context()
"""The context every queue's timer runs `wake` in: without one, each timer copies the
context of its `wait` (an object per idle device); `wake` reads no context variable."""


class Work:
    """One unit of device work; every caller waiting on it holds one of `futures`."""

    __slots__ = ("futures", "key", "kind", "label", "run")

    def __init__(
        self,
        kind: Kind,
        run: Callable[[], Awaitable[Any]],
        key: Hashable | None = None,
        label: str = "",
        future: asyncio.Future[Any] | None = None,
    ) -> None:
        self.kind = kind
        self.run = run
        self.key = key
        self.label = label
        # A tuple: work without a caller (polls, connects) holds the empty one, no list.
        self.futures: tuple[asyncio.Future[Any], ...] = (future,) if future is not None else ()

    def resolve(self, result: Any = None, error: BaseException | None = None) -> None:
        """Hand the outcome to everyone waiting."""
        for fut in self.futures:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)


class WorkQueue:
    """Priority lanes, FIFO within a lane; queued work with the same key (and kind) merges.

    Lanes are plain lists (a device rarely has more than a few items queued) and one
    future wakes the single consumer: a hub keeps one queue per device.
    """

    __slots__ = ("_lanes", "_timer", "_waiter")

    def __init__(self) -> None:
        self._lanes: tuple[list[Work], ...] = tuple([] for _ in Kind)
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def put(self, work: Work) -> Work:
        """Queue `work`, or fold it into queued work with the same key and return that.

        A newer command replaces the queued one's action (latest value wins) and both
        callers get its result; a poll that is already queued is not queued twice.
        """
        lane = self._lanes[work.kind]
        if work.key is not None:
            for queued in lane:  # a lane holds a few items at most: no index to keep
                if queued.key == work.key:
                    if work.kind is Kind.COMMAND:
                        queued.run = work.run
                        queued.label = work.label
                    if work.futures:
                        queued.futures += work.futures
                    return queued
        lane.append(work)
        self.wake()
        return work

    def wake(self) -> None:
        """End the consumer's `wait` (new work, or something changed that it should see)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wait(self, deadline: float | None = None) -> asyncio.Future[None]:
        """A future done when work is queued, `wake` is called, or (loop time) `deadline` comes.

        A future rather than a coroutine: an idle device holds no coroutine frame for it.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        if self._timer is not None:  # one timer per queue: the last wait's, if still due
            self._timer.cancel()
        self._timer = (
            None if deadline is None else loop.call_at(deadline, self._due, context=_TIMERS)
        )
        return waiter

    def _due(self) -> None:
        self._timer = None  # fired: nothing to cancel
        self.wake()

    def take(self) -> Work | None:
        """The most urgent work queued, or None (without waiting)."""
        for kind in _KINDS:
            if self._lanes[kind]:
                return self.pop(kind)
        return None

    def waiting(self, kind: Kind) -> bool:
        """Work of this kind is queued."""
        return bool(self._lanes[kind])

    def pop(self, kind: Kind) -> Work | None:
        """The oldest queued work of one kind, or None."""
        lane = self._lanes[kind]
        if not lane:
            return None
        return lane.pop(0)

    def drain(self) -> list[Work]:
        """Remove and return everything queued (the consumer is stopping: no timer either)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items = [w for lane in self._lanes for w in lane]
        for lane in self._lanes:
            lane.clear()
        return items

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)
