"""Epson ESC/VP21 projector simulator (protocols/epson-escvp21.md, "Simulator notes").

On TCP a session must open with the ESC/VP.net handshake; on a pty (RS-232) there is
none. Every answer ends with the `:` prompt; `PWR ON` gets it only once warm-up is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.epson_escvp.codec import (
    CR,
    ERRORS,
    MAX_LINE,
    MAX_PASSWORD,
    PORT,
    POWER_CODES,
    PROMPT,
    REFUSAL,
    EscvpFramer,
    Packet,
    PacketType,
    Reply,
    Status,
    connect_reply,
    is_code,
    is_packet,
    parse_command,
)
from drivers.epson_escvp.config import DEFAULT_INPUTS, EpsonEscvpConfig
from drivers.errors import ProtocolError
from simulators.base import AuthKnobs, Session, Simulator
from simulators.projector import HourMeter, ProjectorKnobs

log = logging.getLogger(__name__)

PowerState = Literal["off", "on", "warming", "cooling"]
ABNORMAL_STANDBY = "05"
_HEX2 = r"^[0-9A-F]{2}$"


class EpsonEscvpKnobs(ProjectorKnobs, AuthKnobs):
    """Epson ESC/VP21 device knobs. State knobs (power, input, lamp_hours, ...) set the start state."""

    handshake: bool = Field(
        True,
        description="on TCP, expect the ESC/VP.net handshake first (off: RS-232 behind a "
        "serial-to-IP gateway); a pty never has one",
    )
    password: str | None = Field(
        None, min_length=1, max_length=MAX_PASSWORD, description="require this in the handshake"
    )
    handshake_prompt: bool = Field(True, description="send `:` right after the handshake reply")
    standby_code: Literal["00", "04"] = Field(
        "04", description="PWR? in standby: 04 (network on) or 00 (network off)"
    )
    off_prompt: Literal["at_once", "after_cooldown"] = Field(
        "at_once", description="when PWR OFF gets its prompt (unconfirmed)"
    )
    source_delay: Duration = Field(
        0.0, description="SOURCE gets its prompt this long after (signal recognition, ~5 s real)"
    )
    inputs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INPUTS), description="SOURCE codes (hex)"
    )
    input: str | None = Field(None, description="selected input at start; unset: the first")
    error: str = Field("00", pattern=_HEX2, description="ERR? code at start (00: none)")
    lamp: bool = Field(True, description="--no-lamp: LAMP? answers ERR, like a laser projector")
    lamp_hours: int = Field(0, ge=0, description="lamp hours at start")
    lamp_hours_per_second: float = Field(0.0, ge=0, description="lamp hours gained per second on")

    @field_validator("inputs")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [code.upper() for code in value]
        if not codes:
            raise ValueError("need at least one input")
        if bad := [code for code in codes if not is_code(code)]:
            raise ValueError(f"not SOURCE codes (two hex digits, like 30 or A0): {bad}")
        if len(set(codes)) != len(codes):
            raise ValueError("inputs repeat")
        return codes

    @model_validator(mode="after")
    def _known_input(self) -> EpsonEscvpKnobs:
        if self.input is not None and self.input.upper() not in self.inputs:
            raise ValueError(f"input {self.input!r} is not one of inputs {self.inputs}")
        return self


Handler = Callable[[str | None], Awaitable[list[Reply]]]


class EpsonEscvpSimulator(Simulator[EpsonEscvpKnobs]):
    """An Epson projector: ESC/VP.net handshake, prompts, power with warm-up, source, A/V mute.

    Unknown commands and commands not possible now (SOURCE in standby, PWR OFF while
    warming, PWR ON while cooling) answer `ERR` and a prompt. A session waiting for its
    PWR ON prompt handles nothing else meanwhile; other sessions are answered (PWR?
    says 02). `stop()` keeps the state, so `start()` continues where it was.

    Faults: its device error is `ERR` and a prompt; `fail_auth` answers every
    ESC/VP.net handshake with status 0x41 (password wrong or missing) and closes, so
    it acts on TCP with the handshake only (RS-232 has no login).
    """

    kind = "epson_escvp"
    knobs_model = EpsonEscvpKnobs
    default_port = PORT
    line_end = CR
    max_frame = MAX_LINE
    serial = True  # the same commands run over the projector's RS-232 port

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The configured password and inputs; no handshake for a serial gateway (socket://)."""
        if not isinstance(device, EpsonEscvpConfig):
            return {}
        options: dict[str, Any] = {"handshake": device.uses_handshake()}
        if device.password is not None:
            options["password"] = device.password
        if device.inputs:
            options["inputs"] = list(device.inputs)
        return options

    def __init__(self, knobs: EpsonEscvpKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # commands per key, refused ones too
        self._timer: asyncio.TimerHandle | None = None
        self._steady = asyncio.Event()  # set while neither warming nor cooling
        self.reset_state()
        self._connected: set[Session] = set()  # network sessions past the handshake
        self._handlers: dict[str, Handler] = {
            "PWR": self._pwr,
            "SOURCE": self._source,
            "MUTE": self._mute_command,
            "LAMP": self._lamp,
            "ERR": self._err,
        }

    def reset_state(self) -> None:
        """Power, input, mute, error code and lamp hours as the knobs set them at start."""
        k = self.knobs
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._power: PowerState = k.power
        self._abnormal = False
        self._input = (k.input or k.inputs[0]).upper()
        self._mute = False
        self._error = k.error
        self._lamp_meter = HourMeter(k.lamp_hours, lambda: self.knobs.lamp_hours_per_second)
        self._lamp_meter.run(self._power == "on")
        self._steady.set()  # a PWR ON waiting for its prompt is answered (to nobody, now)

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def power(self) -> PowerState:
        return self._power

    @property
    def power_code(self) -> str:
        """What PWR? answers now."""
        if self._power == "off":
            return ABNORMAL_STANDBY if self._abnormal else self.knobs.standby_code
        return POWER_CODES[self._power]

    @property
    def input(self) -> str:
        return self._input

    @property
    def mute(self) -> bool:
        return self._mute

    @property
    def error(self) -> str:
        return self._error

    @property
    def lamp_hours(self) -> int:
        return self._lamp_meter.hours

    # -- front panel (tests; not over the network) ------------------------------

    def press_power(self, on: bool) -> bool:
        """The power key: False where PWR ON/OFF would answer ERR. Needs a running loop."""
        return self._request_power(on)

    def set_input(self, code: str) -> None:
        code = code.upper()
        if code not in self.knobs.inputs:
            raise ValueError(f"no input {code!r}; inputs are {self.knobs.inputs}")
        self._set("input", code)

    def set_mute(self, on: bool) -> None:
        self._set("mute", on)

    def set_error(self, code: str) -> None:
        """Set the ERR? code (two hex digits, 00 = none)."""
        code = code.upper()
        if not is_code(code):
            raise ValueError(f"an error code is two hex digits, got {code!r}")
        self._set("error", code)

    def fail(self, code: str = "04") -> None:
        """A fault: the projector drops to abnormal standby (PWR=05) reporting `code`."""
        if code.upper() not in ERRORS:
            raise ValueError(f"unknown error code {code!r}")
        self.set_error(code)
        self._abnormal = True
        self._enter("off")

    def set_lamp_hours(self, hours: int) -> None:
        self._lamp_meter.set(hours)
        self.state_changed("lamp_hours", hours)

    def _set(self, key: str, value: object) -> None:
        if getattr(self, f"_{key}") != value:
            setattr(self, f"_{key}", value)
            self.state_changed(key, value)

    # -- sessions --------------------------------------------------------------

    def make_framer(self) -> EscvpFramer:
        return EscvpFramer(prompts=False, max_len=MAX_LINE)

    def session_ended(self, session: Session) -> None:
        self._connected.discard(session)

    def _needs_handshake(self, session: Session) -> bool:
        """True while a network session has not opened with the ESC/VP.net handshake."""
        return self.knobs.handshake and not session.on_serial and session not in self._connected

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        if is_packet(frame):
            await self._handshake(session, frame)
            return
        if self._needs_handshake(session):
            log.info("%s: ignoring %r before the ESC/VP.net handshake", session, frame[:40])
            return
        if not frame:  # a lone CR: "are you there?"
            await session.send(PROMPT)
            return
        try:
            command = parse_command(frame)
        except ProtocolError as err:
            log.warning("%s: %s", session, err)
            await session.send(REFUSAL.encode() + PROMPT)
            return
        self.received[command.key] += 1
        handler = self._handlers.get(command.key)
        replies = await handler(command.value) if handler is not None else [REFUSAL]
        await session.send(b"".join(reply.encode() for reply in replies) + PROMPT)

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """`ERR` and a prompt for any well-formed command the projector would handle now."""
        if not frame or is_packet(frame) or self._needs_handshake(session):
            return False
        try:
            command = parse_command(frame)
        except ProtocolError:
            return False
        self.received[command.key] += 1
        await session.send(REFUSAL.encode() + PROMPT)
        return True

    async def _handshake(self, session: Session, frame: bytes) -> None:
        if session.on_serial or not self.knobs.handshake:
            log.warning("%s: ignoring an ESC/VP.net packet on a serial line", session)
            return
        try:
            packet = Packet.decode(frame)
        except ProtocolError as err:
            log.warning("%s: %s", session, err)
            await session.send(connect_reply(Status.BAD_REQUEST).encode())
            return
        if packet.kind != PacketType.CONNECT:
            await session.send(connect_reply(Status.BAD_REQUEST).encode())
            return
        password = self.knobs.password
        if self.knobs.fail_auth or (password is not None and packet.password != password):
            log.info("%s: wrong ESC/VP.net password", session)
            await session.send(connect_reply(Status.UNAUTHORIZED).encode())
            session.close()
            return
        self._connected.add(session)
        prompt = PROMPT if self.knobs.handshake_prompt else b""
        await session.send(connect_reply(Status.OK).encode() + prompt)

    # -- commands ----------------------------------------------------------------

    def _locked(self, setting: bool) -> bool:
        """True when SOURCE/MUTE must answer ERR (projector not on)."""
        return self.knobs.refuses(self._power == "on", setting=setting)

    async def _pwr(self, value: str | None) -> list[Reply]:
        if value is None:
            return [Reply("PWR", self.power_code)]
        if value not in ("ON", "OFF") or not self._request_power(value == "ON"):
            return [REFUSAL]
        if value == "ON" or self.knobs.off_prompt == "after_cooldown":
            await self._steady.wait()  # the prompt comes once the lamp is lit (or cooled)
        return []

    async def _source(self, value: str | None) -> list[Reply]:
        if value is None:
            return [REFUSAL] if self._locked(False) else [Reply("SOURCE", self._input)]
        if value not in self.knobs.inputs or self._locked(True):
            return [REFUSAL]
        self._set("input", value)
        if self.knobs.source_delay:
            await asyncio.sleep(self.knobs.source_delay)
        return []

    async def _mute_command(self, value: str | None) -> list[Reply]:
        if value is None:
            return (
                [REFUSAL] if self._locked(False) else [Reply("MUTE", "ON" if self._mute else "OFF")]
            )
        if value not in ("ON", "OFF") or self._locked(True):
            return [REFUSAL]
        self._set("mute", value == "ON")
        return []

    async def _lamp(self, value: str | None) -> list[Reply]:
        if value is not None or not self.knobs.lamp:
            return [REFUSAL]
        return [Reply("LAMP", str(self.lamp_hours))]

    async def _err(self, value: str | None) -> list[Reply]:
        return [REFUSAL] if value is not None else [Reply("ERR", self._error)]

    # -- power state machine ---------------------------------------------------

    def _request_power(self, on: bool) -> bool:
        """PWR ON/OFF: False (ERR) for ON while cooling and OFF while warming."""
        if self._power == ("cooling" if on else "warming"):
            return False
        if self._power == ("off" if on else "on"):
            self._abnormal = False
            self._enter("warming" if on else "cooling")
        return True

    def _enter(self, state: PowerState) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._lamp_meter.run(state == "on")
        self._set("power", state)
        if state in ("on", "off"):
            self._steady.set()
            return
        self._steady.clear()
        final: PowerState = "on" if state == "warming" else "off"
        delay = self.knobs.warmup if state == "warming" else self.knobs.cooldown
        if delay <= 0:
            self._enter(final)
        else:
            self._timer = asyncio.get_running_loop().call_later(delay, self._enter, final)
