"""The per-device work queue: commands before reconnects before polls, with coalescing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from enum import IntEnum
from typing import Any


class Kind(IntEnum):
    """Work kinds, in priority order."""

    COMMAND = 0
    CONNECT = 1
    POLL = 2


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
        self.futures: list[asyncio.Future[Any]] = [future] if future is not None else []

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
    """Priority lanes, FIFO within a lane; queued work with the same key merges.

    Lanes are plain lists (a device rarely has more than a few items queued) and one
    future wakes the single consumer: a hub keeps one queue per device.
    """

    __slots__ = ("_keyed", "_lanes", "_waiter")

    def __init__(self) -> None:
        self._lanes: tuple[list[Work], ...] = tuple([] for _ in Kind)
        self._keyed: dict[Hashable, Work] = {}
        self._waiter: asyncio.Future[None] | None = None

    def put(self, work: Work) -> Work:
        """Queue `work`, or fold it into queued work with the same key and return that.

        A newer command replaces the queued one's action (latest value wins) and both
        callers get its result; a poll that is already queued is not queued twice.
        """
        if work.key is not None:
            queued = self._keyed.get(work.key)
            if queued is not None:
                if work.kind is Kind.COMMAND:
                    queued.run = work.run
                    queued.label = work.label
                queued.futures.extend(work.futures)
                return queued
            self._keyed[work.key] = work
        self._lanes[work.kind].append(work)
        self.wake()
        return work

    def wake(self) -> None:
        """Wake the consumer waiting in `get` (with a deadline, it returns None if idle)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, deadline: float | None = None) -> Work | None:
        """The most urgent work, waiting while the queue is empty.

        Without a deadline it waits for work. With one (event loop time) it returns
        None at the deadline, or when `wake` is called, if nothing was queued.
        """
        while True:
            work = self._take()
            if work is not None:
                return work
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            timer = None if deadline is None else loop.call_at(deadline, self.wake)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if deadline is not None:
                return self._take()

    def _take(self) -> Work | None:
        for kind in Kind:
            if self._lanes[kind]:
                return self.pop(kind)
        return None

    def pop(self, kind: Kind) -> Work | None:
        """The oldest queued work of one kind, or None."""
        lane = self._lanes[kind]
        if not lane:
            return None
        work = lane.pop(0)
        if work.key is not None:
            self._keyed.pop(work.key, None)
        return work

    def drain(self) -> list[Work]:
        """Remove and return everything queued."""
        items = [w for lane in self._lanes for w in lane]
        for lane in self._lanes:
            lane.clear()
        self._keyed.clear()
        return items

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)
