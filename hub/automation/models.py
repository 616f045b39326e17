"""The automation sections of a room in the deployment file, as typed models.

```yaml
macros:
  system_on:
    label: System on
    steps:
      - {device: projector, action: power_on}
      - {wait_until: projector.power == on, timeout: 60s}
      - parallel:
          - {device: matrix, action: route, args: {input: 1, output: 1}}
          - {macro: audio_on}
      - wait: 500ms
    on_error: stop
schedules:
  - {at: "22:00", days: [mon, tue, wed, thu, fri], run: system_off}
triggers:
  - {when: "projector.power == on and display.power == off", for: 2m, run: system_off}
```

Only the shape is checked here; `hub.automation.check` checks the names against the room.
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    field_validator,
)

from drivers.config import Duration
from hub.automation.conditions import Condition, ConditionError, parse_condition

ROOM_DEVICE = "room"
"""The id of the virtual device that carries a room's macros."""
CANCEL = "cancel"
"""The `room` device's action that stops the running macro."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class OnError(StrEnum):
    """What a failing step does to its macro."""

    STOP = "stop"
    CONTINUE = "continue"


def _macro_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"macro name {value!r} must be 1-64 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit (it appears in URLs)"
        )
    if value == CANCEL:
        raise ValueError(f"{CANCEL!r} is the room device's own action: name the macro otherwise")
    return value


MacroName = Annotated[str, AfterValidator(_macro_name)]


def _condition(value: object) -> Condition:
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ValueError(
            "expected a condition as text, like 'projector.power == on' (quote it in YAML)"
        )
    try:
        return parse_condition(value)
    except ConditionError as err:
        raise ValueError(f"cannot read the condition: {err}") from None


ConditionField = Annotated[Condition, PlainValidator(_condition), PlainSerializer(str)]


def _time_of_day(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write the time in quotes, like "22:00" (unquoted, YAML reads a number)')
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*", value)
        if match is None:
            raise ValueError(f'expected a time like "22:00" or "06:30:15", got {value!r}')
        hour, minute, second = (int(g or 0) for g in match.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59:59)")
        return time(hour, minute, second)
    return value


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day), PlainSerializer(lambda t: t.isoformat())]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---------------------------------------------------------------------------- steps


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_error: OnError | None = Field(
        None, description="stop or continue the macro when this step fails; default: the macro's"
    )


class CommandStep(_Step):
    """A command to a device of the room, as a panel would send it."""

    device: str = Field(min_length=1, description="a device id of this room")
    action: str = Field(min_length=1, description="one of the device's actions")
    args: dict[str, Any] = Field(default_factory=dict, description="the action's arguments")

    @field_validator("args", mode="before")
    @classmethod
    def _null_args(cls, value: object) -> object:
        return {} if value is None else value

    def __str__(self) -> str:
        shown = ", ".join(f"{k}: {v}" for k, v in self.args.items())
        return f"{self.device}.{self.action}" + (f" ({shown})" if shown else "")


class WaitStep(_Step):
    """A pause."""

    wait: Duration = Field(description="how long, like 500ms or 2s")

    def __str__(self) -> str:
        return f"wait {_seconds(self.wait)}"


class WaitUntilStep(_Step):
    """Wait for a condition on the room's state; fails with `timeout` when it does not come."""

    wait_until: ConditionField = Field(description="a condition, like 'projector.power == on'")
    timeout: Duration = Field(gt=0, description="longest wait, like 60s")

    def __str__(self) -> str:
        return f"wait until {self.wait_until} (at most {_seconds(self.timeout)})"


class ParallelStep(_Step):
    """Steps run together; the step ends when all have."""

    parallel: list[Step] = Field(min_length=1, description="the steps to run together")

    def __str__(self) -> str:
        return f"{len(self.parallel)} steps together"


class MacroStep(_Step):
    """Another macro of the room, run as one step of this one."""

    macro: str = Field(min_length=1, description="a macro of this room")

    def __str__(self) -> str:
        return f"macro {self.macro}"


# Each kind's tag is not a key of the file, so problems inside a step are located by keys.
_STEP_KEYS = {
    "device": "command-step",
    "wait_until": "wait-until-step",
    "wait": "wait-step",
    "parallel": "parallel-step",
    "macro": "macro-step",
}


def _step_kind(value: Any) -> str | None:
    """Which kind of step a mapping is, by its first kind-naming key (the rest: unknown keys)."""
    if isinstance(value, dict):
        return next((kind for key, kind in _STEP_KEYS.items() if key in value), None)
    if isinstance(value, _Step):
        return next(kind for key, kind in _STEP_KEYS.items() if key in type(value).model_fields)
    return None


Step = Annotated[
    Union[  # noqa: UP007 - Tag needs the Annotated members
        Annotated[CommandStep, Tag("command-step")],
        Annotated[WaitStep, Tag("wait-step")],
        Annotated[WaitUntilStep, Tag("wait-until-step")],
        Annotated[ParallelStep, Tag("parallel-step")],
        Annotated[MacroStep, Tag("macro-step")],
    ],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is a mapping with one of: device (with action and args), "
        "wait, wait_until (with timeout), parallel, macro",
    ),
]
ParallelStep.model_rebuild()


class MacroConfig(BaseModel):
    """One macro: a label for its button and the steps it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str | None = Field(None, min_length=1, description="button text; default: the name")
    steps: list[Step] = Field(min_length=1, description="what it does, in order")
    on_error: OnError = Field(OnError.STOP, description="a failing step stops it, or it goes on")


class ScheduleConfig(BaseModel):
    """Run a macro at a time of day, on some days, in the hub's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: TimeOfDay = Field(description='time of day, like "22:00" (quoted)')
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS), description="mon ... sun; default every day"
    )
    run: str = Field(min_length=1, description="a macro of this room")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[Weekday]) -> list[Weekday]:
        if not value:
            raise ValueError("give at least one day, or leave days out for every day")
        if len(set(value)) != len(value):
            raise ValueError("a day is listed twice")
        return value


class TriggerConfig(BaseModel):
    """Run a macro when a condition has held for a while."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    when: ConditionField = Field(description="a condition, like 'projector.power == on'")
    for_: Duration = Field(
        0.0, alias="for", description="how long it must hold without a break first"
    )
    run: str = Field(min_length=1, description="a macro of this room")


def _seconds(value: float) -> str:
    """A duration as written in config: 500ms, 2s, 1.5s, 2m."""
    if value < 1 and value * 1000 == int(value * 1000):
        return f"{int(value * 1000)}ms"
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)}m"
    return f"{value:g}s"
