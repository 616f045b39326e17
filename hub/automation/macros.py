"""Running one macro: its steps in order against the room's devices, every outcome kept.

Commands go through `run_command`, so through each device's own queue, lockouts and
coalescing exactly as a panel's would. Each step's outcome is a mapping:

    {"step": "4.2", "text": "dsp.set_mute (control: program, mute: False)", "ok": true,
     "result": ..., "started": <unix s>, "ended": <unix s>}

`step` is the step's place: 1-based, dotted into `parallel` groups and called macros.
A failed step has `error: {code, message, step}` instead of `result`, where `step` is
the place of the innermost step that failed; a group or a called macro has `steps`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import ErrorCode
from hub.automation.clock import Clock, sleep
from hub.automation.models import (
    CommandStep,
    MacroConfig,
    MacroStep,
    OnError,
    ParallelStep,
    Step,
    WaitStep,
    WaitUntilStep,
)
from hub.automation.watch import StateView
from hub.commands import Target, run_command

Outcome = dict[str, Any]
Publish = Callable[[dict[str, Any]], None]

MAX_DEPTH = 16
"""Macros calling macros deeper than this fail (`avhub check` refuses circles anyway)."""


def leaf_count(steps: list[Step], macros: Mapping[str, MacroConfig], depth: int = 0) -> int:
    """How many commands, waits and wait_untils running `steps` takes (progress counts them)."""
    total = 0
    for step in steps:
        if isinstance(step, ParallelStep):
            total += leaf_count(step.parallel, macros, depth)
        elif isinstance(step, MacroStep) and step.macro in macros and depth < MAX_DEPTH:
            total += leaf_count(macros[step.macro].steps, macros, depth + 1)
        else:
            total += 1
    return total


class MacroRun:
    """One run of one macro. `perform` runs it; `outcomes` fill in as top-level steps end.

    `publish` receives the `room` device's progress keys: `step` and `step_text` when a
    top-level step starts, `progress` (0 to 1) when a command or wait ends.
    """

    def __init__(
        self,
        name: str,
        macros: Mapping[str, MacroConfig],
        devices: Mapping[str, Target],
        view: StateView,
        clock: Clock,
        publish: Publish,
        where: str,
    ) -> None:
        self.name = name
        self.macro = macros[name]
        self.macros = macros
        self.devices = devices
        self.view = view
        self.clock = clock
        self.publish = publish
        self.where = where
        self.outcomes: list[Outcome] = []
        self.step = 0  # the top-level step running, 1-based; 0 before the first
        self.total = max(leaf_count(self.macro.steps, macros), 1)
        self.done = 0

    @property
    def step_text(self) -> str:
        return str(self.macro.steps[self.step - 1]) if self.step else ""

    async def perform(self) -> Outcome | None:
        """Run every step; the outcome of the step that stopped the macro, or None."""
        return await self._steps(self.macro.steps, self.macro.on_error, "", self.outcomes, 0)

    async def _steps(
        self, steps: list[Step], on_error: OnError, prefix: str, into: list[Outcome], depth: int
    ) -> Outcome | None:
        for i, step in enumerate(steps):
            if depth == 0:
                self.step = i + 1
                self.publish({"step": self.step, "step_text": str(step)})
            outcome = await self._step(step, f"{prefix}{i + 1}", on_error, depth)
            into.append(outcome)
            if not outcome["ok"] and (step.on_error or on_error) is OnError.STOP:
                return outcome
        return None

    async def _step(self, step: Step, place: str, on_error: OnError, depth: int) -> Outcome:
        outcome: Outcome = {"step": place, "text": str(step)}
        started = self.clock.time()
        if isinstance(step, CommandStep):
            data = {"device": step.device, "action": step.action, "args": step.args}
            reply = await run_command(self.devices, data, self.where)
            if reply["ok"]:
                outcome.update(ok=True, result=reply["result"])
            else:
                outcome.update(ok=False, error={**reply["error"], "step": place})
            self._leaf_done()
        elif isinstance(step, WaitStep):
            await sleep(self.clock, step.wait)
            outcome.update(ok=True, result=None)
            self._leaf_done()
        elif isinstance(step, WaitUntilStep):
            if await self.view.wait(step.wait_until, step.timeout, self.clock):
                outcome.update(ok=True, result=None)
            else:
                message = f"{step.wait_until} did not come true within {step.timeout:g}s"
                error = {"code": ErrorCode.TIMEOUT.value, "message": message, "step": place}
                outcome.update(ok=False, error=error)
            self._leaf_done()
        elif isinstance(step, ParallelStep):
            children = await asyncio.gather(
                *(
                    self._step(child, f"{place}.{j + 1}", on_error, depth)
                    for j, child in enumerate(step.parallel)
                )
            )
            failed = next(
                (
                    outcome
                    for child, outcome in zip(step.parallel, children, strict=True)
                    if not outcome["ok"] and (child.on_error or on_error) is OnError.STOP
                ),
                None,
            )
            outcome.update(ok=failed is None, steps=list(children))
            if failed is not None:
                outcome["error"] = failed["error"]
        else:
            outcome.update(await self._call(step, place, depth))
        outcome.update(started=round(started, 3), ended=round(self.clock.time(), 3))
        return outcome

    async def _call(self, step: MacroStep, place: str, depth: int) -> Outcome:
        """A `macro:` step: the called macro's steps, with its own on_error."""
        macro = self.macros.get(step.macro)
        if macro is None or depth >= MAX_DEPTH:
            why = "no such macro" if macro is None else f"macros nest deeper than {MAX_DEPTH}"
            self._leaf_done()
            error = {"code": ErrorCode.INTERNAL.value, "message": why, "step": place}
            return {"ok": False, "error": error}
        inner: list[Outcome] = []
        failed = await self._steps(macro.steps, macro.on_error, f"{place}.", inner, depth + 1)
        if failed is None:
            return {"ok": True, "steps": inner}
        return {"ok": False, "steps": inner, "error": failed["error"]}

    def _leaf_done(self) -> None:
        self.done += 1
        self.publish({"progress": round(min(self.done / self.total, 1.0), 3)})
