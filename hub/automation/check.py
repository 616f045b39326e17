"""What `avhub check` finds wrong in a room's automation beyond its shape.

The models (`hub.automation.models`) make sure each step, schedule and trigger is
well formed; this pass checks them against the room: devices, their actions and those
actions' arguments, references in conditions, macro names, and macros that call each
other in a circle. Each finding names the key path it is about; `hub.config` locates it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from drivers import DRIVERS
from drivers.actions import checking_context, validate_args
from hub.automation.conditions import Condition
from hub.automation.macros import MAX_DEPTH
from hub.automation.models import (
    ROOM_DEVICE,
    CommandStep,
    MacroConfig,
    MacroStep,
    ParallelStep,
    Step,
    WaitUntilStep,
)

if TYPE_CHECKING:
    from hub.config import RoomConfig

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at a key path; `at_key` points at the key rather than at its value.

    `error` is set when the problem is pydantic's word on a value (an action argument),
    for `hub.config` to put in its own words like any other.
    """

    loc: Loc
    message: str
    at_key: bool = False
    error: ErrorDetails | None = None


def room_findings(room_id: str, room: RoomConfig) -> Iterator[Finding]:
    """Every problem of one room's macros, schedules and triggers."""
    base: Loc = ("rooms", room_id)
    for name, macro in room.macros.items():
        yield from _steps(room, macro.steps, (*base, "macros", name, "steps"))
    cycles = list(_cycles(room.macros, base))
    yield from cycles
    if not cycles:  # a circle is as deep as it goes: said once already
        yield from _too_deep(room.macros, base)
    for i, schedule in enumerate(room.schedules):
        yield from _known_macro(room, schedule.run, (*base, "schedules", i, "run"))
    for i, trigger in enumerate(room.triggers):
        yield from _condition(room, trigger.when, (*base, "triggers", i, "when"))
        yield from _known_macro(room, trigger.run, (*base, "triggers", i, "run"))


def _steps(room: RoomConfig, steps: list[Step], loc: Loc) -> Iterator[Finding]:
    for i, step in enumerate(steps):
        here = (*loc, i)
        if isinstance(step, CommandStep):
            yield from _command(room, step, here)
        elif isinstance(step, WaitUntilStep):
            yield from _condition(room, step.wait_until, (*here, "wait_until"))
        elif isinstance(step, ParallelStep):
            yield from _steps(room, step.parallel, (*here, "parallel"))
        elif isinstance(step, MacroStep):
            yield from _known_macro(room, step.macro, (*here, "macro"))


def _command(room: RoomConfig, step: CommandStep, loc: Loc) -> Iterator[Finding]:
    if step.device == ROOM_DEVICE:
        yield Finding((*loc, "device"), "to run another macro, write `macro: <name>` as the step")
        return
    device = room.devices.get(step.device)
    if device is None:
        yield Finding((*loc, "device"), _unknown("device", step.device, room.devices))
        return
    actions = DRIVERS[device.driver].driver.actions_for(device)
    spec = actions.get(step.action)
    if spec is None:
        owner = f"{step.device} ({device.driver})"
        yield Finding((*loc, "action"), _unknown("action", step.action, actions, owner))
        return
    if spec.args is None:
        if step.args:
            yield Finding((*loc, "args"), f"{step.action} takes no arguments")
        return
    try:
        validate_args(spec.args, step.args, checking_context(device))
    except ValidationError as err:
        for error in err.errors(include_url=False):
            field = tuple(error["loc"])
            name = ".".join(str(p) for p in field)
            if error["type"] == "missing":
                yield Finding((*loc, "args"), f"{step.action} needs argument {name!r}", at_key=True)
            elif error["type"] == "extra_forbidden":
                takes = ", ".join(spec.args.model_fields)
                yield Finding(
                    (*loc, "args", *field),
                    f"{step.action} has no argument {name!r} (takes: {takes})",
                    at_key=True,
                )
            else:
                yield Finding((*loc, "args", *field), error["msg"], error=error)


def _condition(room: RoomConfig, condition: Condition, loc: Loc) -> Iterator[Finding]:
    for ref in condition.refs:
        if ref.device != ROOM_DEVICE and ref.device not in room.devices:
            message = _unknown("device", ref.device, room.devices)
            yield Finding(loc, f"{message}, in {ref}")


def _known_macro(room: RoomConfig, name: str, loc: Loc) -> Iterator[Finding]:
    if name not in room.macros:
        yield Finding(loc, _unknown("macro", name, room.macros))


def _cycles(macros: Mapping[str, MacroConfig], base: Loc) -> Iterator[Finding]:
    """Each macro call that closes a circle (a macro that ends up calling itself), once."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(name: str) -> Iterator[Finding]:
        stack.append(name)
        for loc, callee in _calls(macros[name].steps, (*base, "macros", name, "steps")):
            if callee in stack:
                circle = " → ".join([*stack[stack.index(callee) :], callee])
                yield Finding(loc, f"macros call each other in a circle: {circle}")
            elif callee in macros and callee not in done:
                yield from visit(callee)
        stack.pop()
        done.add(name)

    for name in macros:
        if name not in done:
            yield from visit(name)


def _too_deep(macros: Mapping[str, MacroConfig], base: Loc) -> Iterator[Finding]:
    """Each macro whose run calls macros nested deeper than a run allows (`MAX_DEPTH`)."""
    chains: dict[str, list[str]] = {}  # the longest chain of calls from each macro

    def chain(name: str) -> list[str]:
        if name not in chains:
            callees = [c for _, c in _calls(macros[name].steps, ()) if c in macros]
            chains[name] = [name, *max((chain(c) for c in callees), key=len, default=[])]
        return chains[name]

    for name in macros:
        calls = chain(name)
        if len(calls) - 1 > MAX_DEPTH:
            shown = " → ".join([*calls[:3], "…", calls[-1]])
            yield Finding(
                (*base, "macros", name),
                f"it calls macros {len(calls) - 1} deep ({shown}); a run goes {MAX_DEPTH} deep",
                at_key=True,
            )


def _calls(steps: list[Step], loc: Loc) -> Iterator[tuple[Loc, str]]:
    for i, step in enumerate(steps):
        if isinstance(step, MacroStep):
            yield (*loc, i, "macro"), step.macro
        elif isinstance(step, ParallelStep):
            yield from _calls(step.parallel, (*loc, i, "parallel"))


def _unknown(what: str, name: str, known: Mapping[str, object], owner: str = "this room") -> str:
    """`<owner> has no <what> 'x', did you mean 'y'? (it has: ...)`."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f", did you mean {close[0]!r}?" if close else ""
    have = ", ".join(known) or "none"
    return f"{owner} has no {what} {name!r}{hint} (it has: {have})"
