"""A generic device: its protocol described in YAML, checked and compiled when the file loads.

Every regular expression is compiled and every template parsed by the validators
below, so `avhub check` reports a bad one at its own line; what the driver needs per
request (bytes of constant requests, argument models, action schemas) is built once
per distinct definition (`Protocol.compiled`) and shared by every device that uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
    model_validator,
)

from drivers.actions import ActionSpec, Args
from drivers.config import DeviceConfig, Duration
from drivers.errors import ErrorCode, ProtocolError
from drivers.generic.codec import (
    DEFAULT_FRAMING,
    Encoding,
    Framing,
    Pattern,
    Strict,
    Template,
    TemplateField,
    Wire,
    check_template,
)

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TRUE = frozenset({"1", "on", "true", "yes"})
_FALSE = frozenset({"0", "off", "false", "no"})
_SHARED_MAX = 256  # distinct definitions kept compiled for sharing

ValueType = Literal["str", "int", "float", "bool", "hex"]


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be a lowercase letter, then letters, digits or _")
    return value


# ---------------------------------------------------------------------------- parsing replies


class Value(Strict):
    """How one state key gets its value: a group (or argument), typed and mapped, or a constant."""

    group: str | None = Field(None, description="named group of the regex, or action argument")
    value: Any = Field(None, description="a constant value (instead of group)")
    type: ValueType = Field("str", description="str, int, float, bool (1/on/true/yes) or hex")
    map: dict[str, Any] | None = Field(None, description="device text → state value")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"group": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        if (self.group is None) == ("value" not in self.model_fields_set):
            raise ValueError("give a group (or argument) or a constant value, one of them")
        return self

    def convert(self, raw: Any) -> Any:
        """The state value for `raw` (group text, or an argument's value)."""
        if self.group is None:
            return self.value
        if raw is None:
            return None
        if self.map is not None:
            try:
                return self.map[str(raw)]
            except KeyError:
                raise ProtocolError(f"{raw!r} is none of {sorted(self.map)}") from None
        if not isinstance(raw, str):
            return raw  # an argument: already typed
        try:
            if self.type == "int":
                return int(raw)
            if self.type == "float":
                return float(raw)
            if self.type == "hex":
                return int(raw, 16)
        except ValueError:
            raise ProtocolError(f"{raw!r} is not a {self.type}") from None
        if self.type == "bool":
            text = raw.strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ProtocolError(f"{raw!r} is not a bool (1/0, on/off, true/false, yes/no)")
        return raw


SetMap = dict[str, Value]


@dataclass(frozen=True, slots=True)
class _Target:
    key: Template
    sub: Template | None  # `levels.{control}`: one entry of the mapping `levels`
    value: Value


class Setter:
    """A compiled `set:` map (or, without one, every named group to the key of its name)."""

    __slots__ = ("_targets",)

    def __init__(self, targets: list[_Target]) -> None:
        self._targets = tuple(targets)

    @classmethod
    def build(cls, spec: SetMap | None, pattern: re.Pattern[str] | None) -> Setter:
        if spec is None:
            groups = list(pattern.groupindex) if pattern is not None else []
            return cls([_Target(Template.parse(g), None, Value(group=g)) for g in groups])
        targets = []
        for key, value in spec.items():
            top, dot, sub = key.partition(".")
            targets.append(
                _Target(Template.parse(top), Template.parse(sub) if dot else None, value)
            )
        return cls(targets)

    def __bool__(self) -> bool:
        return bool(self._targets)

    def changes(self, values: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
        """The state changes for these group/argument values; ProtocolError for bad text."""
        out: dict[str, Any] = {}
        for target in self._targets:
            spec = target.value
            raw = values.get(spec.group) if spec.group is not None else None
            try:
                value = spec.convert(raw)
            except ProtocolError as err:
                raise ProtocolError(f"{spec.group}: {err}") from None
            key = target.key.render(values)
            if target.sub is None:
                out[key] = value
                continue
            if key not in out:
                old = state.get(key)
                out[key] = dict(old) if isinstance(old, dict) else {}
            out[key][target.sub.render(values)] = value
        return out

    def names(self) -> set[str]:
        """Every group or argument name the map reads."""
        found: set[str] = set()
        for target in self._targets:
            found |= target.key.names | (target.sub.names if target.sub else set())
            if target.value.group is not None:
                found.add(target.value.group)
        return found


def _groups(info: ValidationInfo, field: str = "match") -> set[str]:
    pattern = info.data.get(field)
    return set(pattern.groupindex) if isinstance(pattern, re.Pattern) else set()


def _check_set(spec: SetMap | None, known: set[str], where: str) -> SetMap | None:
    """ValueError when a `set:` map reads a name that is not a group (or argument)."""
    if spec is None:
        return None
    for key in spec:
        top, dot, _ = key.partition(".")
        if dot and not Template.parse(top).constant:
            raise ValueError(f"key {key!r}: only the part after the dot may name a value")
    unknown = sorted(Setter.build(spec, None).names() - known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise ValueError(f"set: {', '.join(unknown)} is not a {where} (known: {have})")
    return spec


def _no_fields(template: Template | None, known: Mapping[str, Any]) -> Template | None:
    if template is not None:
        check_template(template, known, "values")
    return template


def _constant(template: Template) -> Template:
    """A template of a poll or keep-alive: nothing to fill in (write braces as {{ }})."""
    if not template.constant:
        raise ValueError(
            f"{template.text!r}: a poll has no values to fill in (write {{{{ for a brace)"
        )
    return template


# ---------------------------------------------------------------------------- exchanges


class _Parsed(Strict):
    """A line found by `match` whose named groups `set` turns into state."""

    match: Pattern | None = Field(None, description="regex the line matches")
    set: SetMap | None = Field(None, description="state key → group; omitted: groups by name")

    @field_validator("set")
    @classmethod
    def _set(cls, value: SetMap | None, info: ValidationInfo) -> SetMap | None:
        return _check_set(value, _groups(info), "named group of match")

    @cached_property
    def setter(self) -> Setter:
        return Setter.build(self.set, self.match)


class Request(_Parsed):
    """One request of a poll: what to send, the reply it expects (`match`; omitted: none)."""

    send: TemplateField = Field(description="text (or hex) to send; the terminator is added")

    @field_validator("send")
    @classmethod
    def _send(cls, value: Template) -> Template:
        return _constant(value)


class Poll(Strict):
    """A poll group: requests sent together every `every` (default: the device's poll_interval)."""

    every: Duration | None = Field(None, gt=0)
    requests: list[Request] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: Any) -> Any:
        """`{send, match, set, every}` is a poll of one request."""
        if isinstance(data, dict) and "requests" not in data and "send" in data:
            rest = {k: v for k, v in data.items() if k != "every"}
            return {**({"every": data["every"]} if "every" in data else {}), "requests": [rest]}
        return data


class Unsolicited(_Parsed):
    """A message the device sends on its own: the state it sets, the polls it triggers."""

    match: Pattern
    refresh: list[str] = Field(default_factory=list, description="poll names to run now")


class LoginStep(_Parsed):
    """A step after connecting: send something, and/or wait for a line (a greeting, a prompt)."""

    send: TemplateField | None = Field(None, description="may use {password}")
    fail: Pattern | None = Field(None, description="a line meaning the login was refused")

    @field_validator("send")
    @classmethod
    def _send(cls, value: Template | None) -> Template | None:
        return _no_fields(value, {"password": ""})

    @model_validator(mode="after")
    def _something(self) -> LoginStep:
        if self.send is None and self.match is None:
            raise ValueError("a login step needs send, match or both")
        if self.fail is not None and self.match is None:
            raise ValueError("fail needs a match (the line that means success)")
        return self


class ErrorReply(Strict):
    """A reply meaning "no": fails the request with a device error."""

    match: Pattern
    code: Literal["device_error", "busy", "invalid_args"] = "device_error"
    message: TemplateField | None = Field(None, description="may name groups of match")

    @field_validator("message")
    @classmethod
    def _message(cls, value: Template | None, info: ValidationInfo) -> Template | None:
        return _no_fields(value, dict.fromkeys(_groups(info), ""))

    @property
    def error_code(self) -> ErrorCode:
        return ErrorCode(self.code)


class Keepalive(Strict):
    """Something sent every `every` so the device (or a NAT) keeps the connection."""

    send: TemplateField
    every: Duration = Field(gt=0)
    match: Pattern | None = Field(None, description="the reply; omitted: none expected")

    @field_validator("send")
    @classmethod
    def _send(cls, value: Template) -> Template:
        return _constant(value)


# ---------------------------------------------------------------------------- actions

ArgType = Literal["string", "int", "float", "bool", "enum"]
_PY_TYPES: dict[str, Any] = {"string": str, "int": int, "float": float, "bool": bool}
_SAMPLES: dict[str, Any] = {"string": "a", "int": 0, "float": 0.0, "bool": False}


class Argument(Strict):
    """One typed argument of an action; `choices` (enum) and `wire` (bool) map it to device text."""

    type: ArgType
    description: str = ""
    min: float | None = Field(None, description="lowest number (string: shortest length)")
    max: float | None = Field(None, description="highest number (string: longest length)")
    choices: list[str] | dict[str, str | int] | None = Field(
        None, description="enum: the values, or value → what to send"
    )
    wire: dict[Literal["true", "false"], str | int] | None = Field(
        None, description="bool: what to send for true and false (default 1 and 0)"
    )
    default: Any = Field(None, description="makes the argument optional")

    @model_validator(mode="after")
    def _consistent(self) -> Argument:
        if (self.type == "enum") != (self.choices is not None):
            raise ValueError("choices are for (and required by) type enum")
        if self.type == "enum" and not self.choices:
            raise ValueError("an enum needs at least one choice")
        if self.wire is not None and (self.type != "bool" or len(self.wire) != 2):
            raise ValueError("wire is for type bool, with both true and false")
        if (self.min is not None or self.max is not None) and self.type not in (
            "int",
            "float",
            "string",
        ):
            raise ValueError(f"min and max are for int, float and string, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if "default" in self.model_fields_set:
            try:
                TypeAdapter(self.annotation()).validate_python(self.default)
            except ValidationError as err:
                raise ValueError(f"default {self.default!r}: {err.errors()[0]['msg']}") from None
        return self

    def annotation(self) -> Any:
        """The pydantic type of the argument, constraints included."""
        if self.type == "enum":
            assert self.choices is not None
            return Literal[tuple(self.choices)]
        bounds: dict[str, Any] = {}
        if self.type == "string":
            bounds = {"min_length": _int(self.min), "max_length": _int(self.max)}
        elif self.type == "int":
            bounds = {"ge": _int(self.min), "le": _int(self.max)}
        elif self.type == "float":
            bounds = {"ge": self.min, "le": self.max}
        return Annotated[_PY_TYPES[self.type], Field(**bounds)]

    def field(self) -> tuple[Any, Any]:
        """(type, FieldInfo) for `create_model`."""
        required = "default" not in self.model_fields_set
        default = ... if required else self.default
        return (self.annotation(), Field(default, description=self.description or None))

    def sample(self) -> Any:
        """Some valid value, for checking templates at load."""
        if self.choices is not None:
            return next(iter(self.choices))
        return _SAMPLES[self.type]

    def to_wire(self, value: Any) -> Any:
        """The value as a template formats it: enum mapped, bool as `wire` (default 1/0)."""
        if isinstance(self.choices, dict):
            return self.choices[value]
        if isinstance(value, bool):
            if self.wire is not None:
                return self.wire["true" if value else "false"]
            return int(value)
        return value


def _wire_samples(args: Mapping[str, Argument]) -> dict[str, Any]:
    return {name: arg.to_wire(arg.sample()) for name, arg in args.items()}


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class Action(Strict):
    """A panel action: typed arguments rendered into what to send, the reply it expects."""

    description: str = ""
    args: dict[str, Argument] = Field(default_factory=dict)
    send: TemplateField = Field(description="may name the arguments: '#ROUTE 1,{output},{input}'")
    match: Pattern | None = Field(None, description="regex the reply matches; omitted: no reply")
    set: SetMap | None = Field(None, description="state from reply groups and arguments")
    refresh: list[str] = Field(default_factory=list, description="poll names to run after it")
    coalesce: bool | list[str] = Field(
        False,
        description="true: a newer command replaces a queued one; a list of arguments: only "
        "when those are equal (the same output, say)",
    )
    lockout: bool = Field(False, description="hold (or refuse) while power is warming/cooling")
    repeat: bool = Field(
        True,
        description="false for an action whose effect adds up (a step, a toggle): once sent, "
        "never sent again on a lost reply",
    )

    @field_validator("args")
    @classmethod
    def _arg_names(cls, value: dict[str, Argument]) -> dict[str, Argument]:
        for name in value:
            _name(name, "argument")
        return value

    @field_validator("send")
    @classmethod
    def _send(cls, value: Template, info: ValidationInfo) -> Template:
        args = info.data.get("args")
        if args is None:  # the arguments have problems of their own
            return value
        check_template(value, _wire_samples(args), "argument")
        return value

    @field_validator("set")
    @classmethod
    def _set(cls, value: SetMap | None, info: ValidationInfo) -> SetMap | None:
        known = _groups(info) | set(info.data.get("args") or {})
        return _check_set(value, known, "named group of match or an argument")

    @field_validator("coalesce")
    @classmethod
    def _coalesce(cls, value: bool | list[str], info: ValidationInfo) -> bool | list[str]:
        args = info.data.get("args") or {}
        if isinstance(value, list) and (unknown := [n for n in value if n not in args]):
            raise ValueError(f"coalesce names unknown arguments {unknown}")
        return value

    @cached_property
    def setter(self) -> Setter:
        return Setter.build(self.set, self.match) if self.set or self.match else Setter([])

    def spec(self, name: str) -> ActionSpec:
        """The ActionSpec the driver base validates and queues commands by."""
        model: type[Args] | None = None
        if self.args:
            fields = {arg: spec.field() for arg, spec in self.args.items()}
            model = create_model(f"{name}_args", __base__=Args, **fields)  # type: ignore[call-overload]
        coalesce: str | Callable[[Any], Hashable] | None = None
        if self.coalesce is True:
            coalesce = name
        elif isinstance(self.coalesce, list) and self.coalesce:
            keys = tuple(self.coalesce)
            coalesce = lambda args: (name, *(getattr(args, k) for k in keys))  # noqa: E731
        return ActionSpec(
            name, "", model, coalesce, self.lockout, self.description, repeat=self.repeat
        )


# ---------------------------------------------------------------------------- the protocol


class Protocol(Strict):
    """A whole protocol: framing, login, keep-alive, polls, actions, unsolicited messages."""

    encoding: Encoding = Field("ascii", description="ascii, latin-1, utf-8, or hex (binary)")
    framing: Framing = Field(DEFAULT_FRAMING)
    login: list[LoginStep] = Field(default_factory=list, description="steps after connecting")
    keepalive: Keepalive | None = None
    errors: list[ErrorReply] = Field(default_factory=list, description="replies meaning no")
    ignore: list[Pattern] = Field(default_factory=list, description="lines to drop silently")
    polls: dict[str, Poll] = Field(default_factory=dict)
    actions: dict[str, Action] = Field(default_factory=dict)
    unsolicited: list[Unsolicited] = Field(default_factory=list)

    @field_validator("framing")
    @classmethod
    def _framing(cls, value: Framing, info: ValidationInfo) -> Framing:
        Wire(info.data.get("encoding", "ascii"), value)  # ValueError when the encoding cannot
        return value

    @field_validator("polls", "actions")
    @classmethod
    def _names(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for name in value:
            _name(name, "a poll" if info.field_name == "polls" else "an action")
        return value

    @model_validator(mode="after")
    def _compile(self) -> Protocol:
        refreshes = [r for a in self.actions.values() for r in a.refresh]
        refreshes += [r for u in self.unsolicited for r in u.refresh]
        if self.keepalive is not None and "keepalive" in self.polls:
            raise ValueError("a poll named keepalive: the name is the keep-alive's; rename it")
        if unknown := sorted(set(refreshes) - set(self.polls)):
            raise ValueError(f"refresh names polls that do not exist: {', '.join(unknown)}")
        self._check_bytes()
        _ = self.compiled  # argument models are built now, not at the first command
        return self

    def _check_bytes(self) -> None:
        """Every template renders to bytes the encoding can carry (hex digits, say)."""
        wire = Wire(self.encoding, self.framing)
        checks: list[tuple[str, Template, dict[str, Any]]] = []
        for name, action in self.actions.items():
            checks.append((f"actions.{name}.send", action.send, _wire_samples(action.args)))
        for name, poll in self.polls.items():
            checks += [(f"polls.{name}.send", r.send, {}) for r in poll.requests]
        checks += [
            (f"login[{i}].send", s.send, {"password": ""})
            for i, s in enumerate(self.login)
            if s.send
        ]
        if self.keepalive is not None:
            checks.append(("keepalive.send", self.keepalive.send, {}))
        for where, template, samples in checks:
            try:
                wire.encode(template.render(samples))
            except (ProtocolError, ValueError, KeyError) as err:
                raise ValueError(f"{where}: {err}") from None

    @cached_property
    def compiled(self) -> Compiled:
        return Compiled(self)


class Compiled:
    """What devices of one definition share: the wire, constant request bytes, action specs."""

    def __init__(self, protocol: Protocol) -> None:
        self.wire = Wire(protocol.encoding, protocol.framing)
        self.specs = {name: action.spec(name) for name, action in protocol.actions.items()}
        self._schemas: dict[str, dict[str, Any]] | None = None

    def request_bytes(self, template: Template, values: Mapping[str, Any] | None = None) -> bytes:
        """`template` rendered and encoded, with the terminator."""
        return self.wire.encode(template.render(values or {})) + self.wire.terminator

    @property
    def schemas(self) -> dict[str, dict[str, Any]]:
        """Action name → argument schema, built once for every device of the definition."""
        if self._schemas is None:
            self._schemas = {name: spec.schema() for name, spec in self.specs.items()}
        return self._schemas


_SHARED: dict[str, Protocol] = {}


class GenericConfig(DeviceConfig):
    """A device whose protocol is described in the deployment file (`protocol:`).

    Devices with the same protocol text (a YAML anchor, say) share one compiled
    definition: its patterns, argument models and action schemas.
    """

    driver: Literal["generic"]
    protocol: Protocol
    password: str | None = Field(None, min_length=1, description="for {password} in login steps")

    @field_validator("protocol", mode="wrap")
    @classmethod
    def _shared(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Protocol:
        if not isinstance(value, dict):
            return handler(value)  # type: ignore[no-any-return]
        try:
            key = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            return handler(value)  # type: ignore[no-any-return]
        shared = _SHARED.get(key)
        if shared is None:
            shared = handler(value)
            if len(_SHARED) >= _SHARED_MAX:
                del _SHARED[next(iter(_SHARED))]
            _SHARED[key] = shared
        return shared
