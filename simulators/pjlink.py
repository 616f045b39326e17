"""PJLink class 1/2 projector simulator (protocols/pjlink.md §8, items 1-9 and 11)."""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.pjlink.codec import (
    MAC,
    MAX_LINE,
    MAX_PASSWORD,
    MUTES,
    PORT,
    POWER_CODES,
    SEARCH,
    TERMINATOR,
    AuthFailure,
    Command,
    Greeting,
    PjlinkError,
    Reply,
    auth_digest,
    default_input_name,
    is_input_code,
    mutes_code,
    parse_command,
)
from simulators.base import AuthKnobs, Session, Simulator

log = logging.getLogger(__name__)

DIGEST_LEN = 32
VOLUME_MAX = 100
_PORT_TRIES = 10  # ephemeral TCP ports tried for one whose number is free on UDP too
OK = "OK"
ERR1, ERR2, ERR3, ERR4 = PjlinkError  # str members: "ERR1" ... "ERR4"
_HEADER = re.compile(rb"^%([12])([A-Za-z0-9]{4})")
_CLASS1_INPUT = re.compile(r"^[1-5][1-9]$")

PowerState = Literal["off", "on", "warming", "cooling"]
SendListener = Callable[[bytes], None]
"""Called with each class 2 notification datagram just before it is sent."""


class PjlinkKnobs(AuthKnobs):
    """PJLink device knobs. State knobs (power, input, lamp_hours, ...) only set the start state."""

    password: str | None = Field(
        None, min_length=1, max_length=MAX_PASSWORD, description="require MD5 auth"
    )
    nonce: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{8}$",
        description="fixed 8-hex-digit auth nonce; unset: random per session",
    )
    pjclass: Literal[1, 2] = Field(2, description="1 answers every %2 command with ERR1")
    power: Literal["off", "on"] = Field("off", description="power state at start")
    warmup: Duration = Field(5.0, description="warming → on")
    cooldown: Duration = Field(5.0, description="cooling → off")
    power_in_transition: Literal["err3", "ignore", "apply"] = Field(
        "err3",
        description="POWR set while warming/cooling: err3 = ERR3; ignore = OK, no change; "
        "apply = OK and reverse the transition when the request asks for the other state",
    )
    standby_lockout: Literal["all", "set", "none"] = Field(
        "all", description="INPT/AVMT/FREZ while not on answer ERR3: all, only sets, or none"
    )
    inputs: list[str] = Field(
        default_factory=lambda: ["11", "31", "32", "51"], description="input codes (INST)"
    )
    input_names: dict[str, str] = Field(
        default_factory=dict, description="INNM names by code; others get e.g. HDMI 1"
    )
    input: str | None = Field(None, description="selected input at start; unset: the first")
    lamp: bool = Field(True, description="--no-lamp: LAMP answers ERR1, like a laser projector")
    lamp_hours: int = Field(0, ge=0, description="lamp hours at start")
    lamp_hours_per_second: float = Field(
        0.0, ge=0, description="lamp/filter hours gained per second on"
    )
    filter_hours: int | None = Field(0, ge=0, description="filter hours at start; none: FILT ERR1")
    errors: str = Field("000000", pattern=r"^[012]{6}$", description="ERST digits at start")
    err4: list[str] = Field(default_factory=list, description="bodies that answer ERR4")
    manufacturer: str = Field("AVHUB", max_length=128, description="INF1")
    model: str = Field("SIM-PJ2", max_length=128, description="INF2")
    name: str = Field("Simulated projector", max_length=128, description="NAME")
    info: str = Field("", max_length=128, description="INFO")
    serial_number: str = Field("SIM00001", max_length=128, description="SNUM")
    software_version: str = Field("1.0.0", max_length=128, description="SVER")
    resolution: str = Field("1920x1080", max_length=128, description="IRES while on")
    recommended_resolution: str = Field("1920x1200", max_length=128, description="RRES")
    lamp_model: str = Field("LMP-SIM1", max_length=128, description="RLMP")
    filter_model: str = Field("FLT-SIM1", max_length=128, description="RFIL")
    lowercase: bool = Field(False, description="answer in lowercase, e.g. %1powr=ok")
    mac: str = Field("00:1a:2b:3c:4d:5e", pattern=MAC.pattern, description="MAC in %2ACKN/%2LKUP")
    udp: bool = Field(
        False,
        description="class 2 over UDP on the TCP port's number: answer %2SRCH, send notifications",
    )
    notify: str | None = Field(
        None,
        description="HOST:PORT that gets class 2 notifications (%2LKUP, %2POWR, ...); implies udp",
    )
    idle_timeout: Duration | None = Field(
        30.0, gt=0, description="close a session when no command arrived for this long"
    )

    @field_validator("inputs")
    @classmethod
    def _input_codes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("need at least one input")
        for code in value:
            if not is_input_code(code):
                raise ValueError(f"{code!r} is not a PJLink input code (like 31 or 3A)")
        if len(set(value)) != len(value):
            raise ValueError("input codes repeat")
        return value

    @field_validator("err4")
    @classmethod
    def _bodies(cls, value: list[str]) -> list[str]:
        if bad := [b for b in value if not re.fullmatch(r"[A-Za-z0-9]{4}", b)]:
            raise ValueError(f"not 4-character PJLink bodies: {bad}")
        return [b.upper() for b in value]

    @model_validator(mode="after")
    def _known_inputs(self) -> PjlinkKnobs:
        if self.input is not None and self.input not in self.inputs:
            raise ValueError(f"input {self.input!r} is not one of inputs {self.inputs}")
        if extra := sorted(set(self.input_names) - set(self.inputs)):
            raise ValueError(f"input_names for codes not in inputs: {extra}")
        return self


