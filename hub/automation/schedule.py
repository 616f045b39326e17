"""When schedules and triggers fire.

A schedule runs its macro at a time of day on its days, in the hub's time zone: a
time that a daylight-saving change skips runs as much later as the clock jumped
(02:30 on a night that jumps from 02:00 to 03:00 runs at 03:30), and a time the
change repeats runs once, the first time. A trigger runs its macro once its
condition has held for `for` of elapsed time without a break, then not again
until the condition has been false in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from hub.automation.clock import Clock, Timer
from hub.automation.models import WEEKDAYS, ScheduleConfig, TriggerConfig
from hub.automation.watch import StateView

log = logging.getLogger("avhub.automation")

Fire = Callable[[str, str], None]
"""`fire(macro, by)`: start a macro (by "schedule" or "trigger"); never commits at once."""


def next_run(schedule: ScheduleConfig, after: float, zone: tzinfo) -> datetime:
    """The first time after `after` (Unix seconds) that `schedule` is due, in `zone`."""
    local = datetime.fromtimestamp(after, zone)
    days = {WEEKDAYS.index(d) for d in schedule.days}
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        due = datetime.combine(day, schedule.at, tzinfo=zone)  # fold 0: the first of two
        if due.timestamp() > after:
            return due
    raise AssertionError("a schedule has at least one day a week")


class ScheduleTimer:
    """Keeps one schedule armed: fires, then arms for the next time."""

    def __init__(
        self,
        schedule: ScheduleConfig,
        zone: tzinfo,
        clock: Clock,
        fire: Fire,
        armed: Callable[[], None],
    ) -> None:
        self.schedule = schedule
        self.zone = zone
        self.clock = clock
        self.fire = fire
        self.armed = armed  # called after each (re)arming: `due` is the next run
        self.due: datetime | None = None
        self._timer: Timer | None = None

    def start(self) -> None:
        self._arm(self.clock.time())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.due = None

    def _arm(self, after: float) -> None:
        self.due = next_run(self.schedule, after, self.zone)
        self._timer = self.clock.call_at(self.due.timestamp(), self._ring)
        self.armed()

    def _ring(self) -> None:
        due = self.due
        assert due is not None
        log.info("schedule: %s at %s", self.schedule.run, due.isoformat(timespec="minutes"))
        self.fire(self.schedule.run, "schedule")
        self._arm(due.timestamp())


class TriggerWatch:
    """Watches one trigger's condition on every change of the devices it reads."""

    def __init__(self, trigger: TriggerConfig, view: StateView, clock: Clock, fire: Fire) -> None:
        self.trigger = trigger
        self.view = view
        self.clock = clock
        self.fire = fire
        self.holding = False
        self._found = False  # whether it has read the condition since `start`
        self._timer: Timer | None = None
        self._unwatch: Callable[[], None] | None = None

    def start(self) -> None:
        """Watch the condition from what it finds: a trigger acts on changes it sees.

        The condition is not read while a device it reads is starting (its driver has not
        reached it since it started: its state says nothing yet). The first time it is
        read, whether it holds is where the trigger starts from, not a change: a reload,
        or another hub taking the room over, does not act on the room.
        """
        self._unwatch = self.view.watch(self.trigger.when, self._check)
        self._found = False
        self._check()

    def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self.holding = False
        self._disarm()

    def _check(self) -> None:
        condition = self.trigger.when
        if any(self.view.starting(d) for d in condition.devices):
            return  # neither true nor false yet (`start`)
        holds = self.view.holds(self.trigger.when)
        if not self._found:
            self._found, self.holding = True, holds
            return
        if holds and not self.holding:
            self.holding = True
            if self.trigger.for_ > 0:
                self._timer = self.clock.call_later(self.trigger.for_, self._ring)
            else:  # not from inside the store's commit: starting a macro commits
                self._timer = asyncio.get_running_loop().call_soon(self._ring)
        elif not holds and self.holding:
            self.holding = False
            self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _ring(self) -> None:
        self._timer = None
        if self.holding and self._unwatch is not None:
            log.info("trigger: %s held; running %s", self.trigger.when, self.trigger.run)
            self.fire(self.trigger.run, "trigger")
