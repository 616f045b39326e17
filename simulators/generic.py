"""The generic simulator: a device described in YAML as request → reply rules over its state.

    state: {power: "off"}
    rules:
      - match: '^POWER (?P<on>ON|OFF)$'       # a received line (hex digits in hex encoding)
        set: {power: "{on}"}                   # state it changes (templates over groups, state)
        reply: "POWER={power}"                 # what it answers (a list: several messages)
      - match: '^POWER\\?$'
        reply: "POWER={power}"
    push:                                      # sent to every session when state changes
      - when: 'power'                          # regex on the changed key, groups usable
        send: "POWER={value}"

It speaks the same framing and encoding as the driver's definition (`options_for`
takes them from the device, so `avhub run --simulate` serves a generic device), or
those of a definition file (`python -m simulators generic --definition FILE`).
"""

from __future__ import annotations

import argparse
import logging
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from yaml.nodes import MappingNode, Node, SequenceNode

from drivers.config import DeviceConfig
from drivers.generic.codec import (
    DEFAULT_FRAMING,
    Encoding,
    Framing,
    Pattern,
    Strict,
    Template,
    TemplateField,
    Wire,
)
from drivers.generic.config import GenericConfig
from drivers.transport.framing import Framer
from simulators.base import AuthKnobs, Session, Simulator

log = logging.getLogger(__name__)

StateValue = str | int | float | bool | None
_PUSH_NAMES = ("key", "value")