class PjlinkSimulator(Simulator[PjlinkKnobs]):
    """A PJLink projector: auth, power state machine, lockouts, class 1/2 bodies, front panel.

    Replies echo the request's class digit. `%1` takes the class 1 bodies, `%2` the
    class 2 ones (INPT, INST, SNUM, ...); any other body, or any `%2` line on a class 1
    simulator, answers ERR1. Lines without a `%<1|2><body>` header, and lines over
    136 bytes, get no answer and are logged; the connection stays open.

    `stop()` takes the projector off the network; its state, including a running
    warm-up, carries on, so `start()` on the same port continues where it was.

    Faults: its device error is ERR4 (projector failure); `fail_auth` asks every new
    connection for a digest (`PJLINK 1`) and answers any with `PJLINK ERRA`. Refusing
    connections (and rebooting) also takes the class 2 UDP side off the network, and a
    stalled projector neither answers searches nor sends notifications.
    """

    kind = "pjlink"
    knobs_model = PjlinkKnobs
    default_port = PORT
    terminators = b"\r\n"  # CR ends a line; a following LF (or a bare LF) is tolerated
    line_end = TERMINATOR
    max_frame = MAX_LINE - 1 + DIGEST_LEN  # the first line may carry the digest too

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The password the hub is configured with; class 2 UDP on, for notifications."""
        password = getattr(device, "password", None)
        return {"udp": True, **({"password": password} if password else {})}

    def __init__(self, knobs: PjlinkKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # commands per body, errors included
        self._timer: asyncio.TimerHandle | None = None
        self.reset_state()
        self.add_listener(self._notify_change)
        self._send_listeners: list[SendListener] = []
        self._search: asyncio.DatagramTransport | None = None
        self._awaiting_auth: dict[Session, str] = {}
        self._class1: dict[str, Callable[[Command], str]] = {
            "POWR": self._powr,
            "INPT": self._inpt,
            "AVMT": self._avmt,
            "ERST": self._query(lambda: self._errors),
            "LAMP": self._lamp,
            "INST": self._inst,
            "NAME": self._query(lambda: self.knobs.name),
            "INF1": self._query(lambda: self.knobs.manufacturer),
            "INF2": self._query(lambda: self.knobs.model),
            "INFO": self._query(lambda: self.knobs.info),
            "CLSS": self._query(lambda: str(self.knobs.pjclass)),
        }
        self._class2: dict[str, Callable[[Command], str]] = {
            "INPT": self._inpt,
            "INST": self._inst,
            "SNUM": self._query(lambda: self.knobs.serial_number),
            "SVER": self._query(lambda: self.knobs.software_version),
            "INNM": self._innm,
            "IRES": self._query(lambda: self.knobs.resolution if self._power == "on" else "-"),
            "RRES": self._query(lambda: self.knobs.recommended_resolution),
            "FILT": self._filt,
            "FREZ": self._frez,
            "SVOL": self._svol,
            "MVOL": self._mvol,
            "RLMP": self._query(lambda: self.knobs.lamp_model),
            "RFIL": self._query(lambda: self.knobs.filter_model),
        }

    def reset_state(self) -> None:
        """Power, input, mutes, volumes, errors and hours as the knobs set them at start."""
        k = self.knobs
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._power: PowerState = k.power
        self._input = k.input or k.inputs[0]
        self._video_mute = False
        self._audio_mute = False
        self._freeze = False
        self._volume = VOLUME_MAX // 2
        self._microphone_volume = VOLUME_MAX // 2
        self._errors = k.errors
        self._lamp_hours = float(k.lamp_hours)
        self._filter_hours = None if k.filter_hours is None else float(k.filter_hours)
        self._hours_since = time.monotonic()

    # -- class 2 over UDP: search answers and status notifications -------------

    async def _listen(self, port: int) -> None:
        """Listen on TCP; with `udp` or `notify`, also on UDP at the same port number.

        An ephemeral TCP port's number may be taken on UDP by another process: then
        another port is tried (a port asked for by number fails as it is).
        """
        loop = asyncio.get_running_loop()
        for attempt in range(1, _PORT_TRIES + 1):
            await super()._listen(port)
            if not (self.knobs.udp or self.knobs.notify):
                return
            try:
                self._search, _ = await loop.create_datagram_endpoint(
                    lambda: _SearchProtocol(self), local_addr=(self.host, self.port)
                )
            except OSError as err:
                super()._unlisten()
                if port or err.errno != errno.EADDRINUSE or attempt == _PORT_TRIES:
                    raise
                continue
            self._notify("LKUP", self.knobs.mac)
            return

    def _unlisten(self) -> None:
        search, self._search = self._search, None
        if search is not None:
            search.close()
        super()._unlisten()

    def _notify(self, body: str, param: str) -> None:
        target = self.knobs.notify
        if self._search is None or not target or self.knobs.stall:
            return
        host, _, port = target.rpartition(":")
        data = self._encode(Reply(2, body, param).encode())
        for listener in self._send_listeners:
            listener(data)
        self._search.sendto(data, (host.strip("[]"), int(port)))

    def _notify_change(self, key: str, value: object) -> None:
        if key == "power" and isinstance(value, str):
            self._notify("POWR", POWER_CODES[value])
        elif key == "input" and isinstance(value, str):
            self._notify("INPT", value)
        elif key == "errors" and isinstance(value, str):
            self._notify("ERST", value)
        elif key in ("video_mute", "audio_mute"):
            self._notify("AVMT", mutes_code(self._video_mute, self._audio_mute))

    def _answer_search(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.knobs.stall:  # a hung projector answers nothing, here either
            self.stalled += 1
            return
        if data.strip(b"\r\n").upper() != SEARCH.strip():
            log.info("pjlink simulator: ignored UDP datagram %r from %s", data[:40], addr)
            return
        if self._search is not None and self.knobs.pjclass >= 2:
            self._search.sendto(self._encode(Reply(2, "ACKN", self.knobs.mac).encode()), addr)

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def power(self) -> PowerState:
        """Power state: off, on, warming or cooling."""
        return self._power

    @property
    def input(self) -> str:
        return self._input

    @property
    def video_mute(self) -> bool:
        return self._video_mute

    @property
    def audio_mute(self) -> bool:
        return self._audio_mute

    @property
    def freeze(self) -> bool:
        return self._freeze

    @property
    def volume(self) -> int:
        return self._volume

    @property
    def microphone_volume(self) -> int:
        return self._microphone_volume

    @property
    def errors(self) -> str:
        return self._errors

    @property
    def lamp_hours(self) -> int:
        return int(self._lamp_hours + self._hours_gained())

    @property
    def filter_hours(self) -> int | None:
        return (
            None if self._filter_hours is None else int(self._filter_hours + self._hours_gained())
        )

    def add_send_listener(self, listener: SendListener) -> Callable[[], None]:
        """Call `listener(datagram)` just before each notification is sent (timestamps)."""
        self._send_listeners.append(listener)
        return lambda: self._send_listeners.remove(listener)

    # -- front panel (tests; not over the network) ------------------------------

    def press_power(self, on: bool) -> bool:
        """The power button: same state machine as POWR; False where POWR would get ERR3.

        Needs a running event loop unless warmup/cooldown are 0.
        """
        return self._request_power(on) == OK

    def set_input(self, code: str) -> None:
        """Select an input, bypassing the standby lockout; ValueError for unknown codes."""
        if code not in self.knobs.inputs:
            raise ValueError(f"no input {code!r}; inputs are {self.knobs.inputs}")
        self._set_input(code)

    def set_mutes(self, video: bool | None = None, audio: bool | None = None) -> None:
        """Set video and/or audio mute (None leaves one as it is)."""
        if video is not None and video != self._video_mute:
            self._video_mute = video
            self.state_changed("video_mute", video)
        if audio is not None and audio != self._audio_mute:
            self._audio_mute = audio
            self.state_changed("audio_mute", audio)

    def set_freeze(self, on: bool) -> None:
        if on != self._freeze:
            self._freeze = on
            self.state_changed("freeze", on)

    def set_errors(self, digits: str) -> None:
        """Set the six ERST digits (fan, lamp, temperature, cover, filter, other)."""
        if not re.fullmatch(r"[012]{6}", digits):
            raise ValueError(f"ERST needs six digits 0-2, got {digits!r}")
        if digits != self._errors:
            self._errors = digits
            self.state_changed("errors", digits)

    def set_lamp_hours(self, hours: int) -> None:
        self._fold_hours()
        self._lamp_hours = float(hours)
        self.state_changed("lamp_hours", hours)

    # -- sessions --------------------------------------------------------------

    async def session_started(self, session: Session) -> None:
        nonce = None
        if self.knobs.password is not None or self.knobs.fail_auth:
            nonce = self.knobs.nonce or secrets.token_hex(4)
            self._awaiting_auth[session] = nonce
        await session.send(self._encode(Greeting(nonce).encode()))

    def session_ended(self, session: Session) -> None:
        self._awaiting_auth.pop(session, None)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        nonce = self._awaiting_auth.pop(session, None)
        if nonce is not None:
            if not self._digest_ok(frame, nonce):
                log.info("%s: authentication failed", session)
                await session.send(self._encode(AuthFailure().encode()))
                session.close()
                return
            frame = frame[DIGEST_LEN:]
        if len(frame) + len(TERMINATOR) > MAX_LINE:
            log.warning("%s: line over %d bytes ignored: %r...", session, MAX_LINE, frame[:40])
            return
        reply = self._answer(frame)
        if reply is None:
            log.warning("%s: ignoring malformed line %r", session, frame[:60])
            return
        await session.send(self._encode(reply.encode()))

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """ERR4 (projector failure) for any command once the session is past its login."""
        m = _HEADER.match(frame)
        if session in self._awaiting_auth or m is None:
            return False
        reply = Reply(int(m.group(1)), m.group(2).decode().upper(), ERR4)
        await session.send(self._encode(reply.encode()))
        return True

    def _digest_ok(self, frame: bytes, nonce: str) -> bool:
        password = self.knobs.password
        if self.knobs.fail_auth:
            return False
        if password is None:  # password removed while this session waited
            return True
        expected = auth_digest(nonce, password).encode()
        return hmac.compare_digest(frame[:DIGEST_LEN].lower(), expected)

    def _encode(self, line: bytes) -> bytes:
        return line.lower() if self.knobs.lowercase else line

    def _answer(self, line: bytes) -> Reply | None:
        """The reply to one command line; None when the line has no `%<class><body>` header."""
        m = _HEADER.match(line)
        if m is None:
            return None
        pjclass, body = int(m.group(1)), m.group(2).decode().upper()
        self.received[body] += 1
        try:
            _, command = parse_command(line)
        except ProtocolError:  # header fine, separator or parameter missing
            return Reply(pjclass, body, ERR1)
        return Reply(pjclass, body, self._dispatch(command))

    def _dispatch(self, command: Command) -> str:
        if command.pjclass > self.knobs.pjclass:
            return ERR1
        table = self._class1 if command.pjclass == 1 else self._class2
        handler = table.get(command.body)
        if handler is None:
            return ERR1
        if command.body in self.knobs.err4:
            return ERR4
        return handler(command)

    # -- command bodies --------------------------------------------------------

    @staticmethod
    def _query(value: Callable[[], str]) -> Callable[[Command], str]:
        return lambda command: value() if command.param == "?" else ERR2

    def _locked(self, command: Command) -> bool:
        """True when INPT/AVMT/FREZ must answer ERR3 (projector not on)."""
        mode = self.knobs.standby_lockout
        if self._power == "on" or mode == "none":
            return False
        return mode == "all" or command.param != "?"

    def _powr(self, command: Command) -> str:
        if command.param == "?":
            return POWER_CODES[self._power]
        if command.param not in ("0", "1"):
            return ERR2
        return self._request_power(command.param == "1")

    def _inpt(self, command: Command) -> str:
        code = command.param
        if code == "?":
            return ERR3 if self._locked(command) else self._input
        if code not in self.knobs.inputs or (
            command.pjclass == 1 and not _CLASS1_INPUT.match(code)
        ):
            return ERR2
        if self._locked(command):
            return ERR3
        self._set_input(code)
        return OK

    def _avmt(self, command: Command) -> str:
        if command.param == "?":
            if self._locked(command):
                return ERR3
            return mutes_code(self._video_mute, self._audio_mute)
        if command.param not in MUTES:
            return ERR2
        if self._locked(command):
            return ERR3
        self.set_mutes(*MUTES[command.param])
        return OK

    def _frez(self, command: Command) -> str:
        if command.param not in ("?", "0", "1"):
            return ERR2
        if self._locked(command):
            return ERR3
        if command.param == "?":
            return "1" if self._freeze else "0"
        self.set_freeze(command.param == "1")
        return OK

    def _lamp(self, command: Command) -> str:
        if not self.knobs.lamp:
            return ERR1
        if command.param != "?":
            return ERR2
        return f"{self.lamp_hours} {1 if self._power == 'on' else 0}"

    def _filt(self, command: Command) -> str:
        hours = self.filter_hours
        if hours is None:
            return ERR1
        return str(hours) if command.param == "?" else ERR2

    def _inst(self, command: Command) -> str:
        if command.param != "?":
            return ERR2
        codes = self.knobs.inputs
        if command.pjclass == 1:
            codes = [c for c in codes if _CLASS1_INPUT.match(c)]
        return " ".join(codes)

    def _innm(self, command: Command) -> str:
        code = command.param[1:]
        if not command.param.startswith("?") or code not in self.knobs.inputs:
            return ERR2
        return self.knobs.input_names.get(code) or default_input_name(code)

    def _svol(self, command: Command) -> str:
        if command.param not in ("0", "1"):
            return ERR2
        step = 1 if command.param == "1" else -1
        self._volume = self._step_volume("volume", self._volume, step)
        return OK

    def _mvol(self, command: Command) -> str:
        if command.param not in ("0", "1"):
            return ERR2
        step = 1 if command.param == "1" else -1
        self._microphone_volume = self._step_volume(
            "microphone_volume", self._microphone_volume, step
        )
        return OK

    def _step_volume(self, key: str, value: int, step: int) -> int:
        new = min(VOLUME_MAX, max(0, value + step))  # at the limit it still answers OK
        if new != value:
            self.state_changed(key, new)
        return new

    # -- power state machine ---------------------------------------------------

    def _request_power(self, on: bool) -> str:
        """POWR 1/0 semantics: OK, or ERR3 during a transition when power_in_transition is err3."""
        if self._power in ("warming", "cooling"):
            mode = self.knobs.power_in_transition
            if mode == "err3":
                return ERR3
            if mode == "apply" and (self._power == "warming") != on:
                self._begin_transition(on)
            return OK
        if self._power != ("on" if on else "off"):
            self._begin_transition(on)
        return OK

    def _begin_transition(self, on: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._set_power("warming" if on else "cooling")
        delay = self.knobs.warmup if on else self.knobs.cooldown
        final: PowerState = "on" if on else "off"
        if delay <= 0:
            self._set_power(final)
        else:
            self._timer = asyncio.get_running_loop().call_later(delay, self._end_transition, final)

    def _end_transition(self, final: PowerState) -> None:
        self._timer = None
        self._set_power(final)

    def _set_power(self, state: PowerState) -> None:
        self._fold_hours()
        self._power = state
        self.state_changed("power", state)
        if state != "on":
            self.set_freeze(False)

    def _hours_gained(self) -> float:
        if self._power != "on":
            return 0.0
        return (time.monotonic() - self._hours_since) * self.knobs.lamp_hours_per_second

    def _fold_hours(self) -> None:
        gained = self._hours_gained()
        self._lamp_hours += gained
        if self._filter_hours is not None:
            self._filter_hours += gained
        self._hours_since = time.monotonic()

    def _set_input(self, code: str) -> None:
        if code != self._input:
            self._input = code
            self.state_changed("input", code)


class _SearchProtocol(asyncio.DatagramProtocol):
    def __init__(self, sim: PjlinkSimulator) -> None:
        self.sim = sim

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sim._answer_search(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("pjlink simulator: UDP error: %s", exc)
