"""hub/cluster/tasks.py: a task that loses a cancel (as redis-py's pipeline `execute()`
can on Python 3.11) is cancelled again until it ends, so a hub always stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.cluster.tasks import stop_tasks


async def loses_the_first_cancel(started: asyncio.Event) -> None:
    """A loop around a call that swallows one cancel, then waits as the lease loop does."""
    swallowed = False
    wake = asyncio.Event()
    while True:
        started.set()
        try:
            await wake.wait()
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True  # what the library did: the loop goes on


async def test_a_task_that_loses_a_cancel_is_cancelled_again_until_it_ends() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(loses_the_first_cancel(started))
    await started.wait()
    assert await asyncio.wait_for(stop_tasks([task], limit=2.0), 3.0) is True
    assert task.cancelled()


async def test_a_task_that_never_ends_is_given_up_on_after_the_limit_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn-loop")
    await asyncio.sleep(0)
    caplog.set_level(logging.WARNING, logger="avhub.cluster")
    assert await stop_tasks([task], limit=0.2) is False
    assert "stubborn-loop" in caplog.text
    let_go.set()  # the test's own clean-up: the next cancel ends it
    task.cancel()
    await task
