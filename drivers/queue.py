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
    """Work in priority order, FIFO within a kind; queued work with the same key (and
    kind) merges.

    One list kept in that order (a device rarely has more than a few items queued,
    and an idle device's queue is one empty list) and one future that wakes the
    single consumer: a hub keeps one queue per device.
    """

    __slots__ = ("_items", "_timer", "_waiter")

    def __init__(self) -> None:
        self._items: list[Work] = []
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def put(self, work: Work) -> Work:
        """Queue `work`, or fold it into queued work with the same key and return that.

        A newer command replaces the queued one's action (latest value wins) and both
        callers get its result; a poll that is already queued is not queued twice.
        """
        items, kind = self._items, work.kind
        if work.key is not None:
            for queued in items:  # a few items at most: no index to keep
                if queued.kind is kind and queued.key == work.key:
                    if kind is Kind.COMMAND:
                        queued.run = work.run
                        queued.label = work.label
                    if work.futures:
                        queued.futures += work.futures
                    return queued
        end = len(items)
        while end and items[end - 1].kind > kind:  # behind the work as urgent or more
            end -= 1
        items.insert(end, work)
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
        items = self._items
        return items.pop(0) if items else None

    def waiting(self, kind: Kind) -> bool:
        """Work of this kind is queued."""
        for work in self._items:
            if work.kind >= kind:
                return work.kind is kind
        return False

    def pop(self, kind: Kind) -> Work | None:
        """The oldest queued work of one kind, or None."""
        items = self._items
        for i, work in enumerate(items):
            if work.kind >= kind:
                return items.pop(i) if work.kind is kind else None
        return None

    def drain(self) -> list[Work]:
        """Remove and return everything queued (the consumer is stopping: no timer either)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items = self._items[:]
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)
