"""Sony ADCP projector simulator (protocols/sony-adcp.md, "Simulator notes")."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.sony_adcp.codec import (
    CHALLENGE,
    MAX_LINE,
    NO_ERROR,
    NO_WARNING,
    NOKEY,
    PORT,
    TERMINATOR,
    Command,
    ErrorReply,
    Ok,
    Value,
    auth_digest,
    is_input_word,
    parse_command,
)
from drivers.sony_adcp.config import DEFAULT_INPUTS, SonyAdcpConfig
from simulators.base import AuthKnobs, Session, Simulator
from simulators.projector import HourMeter, ProjectorKnobs

log = logging.getLogger(__name__)

PowerWord = Literal["standby", "startup", "on", "cooling1", "cooling2"]
TRANSITIONS: dict[str, PowerWord] = {"startup": "on", "cooling1": "cooling2", "cooling2": "standby"}
"""Each transition state and the state it ends in."""
KEYS = frozenset(
    ("menu", "up", "down", "left", "right", "enter", "reset", "power", "blank", "input")
)
"""Remote keys `key "..."` accepts (a small part of a real model's list)."""

ERR_CMD, ERR_VAL, ERR_INACTIVE, ERR_AUTH, ERR_INTERNAL = (
    ErrorReply("err_cmd"),
    ErrorReply("err_val"),
    ErrorReply("err_inactive"),
    ErrorReply("err_auth"),
    ErrorReply("err_internal1"),
)
OK = Ok()
Answer = Ok | ErrorReply | Value


class SonyAdcpKnobs(ProjectorKnobs, AuthKnobs):
    """Sony ADCP device knobs. State knobs (power, input, hours, ...) only set the start state."""

    password: str | None = Field(
        None, min_length=1, max_length=64, description="require SHA-256 challenge authentication"
    )
    challenge: str | None = Field(
        None,
        pattern=CHALLENGE,
        description="fixed challenge string; unset: 8 random hex digits per session",
    )
    auth_ok: Literal["OK", "ok"] = Field(
        "OK", description="the word accepting a good digest (its case is not confirmed)"
    )
    warmup: Duration = Field(5.0, description="startup → on")
    cooldown: Duration = Field(5.0, description="cooling1 → cooling2 → standby, half each")
    power_in_transition: Literal["err_inactive", "ignore", "apply"] = Field(
        "err_inactive",
        description="power set while starting up or cooling: err_inactive; ignore = ok, no "
        "change; apply = ok and reverse the transition when the request asks for the other state",
    )
    inputs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INPUTS), description='input names (input "...")'
    )
    input: str | None = Field(None, description="selected input at start; unset: the first")
    errors: list[str] = Field(default_factory=list, description="err_* words `error ?` lists")
    warnings: list[str] = Field(default_factory=list, description="warn_* words `warning ?` lists")
    light_source_hours: int = Field(0, ge=0, description="light source hours at start")
    operation_hours: int = Field(0, ge=0, description="operation hours at start")
    hours_per_second: float = Field(0.0, ge=0, description="hours gained per second on")
    timer_key: str = Field(
        "light_src", pattern=r"^[a-z0-9_]+$", description="`timer ?` name of the light source"
    )
    unsupported: list[str] = Field(
        default_factory=list, description="commands this model answers with err_cmd, e.g. timer"
    )
    model: str = Field("VPL-FHZ75", max_length=64, description="modelname ?")
    serial_number: str = Field("1234567", max_length=64, description="serialnum ?")

    @field_validator("inputs")
    @classmethod
    def _input_words(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("need at least one input")
        if bad := [word for word in value if not is_input_word(word)]:
            raise ValueError(f"not ADCP input names (like hdmi1): {bad}")
        if len(set(value)) != len(value):
            raise ValueError("inputs repeat")
        return value

    @field_validator("errors", "warnings")
    @classmethod
    def _words(cls, value: list[str], info: ValidationInfo) -> list[str]:
        prefix = "err_" if info.field_name == "errors" else "warn_"
        if bad := [w for w in value if not re.fullmatch(prefix + r"[a-z0-9_]+", w)]:
            raise ValueError(f"expected {prefix}* words, got {bad}")
        return value

    @model_validator(mode="after")
    def _known_input(self) -> SonyAdcpKnobs:
        if self.input is not None and self.input not in self.inputs:
            raise ValueError(f"input {self.input!r} is not one of inputs {self.inputs}")
        return self


class SonyAdcpSimulator(Simulator[SonyAdcpKnobs]):
    """A Sony ADCP projector: challenge auth, power state machine, input, blank, errors, timers.

    Every session opens with `NOKEY` or a challenge; a wrong digest gets `err_auth`
    and the connection closes. A client may send one command per connection or keep
    the session. `stop()` takes the projector off the network; its state (and a running
    warm-up) carries on, so `start()` on the same port continues where it was.

    Faults: its device error is `err_internal1` (internal communication error);
    `fail_auth` sends every new session a challenge, even without a password, and
    answers any digest with `err_auth`.
    """

    kind = "sony_adcp"
    knobs_model = SonyAdcpKnobs
    default_port = PORT
    terminators = b"\r\n"
    line_end = TERMINATOR
    max_frame = MAX_LINE

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The configured password (auth on) and inputs."""
        if not isinstance(device, SonyAdcpConfig):
            return {}
        options: dict[str, Any] = {}
        if device.password is not None:
            options["password"] = device.password
        if device.inputs:
            options["inputs"] = list(device.inputs)
        return options

    def __init__(self, knobs: SonyAdcpKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # commands per name, refused ones too
        self._timer: asyncio.TimerHandle | None = None
        self.reset_state()
        self._awaiting_auth: dict[Session, str] = {}
        self._queries: dict[str, Callable[[], Answer]] = {
            "power_status": lambda: Value(self._power),
            "input": lambda: self._locked(Value(self._input), setting=False),
            "blank": lambda: self._locked(Value("on" if self._blank else "off"), setting=False),
            "modelname": lambda: Value(self.knobs.model),
            "serialnum": lambda: Value(self.knobs.serial_number),
            "error": lambda: Value(self._errors or NO_ERROR),
            "warning": lambda: Value(self._warnings or NO_WARNING),
            "timer": self._timers,
        }
        self._sets: dict[str, Callable[[str | int], Answer]] = {
            "power": self._power_set,
            "input": self._input_set,
            "blank": self._blank_set,
            "key": self._key,
        }

    def reset_state(self) -> None:
        """Power, input, blank, errors and hours as the knobs set them at start."""
        k = self.knobs
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._power: PowerWord = "on" if k.power == "on" else "standby"
        self._input = k.input or k.inputs[0]
        self._blank = False
        self._errors = list(k.errors)
        self._warnings = list(k.warnings)
        self._light_source = HourMeter(k.light_source_hours, lambda: self.knobs.hours_per_second)
        self._operation = HourMeter(k.operation_hours, lambda: self.knobs.hours_per_second)
        for meter in (self._light_source, self._operation):
            meter.run(self._power == "on")

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def power(self) -> PowerWord:
        """`power_status`: standby, startup, on, cooling1 or cooling2."""
        return self._power

    @property
    def input(self) -> str:
        return self._input

    @property
    def blank(self) -> bool:
        """Picture mute."""
        return self._blank

    @property
    def errors(self) -> list[str]:
        return list(self._errors)

    @property
    def light_source_hours(self) -> int:
        return self._light_source.hours

    # -- front panel (tests; not over the network) ------------------------------

    def press_power(self, on: bool) -> bool:
        """The power key: same state machine as `power`; False where it would be refused.

        Needs a running event loop unless warmup/cooldown are 0.
        """
        return isinstance(self._request_power(on), Ok)

    def set_input(self, word: str) -> None:
        """Select an input, bypassing the standby lockout; ValueError for unknown inputs."""
        if word not in self.knobs.inputs:
            raise ValueError(f"no input {word!r}; inputs are {self.knobs.inputs}")
        self._set("input", word)

    def set_blank(self, on: bool) -> None:
        self._set("blank", on)

    def set_errors(self, errors: list[str], warnings: list[str] | None = None) -> None:
        """Replace the err_* (and, when given, warn_*) words the projector reports."""
        checked = SonyAdcpKnobs(errors=errors, warnings=warnings or [])
        self._set("errors", checked.errors)
        if warnings is not None:
            self._set("warnings", checked.warnings)

    def set_light_source_hours(self, hours: int) -> None:
        self._light_source.set(hours)
        self.state_changed("light_source_hours", hours)

    def _set(self, key: str, value: object) -> None:
        if getattr(self, f"_{key}") != value:
            setattr(self, f"_{key}", value)
            self.state_changed(key, value)

    # -- sessions --------------------------------------------------------------

    async def session_started(self, session: Session) -> None:
        if self.knobs.password is None and not self.knobs.fail_auth:
            await session.send(NOKEY.encode() + TERMINATOR)
            return
        challenge = self.knobs.challenge or secrets.token_hex(4)
        self._awaiting_auth[session] = challenge
        await session.send(challenge.encode() + TERMINATOR)

    def session_ended(self, session: Session) -> None:
        self._awaiting_auth.pop(session, None)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        challenge = self._awaiting_auth.pop(session, None)
        if challenge is not None:
            if self._digest_ok(frame, challenge):
                await session.send(Ok().encode(self.knobs.auth_ok))
            else:
                log.info("%s: authentication failed", session)
                await session.send(ERR_AUTH.encode())
                session.close()
            return
        try:
            command = parse_command(frame)
        except ProtocolError as err:
            log.warning("%s: %s", session, err)
            await session.send(ERR_CMD.encode())
            return
        self.received[command.name] += 1
        await session.send(self.reply_to(command).encode())

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """`err_internal1` for any well-formed command once the session is past its login."""
        if session in self._awaiting_auth:
            return False
        try:
            command = parse_command(frame)
        except ProtocolError:
            return False
        self.received[command.name] += 1
        await session.send(ERR_INTERNAL.encode())
        return True

    def _digest_ok(self, frame: bytes, challenge: str) -> bool:
        password = self.knobs.password
        if self.knobs.fail_auth:
            return False
        if password is None:  # password removed while this session waited
            return True
        expected = auth_digest(challenge, password).encode()
        return hmac.compare_digest(frame.strip().lower(), expected)

    def reply_to(self, command: Command) -> Answer:
        """The reply to one command."""
        if command.name in self.knobs.unsupported:
            return ERR_CMD
        if command.value is None:
            query = self._queries.get(command.name)
            return query() if query is not None else ERR_CMD
        setter = self._sets.get(command.name)
        return setter(command.value) if setter is not None else ERR_CMD

    # -- commands ----------------------------------------------------------------

    def _locked(self, answer: Answer, *, setting: bool) -> Answer:
        """err_inactive in place of `answer` while not on, as standby_lockout says."""
        return ERR_INACTIVE if self.knobs.refuses(self._power == "on", setting=setting) else answer

    def _power_set(self, value: str | int) -> Answer:
        if value not in ("on", "off"):
            return ERR_VAL
        return self._request_power(value == "on")

    def _input_set(self, value: str | int) -> Answer:
        if value not in self.knobs.inputs:
            return ERR_VAL
        answer = self._locked(OK, setting=True)
        if answer is OK:
            self._set("input", value)
        return answer

    def _blank_set(self, value: str | int) -> Answer:
        if value not in ("on", "off"):
            return ERR_VAL
        answer = self._locked(OK, setting=True)
        if answer is OK:
            self._set("blank", value == "on")
        return answer

    def _key(self, value: str | int) -> Answer:
        return OK if value in KEYS else ERR_VAL

    def _timers(self) -> Answer:
        return Value(
            [
                {"operation": self._operation.hours},
                {self.knobs.timer_key: self._light_source.hours},
            ]
        )

    # -- power state machine ---------------------------------------------------

    def _request_power(self, on: bool) -> Answer:
        if self._power in TRANSITIONS:
            mode = self.knobs.power_in_transition
            if mode == "err_inactive":
                return ERR_INACTIVE
            if mode == "apply" and (self._power == "startup") != on:
                self._enter("startup" if on else "cooling1")
            return OK
        if (self._power == "on") != on:
            self._enter("startup" if on else "cooling1")
        return OK

    def _enter(self, word: PowerWord) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for meter in (self._light_source, self._operation):
            meter.run(word == "on")
        if word != "on":
            self._set("blank", False)
        self._set("power", word)
        if word not in TRANSITIONS:
            return
        k = self.knobs
        delay = k.warmup if word == "startup" else k.cooldown / 2
        if delay <= 0:
            self._enter(TRANSITIONS[word])
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(delay, self._enter, TRANSITIONS[word])
