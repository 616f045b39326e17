"""The `room` device: a room's macros as its actions, its automation as its state.

Panels run a macro with `command {device: "room", action: <macro>}` and stop it with
`action: "cancel"`. One macro runs at a time; another start is refused with `busy`.
A run is a task of its own, so it goes on when the panel that started it goes away;
the command's ack comes when it ends. State keys, committed through the room's store
like any device's:

- `online`: always true.
- `running`: the macro running, or null; `by`: who started it (`command`, `schedule`,
  `trigger`); `step` (1-based) and `steps`: the top-level step running and how many
  there are; `step_text`: what that step does; `progress`: 0 to 1, commands and waits done.
- `last_run`: `{macro, by, ok, started, ended, error?}` of the last run that ended.
- `last_schedule`, `last_trigger`: the same for the last run a schedule or trigger
  started, or tried to (a refused start has `ok: false` and the refusal as `error`).
- `next_schedule`: `{macro, at}` of the soonest scheduled run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from drivers.errors import CommandError, ErrorCode
from hub.automation.clock import Clock
from hub.automation.macros import MacroRun, Outcome
from hub.automation.models import (
    CANCEL,
    ROOM_DEVICE,
    MacroConfig,
    ScheduleConfig,
    TriggerConfig,
)
from hub.automation.schedule import ScheduleTimer, TriggerWatch
from hub.automation.watch import StateView
from hub.commands import DetailedError, Target
from hub.config import RoomConfig
from hub.store import RoomStore

log = logging.getLogger("avhub.automation")

DRIVER = "room"
"""The `driver` the `room` device shows in the snapshot."""
_IDLE = {
    "running": None,
    "by": None,
    "step": None,
    "steps": None,
    "step_text": None,
    "progress": None,
}
"""The progress keys while no macro runs."""
T = TypeVar("T")
C = TypeVar("C")


def macro_schema(label: str, description: str) -> dict[str, Any]:
    """A room action's entry in the snapshot: no arguments, the button text as `title`."""
    return {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
        "title": label,
        "description": description,
    }


