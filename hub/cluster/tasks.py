"""Stopping tasks that talk to Redis.

redis-py's asyncio client (7.4 on Python 3.11) can end a pipeline's `execute()` normally
although the task running it was cancelled meanwhile: the cancel is lost, and a loop
around it goes on as if nothing had happened. One `cancel()` and a `gather` would then
wait for ever, and the hub would not exit. So a task is cancelled again until it ends;
the next cancel lands at its next await (an event, a sleep), which does not lose it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("avhub.cluster")

AGAIN = 0.05  # seconds between cancels of a task that is still running
STOP_WAIT = 2.0  # seconds a stopping hub waits for its Redis tasks and connections


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], limit: float) -> bool:
    """Cancel `tasks` until every one has ended, for at most `limit` seconds.

    Returns False (and logs which) when some are still running at the end.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        wait = min(AGAIN, deadline - loop.time())
        if wait <= 0:
            names = ", ".join(sorted(task.get_name() for task in running))
            log.warning("tasks still running %gs after being cancelled: %s", limit, names)
            return False
        done, running = await asyncio.wait(running, timeout=wait)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("%s ended with %r", task.get_name(), task.exception())
    return True