class Rule(Strict):
    """A received line the device answers: the state it changes and its reply."""

    match: Pattern = Field(description="regex searched in the received line")
    set: dict[str, TemplateField] = Field(
        default_factory=dict, description="state key → new value (templates over groups, state)"
    )
    reply: list[TemplateField] = Field(default_factory=list, description="messages to answer")
    close: bool = Field(False, description="close the connection after replying")

    @field_validator("reply", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("set")
    @classmethod
    def _keys(cls, value: dict[str, Template]) -> dict[str, Template]:
        for key in value:
            Template.parse(key)
        return value

    @cached_property
    def changes(self) -> list[tuple[Template, Template]]:
        """(key, value) templates of `set`, parsed."""
        return [(Template.parse(key), value) for key, value in self.set.items()]


class Push(Strict):
    """A message sent to every session when a state key matching `when` changes."""

    when: Pattern = Field(description="regex the whole changed key matches")
    send: TemplateField = Field(description="may name state keys, groups of when, {key}, {value}")


class LoginTexts(Strict):
    """What the device says around its password prompt (knob `password`)."""

    prompt: TemplateField = Field(Template.parse("Password:"))
    accepted: TemplateField | None = Field(Template.parse("Login OK"))
    rejected: TemplateField = Field(Template.parse("Login failed"))


class GenericKnobs(AuthKnobs):
    """A generic device: its wire, start state, rules, pushes and error replies."""

    listen: Literal["tcp", "udp"] = Field("tcp", description="what start() serves")
    encoding: Encoding = Field("ascii", description="ascii, latin-1, utf-8, or hex (binary)")
    framing: Framing | None = Field(None, description="delimiter or length; unset: CR/LF lines")
    greeting: list[TemplateField] = Field(
        default_factory=list, description="messages sent when a client connects"
    )
    password: str | None = Field(None, min_length=1, description="ask for this password first")
    login: LoginTexts | None = Field(None, description="prompt and answers of the login")
    state: dict[str, StateValue] = Field(default_factory=dict, description="state at start")
    rules: list[Rule] = Field(default_factory=list, description="request → reply rules, in order")
    push: list[Push] = Field(default_factory=list, description="messages sent on state changes")
    unknown_reply: TemplateField | None = Field(
        None, description="answer to a line no rule matches; unset: none"
    )
    error_reply: TemplateField | None = Field(
        None, description="the device's error answer (device_errors knobs); unset: none"
    )

    @field_validator("rules")
    @classmethod
    def _rule_names(cls, rules: list[Rule], info: ValidationInfo) -> list[Rule]:
        known = set(info.data.get("state") or {}) | _set_keys(rules)
        for i, rule in enumerate(rules):
            names = known | set(rule.match.groupindex)
            for template in [*rule.set.values(), *rule.reply]:
                if unknown := template.unknown(names):
                    raise ValueError(f"rules[{i}]: {template.text!r} names unknown {unknown}")
        return rules

    @field_validator("push")
    @classmethod
    def _push_names(cls, pushes: list[Push], info: ValidationInfo) -> list[Push]:
        known = set(info.data.get("state") or {}) | _set_keys(info.data.get("rules") or [])
        for i, push in enumerate(pushes):
            names = known | set(push.when.groupindex) | set(_PUSH_NAMES)
            if unknown := push.send.unknown(names):
                raise ValueError(f"push[{i}]: {push.send.text!r} names unknown {unknown}")
        return pushes


def _set_keys(rules: list[Rule]) -> set[str]:
    return {key for rule in rules for key in rule.set if Template.parse(key).constant}


class GenericSimulator(Simulator[GenericKnobs]):
    """A device that answers as its rules say; see the module docstring.

    Faults: its device error is `error_reply` (none configured: no device errors);
    with `password` (or `fail_auth`) a session must send the password first.
    """

    kind = "generic"
    knobs_model = GenericKnobs
    serial = True

    def __init__(self, knobs: GenericKnobs | None = None) -> None:
        super().__init__(knobs)
        k = self.knobs
        self.wire = Wire(k.encoding, k.framing or DEFAULT_FRAMING)
        self._state: dict[str, StateValue] = {}
        self._awaiting: set[Session] = set()
        self.received: list[str] = []
        """Every line received, decoded (hex digits for a binary protocol)."""
        self.reset_state()
        self.add_listener(self._push)

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The device's encoding and framing, UDP for a udp:// device, its password."""
        if not isinstance(device, GenericConfig):
            return {}
        protocol = device.protocol
        options: dict[str, Any] = {
            "encoding": protocol.encoding,
            "framing": protocol.framing.model_dump(exclude_defaults=True),
        }
        if device.transport.scheme == "udp":
            options["listen"] = "udp"
        if device.password:
            options["password"] = device.password
        return options

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--definition",
            metavar="FILE",
            type=Path,
            help="YAML file describing the device: its knobs (state, rules, push, ...), or a "
            "device of a deployment file (protocol: and simulator:)",
        )

    @classmethod
    def options_from_arguments(cls, args: argparse.Namespace) -> dict[str, Any]:
        path: Path | None = getattr(args, "definition", None)
        return load_definition(path) if path is not None else {}

    # -- state -----------------------------------------------------------------

    @property
    def state(self) -> dict[str, StateValue]:
        """The device state (read-only; change it with `set_state`)."""
        return dict(self._state)

    def set_state(self, key: str, value: StateValue) -> None:
        """Change one state value, as the front panel would; pushes follow."""
        if self._state.get(key, ...) != value:
            self._state[key] = value
            self.state_changed(key, value)

    def reset_state(self) -> None:
        self._state = dict(self.knobs.state)

    def _typed(self, key: str, template: Template, values: dict[str, Any]) -> StateValue:
        """A rule's new value: text takes the type of the key's old value (a lone `{name}`
        of a state value keeps that value as it is)."""
        name = template.single
        value: StateValue = values[name] if name is not None else template.render(values)
        old = self._state.get(key)
        if not isinstance(value, str) or old is None or isinstance(old, str):
            return value
        try:
            if isinstance(old, bool):
                return value.strip().lower() in ("1", "on", "true", "yes")
            return type(old)(value)
        except ValueError:
            log.warning("generic simulator: %s=%r is not a %s", key, value, type(old).__name__)
            return value

    def _push(self, key: str, value: object) -> None:
        for push in self.knobs.push:
            found = push.when.fullmatch(key)
            if found is not None:
                values = {**self._state, **found.groupdict(), "key": key, "value": value}
                message = self._message(push.send, values)
                if message is not None:
                    self.broadcast(message)

    # -- sessions --------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve TCP, or UDP with knob `listen: udp`."""
        if self.knobs.listen == "udp":
            await self.start_udp(host, port)
        else:
            await super().start(host, port)

    def make_framer(self) -> Framer[bytes]:
        return self.wire.framer(self.wire.terminator or None)

    def _message(self, template: Template, values: dict[str, Any]) -> bytes | None:
        """A message's bytes with the delimiter; None (logged) when it cannot be rendered."""
        try:
            return self.wire.encode(template.render(values)) + self.wire.delimiter
        except (KeyError, ValueError) as err:
            log.warning("generic simulator: cannot send %r: %s", template.text, err)
            return None

    async def _send(self, session: Session, template: Template, values: dict[str, Any]) -> None:
        message = self._message(template, values)
        if message is not None:
            await session.send(message)

    async def session_started(self, session: Session) -> None:
        for template in self.knobs.greeting:
            await self._send(session, template, self._state)
        if self.knobs.password is not None or self.knobs.fail_auth:
            self._awaiting.add(session)
            await self._send(session, (self.knobs.login or LoginTexts()).prompt, self._state)

    def session_ended(self, session: Session) -> None:
        self._awaiting.discard(session)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        if session.datagram:  # a whole datagram, terminator and all
            frame = frame.rstrip(self.wire.terminator)
        text = self.wire.decode(frame)
        self.received.append(text)
        if session in self._awaiting:
            await self._log_in(session, text)
            return
        for rule in self.knobs.rules:
            found = rule.match.search(text)
            if found is None:
                continue
            groups = found.groupdict()
            for key_template, value_template in rule.changes:
                values = {**self._state, **groups}
                key = key_template.render(values)
                self.set_state(key, self._typed(key, value_template, values))
            for template in rule.reply:
                await self._send(session, template, {**self._state, **groups})
            if rule.close:
                session.close()
            return
        if self.knobs.unknown_reply is not None:
            await self._send(session, self.knobs.unknown_reply, self._state)
        else:
            log.info("%s: no rule matches %r", session, text[:60])

    async def _log_in(self, session: Session, text: str) -> None:
        texts = self.knobs.login or LoginTexts()
        if self.knobs.fail_auth or text != self.knobs.password:
            log.info("%s: login refused", session)
            await self._send(session, texts.rejected, self._state)
            session.close()
            return
        self._awaiting.discard(session)
        if texts.accepted is not None:
            await self._send(session, texts.accepted, self._state)

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """The `error_reply` for any command past the login; False when there is none."""
        error = self.knobs.error_reply
        if error is None or session in self._awaiting:
            return False
        await self._send(session, error, self._state)
        return True


