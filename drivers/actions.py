"""Actions as data: a name, an argument model, and how commands for it queue."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

from drivers.errors import CommandError, ErrorCode

Coalesce = str | Callable[[Any], Hashable] | None
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_ACTION_ATTR = "__avhub_action__"


class Args(BaseModel):
    """Base for action argument models: unknown keys are errors, and values must have the
    JSON type the action's schema gives (`"mute": "yes"` is not a boolean, `"level": "5"`
    not a number), as the schema panels read says."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


A = TypeVar("A", bound=Args)


def validate_args(model: type[A], raw: object, context: dict[str, object] | None = None) -> A:
    """`raw` (a panel's JSON args, a macro step's) validated as the JSON it is: strict, so
    each value must have its schema's JSON type, an enum member given by its value.
    ValidationError when it does not."""
    try:
        text = json.dumps(raw)
    except (TypeError, ValueError):  # not JSON (a YAML date): its Python type is refused
        return model.model_validate(raw, context=context)
    return model.model_validate_json(text, context=context)


def checking_context(config: object) -> dict[str, object]:
    """The validation context of arguments checked ahead of time against a device's config.

    `avhub check` validates a macro's arguments with it, so an argument model can refuse
    what the config already rules out (a control the device does not have, an input name
    it does not know). Commands from panels are validated without it.
    """
    return {"config": config}


def config_in(info: ValidationInfo) -> Any:
    """The device config of a `checking_context`, or None (a command at run time)."""
    context = info.context
    return context.get("config") if isinstance(context, dict) else None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action a driver offers.

    `coalesce` names the target a command sets ("input", or a function of the args
    such as the control name): while a command for the same target still waits in
    the queue, a newer one replaces its arguments instead of queueing behind it.
    `lockout` holds (or refuses) the command while the device is in a power transition.
    `repeat` False marks an action whose effect adds up (a step, a toggle): once its request
    is written it is never sent again, since a lost reply does not say it was not applied.
    """

    name: str
    method: str
    args: type[Args] | None
    coalesce: Coalesce
    lockout: bool
    description: str
    repeat: bool = True

    def parse(self, raw: object) -> Args | None:
        """Validate panel-supplied arguments; CommandError(invalid_args) when they are wrong."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise CommandError(
                ErrorCode.INVALID_ARGS, f"args must be an object, got {type(raw).__name__}"
            )
        if self.args is None:
            if raw:
                raise CommandError(
                    ErrorCode.INVALID_ARGS, f"{self.name} takes no arguments, got {sorted(raw)}"
                )
            return None
        try:
            return validate_args(self.args, raw)
        except ValidationError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, _describe(err)) from None

    def key(self, args: Args | None) -> Hashable | None:
        """The coalescing key for these arguments, or None when commands never merge."""
        if self.coalesce is None:
            return None
        if isinstance(self.coalesce, str):
            return ("set", self.coalesce)
        return ("set", self.coalesce(args))

    def schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments, published in the room snapshot."""
        if self.args is None:
            return {"type": "object", "properties": {}, "additionalProperties": False}
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        if self.description:
            schema["description"] = self.description
        return schema


def _describe(err: ValidationError) -> str:
    parts = []
    for item in err.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "args"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def action(
    args: type[Args] | None = None,
    *,
    coalesce: Coalesce = None,
    lockout: bool = False,
    name: str | None = None,
    description: str = "",
    repeat: bool = True,
) -> Callable[[F], F]:
    """Mark a driver coroutine method as a panel action (`repeat`: see `ActionSpec`)."""

    def mark(fn: F) -> F:
        spec = ActionSpec(
            name or fn.__name__, fn.__name__, args, coalesce, lockout, description, repeat
        )
        setattr(fn, _ACTION_ATTR, spec)
        return fn

    return mark


def collect_actions(cls: type) -> dict[str, ActionSpec]:
    """Every action declared on `cls` and its bases, subclasses overriding by name."""
    found: dict[str, ActionSpec] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            spec = getattr(value, _ACTION_ATTR, None)
            if isinstance(spec, ActionSpec):
                found[spec.name] = spec
    return found
