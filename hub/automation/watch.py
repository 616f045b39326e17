"""The room's committed state as conditions read it, and waiting for a condition on it.

Conditions are checked when asked and then on every change of a device they read,
as the store hands changes to its subscribers — never by polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import OfflineReason
from hub.automation.clock import Clock
from hub.automation.conditions import Condition
from hub.store import Change, RoomStore


class StateView:
    """Reads device state from a room's store and watches it for conditions."""

    def __init__(self, store: RoomStore) -> None:
        self.store = store

    def state_of(self, device: str) -> Mapping[str, Any] | None:
        entry = self.store.devices.get(device)
        return None if entry is None else entry.state

    def holds(self, condition: Condition) -> bool:
        return condition.holds(self.state_of)

    def starting(self, device: str) -> bool:
        """True while `device` is starting: not yet connected since its driver started."""
        state = self.state_of(device)
        return state is not None and state.get("offline_reason") == OfflineReason.STARTING

    def watch(self, condition: Condition, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after each committed change of a device `condition` reads.

        It runs inside the store's commit, so it must not commit in turn (that would hand
        later subscribers the changes out of order): defer such work. Returns the
        function that stops watching.
        """
        devices = condition.devices

        def changed(change: Change) -> None:
            if change.device in devices:
                callback()

        return self.store.subscribe(changed)

    async def wait(self, condition: Condition, timeout: float, clock: Clock) -> bool:
        """Wait until `condition` holds: True, or False once `timeout` passed without it."""
        if self.holds(condition):
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def check() -> None:
            if not done.done() and self.holds(condition):
                done.set_result(True)

        def expire() -> None:
            if not done.done():
                done.set_result(False)

        stop = self.watch(condition, check)
        timer = clock.call_later(timeout, expire)
        try:
            return await done
        finally:
            stop()
            timer.cancel()
