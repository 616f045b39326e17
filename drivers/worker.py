"""The worker: one task per device runs its queued work and queues its polls when due."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from drivers.errors import AvhubError, CommandError, ErrorCode
from drivers.queue import Kind, Work, WorkQueue
from drivers.startup import START_GATE

log = logging.getLogger("avhub.driver")

Connect = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class PollGroup:
    """Keys polled together: `run` queries the device and calls `update`.

    `interval` is seconds, or a function giving them (an interval that depends on state).
    """

    name: str
    run: Callable[[], Awaitable[object]]
    interval: float | Callable[[], float]
    last: float = field(default=-1.0)


class Worker:
    """Runs one device's work, most urgent first: commands, then reconnects, then polls."""

    __slots__ = (
        "_connect",
        "_current",
        "_groups",
        "_queue",
        "_stopping",
        "label",
        "poll_interval",
        "task",
    )

    def __init__(self, label: str, poll_interval: float) -> None:
        self.label = label
        self.poll_interval = poll_interval
        self.task: asyncio.Task[None] | None = None
        self._queue = WorkQueue()
        self._groups: list[PollGroup] = []
        self._current: Work | None = None
        self._connect: Connect | None = None  # set for devices that stay connected
        self._stopping = False

    @property
    def queued(self) -> int:
        """Pieces of work waiting (commands, a reconnect, polls)."""
        return len(self._queue)

    def start(
        self, groups: list[PollGroup], stagger: float | None, connect: Connect | None
    ) -> None:
        """Start the task; the first poll (and `connect`, if given) after a random stagger.

        With `connect`, the device stays connected: it is connected first and again
        whenever `reconnect` is called.
        """
        self._stopping = False  # a stopped worker may be started again
        self._groups = groups
        self._connect = connect
        if stagger is None:
            stagger = random.uniform(0, min(self.poll_interval, 1.0))
        self.task = asyncio.create_task(self._loop(stagger), name=f"{self.label}-worker")

    async def stop(self) -> None:
        """Fail queued commands and stop the task."""
        self._stopping = True
        task = self.task
        if task is not None:
            task.cancel()
        for work in self._queue.drain():
            work.resolve(error=CommandError(ErrorCode.DEVICE_OFFLINE, "hub is shutting down"))
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # ---- queueing work -------------------------------------------------------------

    def command(
        self, run: Callable[[], Awaitable[Any]], key: Hashable | None, label: str
    ) -> asyncio.Future[Any]:
        """Queue a user command; the future gets its outcome (shared with any it merged with)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put(Work(Kind.COMMAND, run, key, label, future))
        return future

    def refresh(self, groups: Iterable[str] | None = None) -> None:
        """Queue the named poll groups (all when None) to run soon."""
        now = asyncio.get_running_loop().time()
        for group in self._groups:
            if groups is None or group.name in groups:
                self._queue_poll(group, now)

    def reconnect(self, label: str = "reconnect") -> None:
        """Queue a connect, for a device that stays connected (not while stopping)."""
        if self._connect is not None and not self._stopping:
            run = partial(self._keep_connected, self._connect)
            self._queue.put(Work(Kind.CONNECT, run, ("connect",), label))

    async def _keep_connected(self, connect: Connect) -> None:
        try:
            await connect()
        except AvhubError:
            self.reconnect()  # the link backs off before the next try
            raise

    def wake(self) -> None:
        """Re-check when polls are due (their intervals may depend on state)."""
        self._queue.wake()

    # ---- running work --------------------------------------------------------------

    async def _loop(self, stagger: float) -> None:
        """Run queued work, most urgent first, and queue each poll group when it is due.

        Between pieces of work the one task waits for new work or the next poll,
        whichever comes first.
        """
        loop = asyncio.get_running_loop()
        queue = self._queue
        begin = loop.time() + stagger
        while loop.time() < begin:  # a refresh asked for meanwhile still runs
            work = queue.take()
            if work is None:
                await queue.wait(begin)
            else:
                await self._run(work)
        turn = await START_GATE.turn()  # see drivers/startup.py
        try:
            self.reconnect("connect")
            self.refresh()
            count = len(self._groups)
            for i, group in enumerate(self._groups):  # later groups a little later each round
                group.last += self._interval(group) * i / (2 * count)
            while (work := queue.take()) is not None and await self._run(work):
                pass  # the first round: until all is done or something fails
        finally:
            turn.end()
        while True:
            deadline = self._queue_due_polls(loop.time())
            work = queue.take()
            if work is None:
                await queue.wait(deadline)
            else:
                await self._run(work)

    async def _run(self, work: Work) -> bool:
        """Do one piece of work and hand its outcome to every caller waiting on it.

        True when it succeeded.
        """
        outer, self._current = self._current, work
        try:
            result = await work.run()
        except asyncio.CancelledError:
            work.resolve(error=CommandError(ErrorCode.DEVICE_OFFLINE, "hub is shutting down"))
            raise
        except AvhubError as err:
            if work.kind is not Kind.COMMAND:
                log.debug("%s: %s failed: %s", self.label, work.label, err)
            work.resolve(error=err)
        except Exception as err:
            log.exception("%s: %s failed", self.label, work.label)
            work.resolve(error=CommandError(ErrorCode.INTERNAL, f"internal error: {err}"))
        else:
            if work.futures:  # polls and connects have no caller
                work.resolve(result)
            return True
        finally:
            self._current = outer
        return False

    @property
    def commands_waiting(self) -> bool:
        """User commands are queued: a poll's next request should `yield_to_commands` first."""
        return self._queue.waiting(Kind.COMMAND)

    async def yield_to_commands(self) -> None:
        """Between the requests of a poll, run waiting user commands first; see Driver."""
        current = self._current
        while current is not None and current.kind is Kind.POLL:
            command = self._queue.pop(Kind.COMMAND)
            if command is None:
                return
            await self._run(command)

    # ---- polling -------------------------------------------------------------------

    def _queue_due_polls(self, now: float) -> float | None:
        """Queue every poll group that is due; returns when the next one will be."""
        next_due = None
        for group in self._groups:
            interval = group.interval
            if callable(interval):
                interval = self._interval(group)
            due = group.last + interval
            if due <= now:
                self._queue_poll(group, now)
                due = now + interval
            if next_due is None or due < next_due:
                next_due = due
        return next_due

    def _queue_poll(self, group: PollGroup, now: float) -> None:
        group.last = now
        # The lane holds polls only: the group's name is key enough (no tuple per poll).
        self._queue.put(Work(Kind.POLL, group.run, group.name, group.name))

    def _interval(self, group: PollGroup) -> float:
        """The group's interval now; `poll_interval` if the driver's own rule fails.

        The task that runs commands also schedules polls, so a bug here must not stop
        the device from taking commands.
        """
        interval = group.interval
        if not callable(interval):
            return interval
        try:
            return float(interval())
        except Exception:
            log.exception("%s: interval of poll group %r failed", self.label, group.name)
            return self.poll_interval