# ---------------------------------------------------------------------------- definition files


def load_definition(path: Path) -> dict[str, Any]:
    """Knobs from a definition file; ValueError with `file:line:column: key: message`.

    The file holds the knobs, or a generic device (`protocol:` and `simulator:`), whose
    encoding and framing the knobs then take.
    """
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of knobs, or a device with protocol:")
    prefix: tuple[str, ...] = ()
    if "protocol" in data:
        try:
            defaults = {"driver": "generic", "transport": "tcp://127.0.0.1:1"}
            device = GenericConfig.model_validate({**defaults, **data})
        except ValidationError as err:
            raise ValueError(_located(path, root, err, ())) from None
        knobs = {**GenericSimulator.options_for(device), **(device.simulator or {})}
        prefix = ("simulator",)
    else:
        knobs = data
    try:
        GenericKnobs.model_validate(knobs)
    except ValidationError as err:
        raise ValueError(_located(path, root, err, prefix)) from None
    return knobs


def _located(path: Path, root: Node | None, err: ValidationError, prefix: tuple[str, ...]) -> str:
    lines = []
    for error in err.errors(include_url=False):
        loc = (*prefix, *error["loc"])
        line, column = _position(root, loc) if root is not None else (1, 1)
        where = ".".join(str(p) for p in loc) or "-"
        lines.append(f"{path}:{line}:{column}: {where}: {error['msg']}")
    return "\n".join(lines)


def _position(node: Node, loc: tuple[str | int, ...]) -> tuple[int, int]:
    """The 1-based line and column of the deepest node along `loc`."""
    for step in loc:
        child = None
        if isinstance(node, MappingNode):
            child = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


__all__ = ["GenericKnobs", "GenericSimulator", "Push", "Rule", "load_definition"]