@dataclass(slots=True)
class _Active:
    """The run in progress."""

    run: MacroRun
    by: str
    task: asyncio.Task[list[Outcome] | DetailedError]
    began: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the task runs: a task cancelled before it starts never runs at all."""


class RoomDevice:
    """The virtual `room` device of one room; see the module docstring."""

    def __init__(
        self,
        room_id: str,
        config: RoomConfig,
        store: RoomStore,
        devices: Mapping[str, Target],
        *,
        clock: Clock,
        zone: tzinfo,
    ) -> None:
        self.device_id = ROOM_DEVICE
        self.label = f"{room_id}/{ROOM_DEVICE}"
        self.macros = config.macros
        self.store = store
        self.devices = devices
        self.clock = clock
        self.zone = zone
        self.view = StateView(store)
        self.schedules = [self._schedule(s) for s in config.schedules]
        self.triggers = [self._trigger(t) for t in config.triggers]
        self.state: dict[str, Any] = {
            "online": True,
            **_IDLE,
            "last_run": None,
            "last_schedule": None,
            "last_trigger": None,
            "next_schedule": None,
        }
        self._actions = _actions(self.macros)
        self._active: _Active | None = None
        self._started = False

    def _schedule(self, schedule: ScheduleConfig) -> ScheduleTimer:
        return ScheduleTimer(schedule, self.zone, self.clock, self.fire, self._show_next_schedule)

    def _trigger(self, trigger: TriggerConfig) -> TriggerWatch:
        return TriggerWatch(trigger, self.view, self.clock, self.fire)

    def reconfigure(self, config: RoomConfig) -> None:
        """Take a reload's macros, schedules and triggers in place.

        The macro running goes on as it was started (a changed or removed definition
        applies from the next run), the state keeps `last_run` and the rest, and a
        schedule or trigger the file did not change keeps its timer and what it has seen.
        New ones are armed as at start, except that a new trigger whose condition holds
        already waits for it to come true again: a reload does not act on the room. The
        new action list is committed as a description change.
        """
        self.macros = config.macros
        self.schedules, added_schedules, dropped_schedules = _reuse(
            self.schedules, config.schedules, lambda t: t.schedule, self._schedule
        )
        self.triggers, added_triggers, dropped_triggers = _reuse(
            self.triggers, config.triggers, lambda w: w.trigger, self._trigger
        )
        for timer in dropped_schedules:
            timer.stop()
        for watch in dropped_triggers:
            watch.stop()
        self._actions = _actions(self.macros)
        self.store.describe(ROOM_DEVICE, self._actions)
        if not self._started:
            return  # armed by `start` (in a cluster: on the hub that runs the room device)
        for timer in added_schedules:
            timer.start()
        if not self.schedules and self.state.get("next_schedule") is not None:
            self.update({"next_schedule": None})
        self._show_next_schedule()
        for watch in added_triggers:
            watch.start()

    @property
    def online(self) -> bool:
        return True

    @property
    def running(self) -> str | None:
        """The macro running now, or None."""
        return self._active.run.name if self._active is not None else None

    def describe_actions(self) -> dict[str, dict[str, Any]]:
        return self._actions

    def update(self, changes: Mapping[str, Any]) -> None:
        """Commit the keys whose value changed (never from inside a store subscriber)."""
        diff = {k: v for k, v in changes.items() if self.state.get(k) != v or k not in self.state}
        if diff:
            self.state.update(diff)
            self.store.commit(ROOM_DEVICE, diff)

    # ---- commands ------------------------------------------------------------------

    async def execute(self, action: str, raw_args: object = None) -> Any:
        """Run a macro and answer when it ends, or `cancel` the running one."""
        if action != CANCEL and action not in self.macros:
            known = ", ".join([*self.macros, CANCEL])
            raise CommandError(
                ErrorCode.UNKNOWN_ACTION, f"the room has no macro {action!r} (has: {known})"
            )
        if raw_args not in (None, {}):
            raise CommandError(ErrorCode.INVALID_ARGS, f"{action} takes no arguments")
        if action == CANCEL:
            return await self.cancel()
        task = self.begin(action, "command")
        ended = await asyncio.shield(task)  # the run goes on if the caller goes away
        if isinstance(ended, DetailedError):
            raise ended
        return {"macro": action, "steps": ended}

    def begin(self, name: str, by: str) -> asyncio.Task[list[Outcome] | DetailedError]:
        """Start macro `name` as its own task; CommandError(busy) while another runs."""
        if self._active is not None:
            running = self._active.run.macro
            title = running.label or self._active.run.name  # what the panel's button says
            raise CommandError(
                ErrorCode.BUSY, f"{title} is running: wait for it to end or cancel it"
            )
        run = MacroRun(
            name, self.macros, self.devices, self.view, self.clock, self.update, self.label
        )
        task = asyncio.create_task(self._perform(run, by), name=f"{self.label}-{name}")
        self._active = _Active(run, by, task)
        return task

    async def cancel(self) -> dict[str, Any]:
        """Stop the running macro at once; its own ack says it was cancelled."""
        active = self._active
        if active is None:
            return {"cancelled": None}
        await active.began.wait()  # within a loop turn; cancelled running, it says so
        active.task.cancel()
        await asyncio.wait([active.task])
        return {"cancelled": active.run.name, "step": active.run.step}

    async def _perform(self, run: MacroRun, by: str) -> list[Outcome] | DetailedError:
        """The whole run: progress, then the outcome (steps, or the error) and the state."""
        assert self._active is not None
        self._active.began.set()
        started = self.clock.time()
        self.update({"running": run.name, "by": by, "steps": len(run.macro.steps), "progress": 0.0})
        failure: DetailedError | None = None
        try:
            stopped = await run.perform()
        except asyncio.CancelledError:
            where = f" at step {run.step} ({run.step_text})" if run.step else ""
            failure = self._failure(run, ErrorCode.CANCELLED, f"{run.name} was cancelled{where}")
        except Exception as err:
            log.exception("%s: macro %s failed", self.label, run.name)
            failure = self._failure(run, ErrorCode.INTERNAL, f"internal error: {err!r}")
        else:
            if stopped is not None:
                error = stopped["error"]
                failure = self._failure(
                    run,
                    ErrorCode(error["code"]),
                    f"{run.name} stopped at step {error['step']} "
                    f"({_text_at(run.outcomes, error['step'])}): {error['message']}",
                    step=error["step"],
                )
        self._active = None
        self._finish(run, by, started, failure)
        return run.outcomes if failure is None else failure

    def _failure(
        self, run: MacroRun, code: ErrorCode, message: str, step: str | None = None
    ) -> DetailedError:
        place = step if step is not None else (str(run.step) if run.step else None)
        details = {"macro": run.name, "step": place, "steps": run.outcomes}
        return DetailedError(code, message, details)

    def _finish(
        self, run: MacroRun, by: str, started: float, failure: DetailedError | None
    ) -> None:
        record: dict[str, Any] = {
            "macro": run.name,
            "by": by,
            "ok": failure is None,
            "started": self._local(started),
            "ended": self._local(self.clock.time()),
        }
        if failure is not None:
            log.warning("%s: %s", self.label, failure)
            record["error"] = {
                "code": failure.code.value,
                "message": str(failure),
                "step": failure.details["step"],
            }
        changes: dict[str, Any] = {**_IDLE, "last_run": record}
        if by in ("schedule", "trigger"):
            changes[f"last_{by}"] = record
        self.update(changes)

    # ---- schedules and triggers ----------------------------------------------------

    def fire(self, name: str, by: str) -> None:
        """Start `name` for a schedule or trigger; a refusal is logged and shown in the state."""
        try:
            self.begin(name, by)
        except CommandError as err:
            log.warning("%s: %s could not run %s: %s", self.label, by, name, err)
            now = self._local(self.clock.time())
            error = {"code": err.code.value, "message": str(err), "step": None}
            record = {"macro": name, "by": by, "ok": False, "started": now, "ended": now}
            self.update({f"last_{by}": {**record, "error": error}})

    def _show_next_schedule(self) -> None:
        due = [(s.due, s.schedule.run) for s in self.schedules if s.due is not None]
        if self._started and due:
            at, macro = min(due)
            self.update({"next_schedule": {"macro": macro, "at": at.isoformat(timespec="seconds")}})

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Arm the schedules and start watching the triggers' conditions.

        The state may say a macro runs (with `store: redis://`, it ran on a hub that went
        away; none runs here yet). A trigger starts from what it finds
        (`TriggerWatch.start`): the hub starting, or taking the room over from another,
        does not act on the room.
        """
        self.update(_IDLE)
        for schedule in self.schedules:
            schedule.start()
        self._started = True
        self._show_next_schedule()
        for trigger in self.triggers:
            trigger.start()

    async def stop(self) -> None:
        """Disarm everything and cancel the running macro."""
        self._started = False
        for schedule in self.schedules:
            schedule.stop()
        for trigger in self.triggers:
            trigger.stop()
        if self._active is not None:
            await self.cancel()

    def _local(self, when: float) -> str:
        return datetime.fromtimestamp(when, self.zone).isoformat(timespec="seconds")


