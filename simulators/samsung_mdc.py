"""Samsung MDC display simulator (protocols/samsung-mdc.md §6)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.samsung_mdc.codec import (
    ANY_ID,
    HEADER,
    MAX_ID,
    PORT,
    TLS_PREAMBLE,
    ChecksumError,
    Cmd,
    Frame,
    MdcFramer,
    Power,
    Reply,
    Status,
    command_name,
    decode_frame,
    input_code,
    input_name,
)
from drivers.samsung_mdc.config import SamsungMdcConfig
from simulators.base import GARBAGE_BYTES, GARBAGE_LEN, Knobs, Session, Simulator

log = logging.getLogger(__name__)

NAK_ERROR = 0x01  # real error byte meanings are undocumented; the simulator always sends this
VOLUME_MAX = 100
_GARBAGE = bytes(b for b in GARBAGE_BYTES if b != HEADER)  # junk never starts a frame
_KNOWN = frozenset(Cmd)
_ALWAYS_ANSWERED = (Cmd.STATUS, Cmd.POWER)  # also while booting
_TEXT = {
    Cmd.MODEL_NAME: "model_name",
    Cmd.SERIAL_NUMBER: "serial_number",
    Cmd.SOFTWARE_VERSION: "software_version",
}


def _code(name: str) -> int:
    code = input_code(name)
    if code is None:
        raise ValueError(f"{name!r} is not an MDC input (a name like 'HDMI 1' or hex like 0x21)")
    return code


class SamsungMdcKnobs(Knobs):
    """Samsung display knobs. State knobs (power, input, volume, mute) only set the start state."""

    display_id: int = Field(0, ge=0, le=MAX_ID - 1, description="the ID this display answers to")
    answer_any_id: bool = Field(True, description="also answer requests sent to ID 0xFE (254)")
    power: Literal["off", "on"] = Field("off", description="power state at start")
    inputs: list[str] = Field(
        default_factory=lambda: ["HDMI 1", "HDMI 2", "DisplayPort 1", "PC"],
        description="inputs this model has (MDC names or hex codes); others are NAKed",
    )
    input: str | None = Field(None, description="selected input at start; unset: the first")
    volume: int = Field(10, ge=0, le=VOLUME_MAX, description="volume at start")
    mute: bool = Field(False, description="mute at start")
    boot_delay: Duration = Field(0.0, description="after power on, how long the display boots")
    boot_reply: Literal["nak", "silent"] = Field(
        "nak", description="commands other than status/power while booting: NAK, or no answer"
    )
    bad_checksum: Literal["nak", "silent"] = Field(
        "nak", description="a request with a wrong checksum: NAK, or no answer"
    )
    corrupt_every: int | None = Field(
        None,
        ge=1,
        description="every Nth reply goes out with a wrong checksum (the command applies)",
    )
    unsupported: list[str] = Field(
        default_factory=list, description="commands this model NAKs, e.g. serial_number,model_name"
    )
    tls: bool = Field(
        False,
        description="Secured Protocol on: greet with MDCSTART<<TLS>> and never answer plain MDC",
    )
    model_name: str = Field("SIM-QM55B", max_length=64, description="model name (0x8A)")
    serial_number: str = Field("SIMMDC00001", max_length=64, description="serial number (0x0B)")
    software_version: str = Field("S-SIM-1000.0", max_length=64, description="software (0x0E)")

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("need at least one input")
        codes = [_code(name) for name in value]
        if len(set(codes)) != len(codes):
            raise ValueError("inputs repeat")
        return value

    @field_validator("unsupported")
    @classmethod
    def _commands(cls, value: list[str]) -> list[str]:
        names = {c.name.lower() for c in Cmd}
        if bad := [v for v in value if v.lower() not in names]:
            raise ValueError(f"unknown commands {bad}; known: {', '.join(sorted(names))}")
        return [v.lower() for v in value]

    @model_validator(mode="after")
    def _known_input(self) -> SamsungMdcKnobs:
        if self.input is not None and _code(self.input) not in self.input_codes:
            raise ValueError(f"input {self.input!r} is not one of inputs {self.inputs}")
        return self

    @property
    def input_codes(self) -> list[int]:
        return [_code(name) for name in self.inputs]


class SamsungMdcSimulator(Simulator[SamsungMdcKnobs]):
    """A Samsung display: display ID, power with a boot delay, input, volume, mute, status.

    Requests for another display ID get no answer (counted in `ignored`). Unsupported
    commands, bad values and sets while off are NAKed; gets work while off (network
    standby). Status, power and gets of the text fields are answered during boot.

    Its device error is a NAK. Plain MDC has no authentication, so there is no
    `fail_auth`: the Secured Protocol's PIN travels inside TLS, which is not simulated;
    knob `tls` plays a display that demands it (a driver reports that as auth_failed).
    """

    kind = "samsung_mdc"
    knobs_model = SamsungMdcKnobs
    default_port = PORT
    line_end = b""  # garbage is a bare prefix: MDC has no lines
    serial = True  # the same MDC runs over the display's RS-232 port

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The display answers the configured ID and has the configured inputs."""
        if not isinstance(device, SamsungMdcConfig):
            return {}
        options: dict[str, Any] = {}
        if device.display_id != ANY_ID:
            options["display_id"] = device.display_id
        if codes := list(device.input_labels()):
            options["inputs"] = [f"0x{code:02X}" for code in codes]
        return options

    def __init__(self, knobs: SamsungMdcKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # requests per command name, NAKed ones too
        self.ignored = 0  # requests for another display ID
        self.bad_checksums = 0  # requests with a wrong checksum
        self.replies = 0
        self.reset_state()

    def reset_state(self) -> None:
        """Power, input, volume and mute as the knobs set them at start; not booting."""
        k = self.knobs
        self._power = k.power == "on"
        self._input = _code(k.input) if k.input else k.input_codes[0]
        self._volume = k.volume
        self._mute = k.mute
        self._boot_until = 0.0

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def power(self) -> bool:
        return self._power

    @property
    def booting(self) -> bool:
        return self._power and asyncio.get_running_loop().time() < self._boot_until

    @property
    def input(self) -> str:
        """The selected input's MDC name."""
        return input_name(self._input)

    @property
    def volume(self) -> int:
        return self._volume

    @property
    def mute(self) -> bool:
        return self._mute

    # -- front panel (tests; not over the network) ------------------------------

    def press_power(self, on: bool) -> None:
        """The remote's power key; turning on starts a boot of `boot_delay`."""
        if on and not self._power:
            self._boot_until = asyncio.get_running_loop().time() + self.knobs.boot_delay
        self._set("power", on)

    def set_input(self, name: str) -> None:
        """Select an input by name or hex code; ValueError if this model lacks it."""
        code = _code(name)
        if code not in self.knobs.input_codes:
            raise ValueError(f"no input {name!r}; inputs are {self.knobs.inputs}")
        self._set("input", code)

    def set_volume(self, volume: int) -> None:
        if not 0 <= volume <= VOLUME_MAX:
            raise ValueError(f"volume is 0-{VOLUME_MAX}, got {volume}")
        self._set("volume", volume)

    def set_mute(self, mute: bool) -> None:
        self._set("mute", mute)

    def _set(self, key: str, value: object) -> None:
        if getattr(self, f"_{key}") == value:
            return
        setattr(self, f"_{key}", value)
        self.state_changed(key, value)

    # -- sessions --------------------------------------------------------------

    def make_framer(self) -> MdcFramer:
        return MdcFramer()

    def make_garbage(self) -> bytes:
        return bytes(self.rng.choices(_GARBAGE, k=GARBAGE_LEN))

    async def session_started(self, session: Session) -> None:
        if self.knobs.tls:
            await session.send(TLS_PREAMBLE)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        if self.knobs.tls:  # a plain MDC request where a TLS handshake belongs
            log.info("%s: plain MDC on a Secured Protocol display, closing", session)
            session.close()
            return
        if frame == TLS_PREAMBLE:
            log.warning("%s: ignoring a TLS greeting from the client", session)
            return
        request = decode_frame(frame)
        if not self._addressed(request.display_id):
            self.ignored += 1
            return
        self.received[command_name(request.cmd)] += 1
        if self.booting and request.cmd not in _ALWAYS_ANSWERED:
            if self.knobs.boot_reply == "silent":
                return
            reply = self._nak(request.cmd)
        else:
            reply = self._answer(request)
        await session.send(self._encode(reply))

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """A NAK for any request this display would answer."""
        if self.knobs.tls or frame == TLS_PREAMBLE:
            return False
        try:
            request = decode_frame(frame)
        except ProtocolError:
            return False
        if not self._addressed(request.display_id):
            return False
        await session.send(self._encode(self._nak(request.cmd)))
        return True

    def frame_error(self, session: Session, error: ProtocolError) -> None:
        if not isinstance(error, ChecksumError):
            log.warning("%s: %s", session, error)
            return
        self.bad_checksums += 1
        log.info("%s: %s", session, error)
        cmd, display_id = error.frame[1], error.frame[2]
        if self.knobs.bad_checksum == "nak" and self._addressed(display_id):
            session.push(self._nak(cmd).encode())

    def _addressed(self, display_id: int) -> bool:
        return display_id == self.knobs.display_id or (
            display_id == ANY_ID and self.knobs.answer_any_id
        )

    def _encode(self, reply: Reply) -> bytes:
        """The reply's bytes; every `corrupt_every`th with its checksum off by one."""
        data = reply.encode()
        self.replies += 1
        every = self.knobs.corrupt_every
        if every is not None and self.replies % every == 0:
            data = data[:-1] + bytes(((data[-1] + 1) & 0xFF,))
        return data

    # -- commands --------------------------------------------------------------

    def _ack(self, cmd: int, values: bytes) -> Reply:
        return Reply(self.knobs.display_id, True, cmd, values)

    def _nak(self, cmd: int) -> Reply:
        return Reply(self.knobs.display_id, False, cmd, bytes((NAK_ERROR,)))

    def _answer(self, request: Frame) -> Reply:
        cmd, data = request.cmd, request.data
        if cmd in _KNOWN and Cmd(cmd).name.lower() in self.knobs.unsupported:
            return self._nak(cmd)
        if cmd == Cmd.STATUS and not data:
            status = Status(self._power, self._volume, self._mute, self._input)
            return self._ack(cmd, status.encode())
        if cmd in _TEXT and not data:
            return self._ack(cmd, getattr(self.knobs, _TEXT[Cmd(cmd)]).encode("ascii", "replace"))
        if cmd == Cmd.POWER:
            return self._power_command(data)
        setters: dict[int, tuple[str, Callable[[int], bool]]] = {
            Cmd.VOLUME: ("volume", lambda v: v <= VOLUME_MAX),
            Cmd.MUTE: ("mute", lambda v: v in (0, 1)),
            Cmd.INPUT_SOURCE: ("input", lambda v: v in self.knobs.input_codes),
        }
        if cmd in setters:
            key, valid = setters[cmd]
            return self._value_command(cmd, data, key, valid)
        if cmd == Cmd.VOLUME_STEP and len(data) == 1 and data[0] in (0, 1) and self._power:
            step = -1 if data[0] else 1
            self._set("volume", min(VOLUME_MAX, max(0, self._volume + step)))
            return self._ack(cmd, bytes((self._volume,)))
        return self._nak(cmd)

    def _power_command(self, data: bytes) -> Reply:
        if not data:
            return self._ack(Cmd.POWER, bytes((int(self._power),)))
        if len(data) != 1 or data[0] not in tuple(Power):
            return self._nak(Cmd.POWER)
        if data[0] == Power.REBOOT:
            if not self._power:
                return self._nak(Cmd.POWER)
            self._power = False  # boot again from off
        self.press_power(data[0] != Power.OFF)
        return self._ack(Cmd.POWER, data)

    def _value_command(
        self, cmd: int, data: bytes, key: str, valid: Callable[[int], bool]
    ) -> Reply:
        """Get (no data) or set (one byte) a value; sets need power on and a valid value."""
        if not data:
            return self._ack(cmd, bytes((int(getattr(self, f"_{key}")),)))
        if len(data) != 1 or not valid(data[0]) or not self._power:
            return self._nak(cmd)
        self._set(key, bool(data[0]) if key == "mute" else data[0])
        return self._ack(cmd, data)