def _actions(macros: Mapping[str, MacroConfig]) -> dict[str, dict[str, Any]]:
    """The `room` device's actions: one per macro, and `cancel`."""
    actions = {
        name: macro_schema(macro.label or name, f"run the macro {name}")
        for name, macro in macros.items()
    }
    actions[CANCEL] = macro_schema("Cancel", "stop the running macro")
    return actions


def _reuse(
    running: list[T], wanted: Sequence[C], config: Callable[[T], C], make: Callable[[C], T]
) -> tuple[list[T], list[T], list[T]]:
    """The timers or watches for `wanted`, each a running one of the same config (each used
    once) or one `make` builds; and of those, the new ones, and the running ones left over."""
    free = list(running)
    items: list[T] = []
    new: list[T] = []
    for entry in wanted:
        item = next((i for i in free if config(i) == entry), None)
        if item is None:
            item = make(entry)
            new.append(item)
        else:
            free.remove(item)
        items.append(item)
    return items, new, free


def _text_at(outcomes: list[Outcome], place: str) -> str:
    """The `text` of the outcome at a dotted place, as far as the outcomes reach."""
    text = ""
    level = outcomes
    for part in place.split("."):
        index = int(part) - 1
        if not 0 <= index < len(level):
            break
        text = level[index]["text"]
        level = level[index].get("steps", [])
    return text
