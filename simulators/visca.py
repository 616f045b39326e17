"""Sony VISCA PTZ camera simulator: VISCA over IP (UDP, Sony mode) and serial (protocols/visca-ip.md §7).

`start()` serves VISCA over IP on UDP (or raw VISCA on TCP, knob `listen`); a
serial session (`start_pty`) speaks raw, `FF`-terminated VISCA to the same camera.
The camera has power, pan/tilt and zoom that move with speed and time between
limits, presets, and two command sockets: ACK at once, completion after a simulated
duration; a command with nothing to do (power on while on, stop while still)
completes at once and holds no socket, so a controller that sends the next command
on each ACK never fills the buffer.

Over IP it tracks each controller's (source address's) sequence number as cameras
do: any new number is accepted; the last number again is a retransmission, ignored
while that message runs and answered with ERROR `0F 01` once it is done. Knob
`strict_sequence` accepts only the last number + 1 (after the first or a RESET), for
tests of a driver's own numbering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import Field, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.visca.codec import (
    BROADCAST,
    HEADER,
    HEADER_LEN,
    IF_CLEAR,
    MAX_PACKET,
    MAX_SEQ,
    MESSAGE_ERROR,
    PAN_TILT_POSITION_INQUIRY,
    PORT,
    POWER_INQUIRY,
    POWER_OFF,
    POWER_ON,
    RESET,
    SEQUENCE_ERROR,
    TERMINATOR,
    VERSION_INQUIRY,
    ZOOM_POSITION_INQUIRY,
    Message,
    PayloadType,
    PresetAction,
    Reply,
    ReplyKind,
    ViscaError,
    decode_message,
    from_nibbles,
    nibbles,
    parse_command,
    parse_pan_tilt_drive,
    parse_zoom_drive,
)
from simulators.base import Knobs, Session, Simulator

log = logging.getLogger(__name__)

SOCKETS = (1, 2)
VERSION = bytes.fromhex("00 01 05 11 01 00 02")  # vendor Sony, model, ROM, 2 sockets

PowerState = Literal["off", "on", "warming", "cooling"]


class ViscaKnobs(Knobs):
    """VISCA camera knobs. Loss, duplicates and reordering act on UDP datagrams only."""

    address: int = Field(1, ge=1, le=7, description="camera address on the serial line")
    listen: Literal["udp", "tcp"] = Field(
        "udp",
        description="what start() serves: udp = VISCA over IP (Sony, with header); "
        "tcp = raw serial VISCA, as behind a serial-to-IP gateway",
    )
    power: Literal["off", "on"] = Field("on", description="power state at start")
    power_delay: Duration = Field(2.0, description="standby <-> on takes this long")
    completion_delay: Duration = Field(0.01, description="other commands complete after this")
    preset_delay: Duration = Field(0.3, description="a preset recall's move takes this long")
    presets: int = Field(16, ge=1, le=256, description="presets 0..N-1; others: syntax error")
    max_pan_speed: int = Field(0x18, ge=1, le=0xFF, description="faster: syntax error")
    max_tilt_speed: int = Field(0x14, ge=1, le=0xFF, description="faster: syntax error")
    pan_min: int = Field(-0x0990, description="pan limit, left")
    pan_max: int = Field(0x0990, description="pan limit, right")
    tilt_min: int = Field(-0x01B0, description="tilt limit, down")
    tilt_max: int = Field(0x0510, description="tilt limit, up")
    zoom_max: int = Field(0x4000, ge=1, le=0xFFFF, description="zoom position at full tele")
    pan_rate: float = Field(20.0, gt=0, description="pan/tilt units per second per speed step")
    zoom_rate: float = Field(500.0, gt=0, description="zoom units per second per speed step")
    drop_in: float = Field(0.0, ge=0, le=1, description="fraction of received datagrams lost")
    drop_out: float = Field(0.0, ge=0, le=1, description="fraction of sent datagrams lost")
    duplicate: float = Field(0.0, ge=0, le=1, description="fraction of datagrams doubled")
    reorder: float = Field(0.0, ge=0, le=1, description="fraction of replies held back")
    reorder_delay: Duration = Field(0.05, description="how long a held-back reply waits")
    strict_sequence: bool = Field(
        False,
        description="over IP, accept only the last sequence number + 1 (any number after "
        "the first message or a RESET): others get ERROR 0F 01; off: any new number is "
        "accepted, as cameras do",
    )

    @model_validator(mode="after")
    def _limits(self) -> ViscaKnobs:
        if not self.pan_min <= 0 <= self.pan_max or not self.tilt_min <= 0 <= self.tilt_max:
            raise ValueError("pan/tilt limits must include the home position 0")
        return self


class _Axis:
    """A position that moves at a speed between limits, read from the clock."""

    def __init__(self, position: float, low: float, high: float) -> None:
        self.low, self.high = low, high
        self._position = position
        self._speed = 0.0
        self._since = time.monotonic()

    def position(self) -> float:
        now = time.monotonic()
        moved = self._position + self._speed * (now - self._since)
        return max(self.low, min(self.high, moved))

    @property
    def speed(self) -> float:
        return self._speed

    def drive(self, speed: float) -> None:
        self._position, self._since, self._speed = self.position(), time.monotonic(), speed

    def move_to(self, position: float) -> None:
        self._position = max(self.low, min(self.high, position))
        self._since, self._speed = time.monotonic(), 0.0


class _Seq(Enum):
    NEW = "new"
    RUNNING = "running"  # a retransmission of a message still being executed
    ABNORMAL = "abnormal"


@dataclass(slots=True)
class _Controller:
    """Sequence tracking for one VISCA-over-IP peer; `last` None accepts any number."""

    last: int | None = None
    done: bool = True

    def check(self, seq: int, strict: bool) -> _Seq:
        """NEW: execute it; RUNNING: a retransmission of the running message; ABNORMAL."""
        if self.last is None:
            new = True
        elif strict:
            new = seq == (self.last + 1) & MAX_SEQ
        else:
            new = seq != self.last
        if new:
            self.last, self.done = seq, False
            return _Seq.NEW
        if seq == self.last and not self.done:
            return _Seq.RUNNING
        return _Seq.ABNORMAL


@dataclass(slots=True)
class _Job:
    """A command holding a socket until its completion."""

    session: Session
    seq: int | None
    socket: int
    handle: asyncio.TimerHandle
    revert: Callable[[], None]


Outcome = tuple[float | None, Callable[[], None], Callable[[], None]] | ViscaError
"""A command's (completion delay, effect at completion, undo on cancel), or its error.

Delay None: nothing to do, it completes at once without holding a socket."""


def _noop() -> None:
    pass


class ViscaSimulator(Simulator[ViscaKnobs]):
    """A PTZ camera on UDP (VISCA over IP) and/or serial ptys; see the module docstring.

    Counters for tests: `resets`, `sequence_errors`, `repeats` (retransmissions of a
    running message, ignored), `dropped_in`/`dropped_out`, and `received` (commands by
    name). `stop()` takes the camera off the network; its state carries on.

    Its device error is `90 6y 41` (not executable now). VISCA has no authentication.
    Stored presets survive a reboot; power, positions and sequence tracking do not.
    """

    kind = "visca"
    knobs_model = ViscaKnobs
    default_port = PORT
    terminators = bytes([TERMINATOR])
    line_end = bytes([TERMINATOR])  # a junk "line" (garbage_mode line) is a packet of its own
    max_frame = MAX_PACKET - 1

    serial = True

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The camera has the address, presets and speed limits the hub is configured for.

        A camera behind a serial gateway (socket://, rfc2217://) gets raw VISCA on TCP.
        """
        names = ("address", "presets", "max_pan_speed", "max_tilt_speed")
        options = {name: getattr(device, name) for name in names if hasattr(device, name)}
        if device.transport.scheme in ("socket", "rfc2217"):
            options["listen"] = "tcp"
        return options

    def __init__(self, knobs: ViscaKnobs | None = None) -> None:
        super().__init__(knobs)
        self.resets = 0
        self.sequence_errors = 0
        self.repeats = 0
        self.dropped_in = 0
        self.dropped_out = 0
        self.received: Counter[str] = Counter()
        self._presets: dict[int, tuple[float, float, float]] = {}
        self._jobs: dict[int, _Job] = {}
        self._controllers: dict[Session, _Controller] = {}
        self.reset_state()

    def reset_state(self) -> None:
        """Power as the knobs say, axes home and still, no command running, sequences forgotten."""
        k = self.knobs
        for job in self._jobs.values():
            job.handle.cancel()
        self._jobs.clear()
        self._controllers.clear()
        self.camera_address = k.address
        self._power: PowerState = k.power
        self._pan = _Axis(0, k.pan_min, k.pan_max)
        self._tilt = _Axis(0, k.tilt_min, k.tilt_max)
        self._zoom = _Axis(0, 0, k.zoom_max)
        self._drive = (0, 0)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve VISCA over IP (Sony mode) on UDP host:port, or raw VISCA on TCP (`listen`)."""
        if self.knobs.listen == "tcp":
            await super().start(host, port)
        else:
            await self.start_udp(host, port)

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def power(self) -> PowerState:
        return self._power

    @property
    def pan(self) -> int:
        return round(self._pan.position())

    @property
    def tilt(self) -> int:
        return round(self._tilt.position())

    @property
    def zoom(self) -> int:
        return round(self._zoom.position())

    @property
    def drive_speeds(self) -> tuple[int, int]:
        """The (pan, tilt) speeds of the last pan/tilt drive command, signed."""
        return self._drive

    @property
    def moving(self) -> bool:
        """True while any axis is being driven (even when held at its limit)."""
        return any(axis.speed for axis in (self._pan, self._tilt, self._zoom))

    def preset(self, number: int) -> tuple[int, int, int] | None:
        """The stored (pan, tilt, zoom) of a preset, or None."""
        stored = self._presets.get(number)
        return None if stored is None else (round(stored[0]), round(stored[1]), round(stored[2]))

    # -- front panel (tests; not over the network) ------------------------------

    def scramble_sequence(self) -> None:
        """Forget where every controller's sequence is, as a camera that lost track would."""
        for controller in self._controllers.values():
            controller.last = self.rng.randrange(MAX_SEQ)
            controller.done = True

    def set_power(self, on: bool) -> None:
        """The power button: on or standby at once."""
        self._power = "on" if on else "off"
        if not on:
            self._stop_axes()

    # -- sessions --------------------------------------------------------------

    def session_ended(self, session: Session) -> None:
        self._controllers.pop(session, None)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        if not session.datagram:
            self._handle_packet(session, frame + bytes([TERMINATOR]), None)
            return
        copies = 2 if self._chance(self.knobs.duplicate) else 1
        for _ in range(copies):
            if self._chance(self.knobs.drop_in):
                self.dropped_in += 1
                continue
            self._handle_datagram(session, frame)

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """`90 6y 41` (not executable) to a command or inquiry for this camera.

        Over IP the message passes the sequence check first (a retransmission or an
        abnormal number is answered as usual); the loss and duplicate knobs do not act
        on the incoming datagram, only on the reply.
        """
        if not session.datagram:
            return self._handle_packet(session, frame + bytes([TERMINATOR]), None, fail=True)
        return self._handle_datagram(session, frame, fail=True)

    def _chance(self, fraction: float) -> bool:
        return fraction > 0 and self.rng.random() < fraction

    def _handle_datagram(self, session: Session, data: bytes, fail: bool = False) -> bool:
        """Handle one VISCA-over-IP message; with `fail`, answer a command with the device
        error instead (True when it did)."""
        try:
            message = decode_message(data)
        except ProtocolError as err:
            log.info("%s: %s", session, err)
            if len(data) >= HEADER_LEN:
                self._control(session, HEADER.unpack_from(data)[2], MESSAGE_ERROR)
            return False
        seq = message.seq
        assert seq is not None
        controller = self._controllers.setdefault(session, _Controller())
        if message.type is PayloadType.CONTROL and message.payload == RESET:
            self.resets += 1
            controller.last, controller.done = None, True
            self._control(session, seq, RESET)
            return False
        if message.type not in (PayloadType.COMMAND, PayloadType.INQUIRY):
            self._control(session, seq, MESSAGE_ERROR)
            return False
        verdict = controller.check(seq, self.knobs.strict_sequence)
        if verdict is _Seq.RUNNING:
            self.repeats += 1
            return False
        if verdict is _Seq.ABNORMAL:
            self.sequence_errors += 1
            self._control(session, seq, SEQUENCE_ERROR)
            return False
        return self._handle_packet(session, message.payload, seq, fail)

    def _handle_packet(
        self, session: Session, data: bytes, seq: int | None, fail: bool = False
    ) -> bool:
        """Handle one VISCA packet; with `fail`, answer a command or inquiry for this camera
        with the device error instead (True when it did)."""
        try:
            address, body = parse_command(data)
        except ProtocolError as err:
            log.info("%s: %s", session, err)
            self._answer(session, seq, self._error(seq, 0, ViscaError.SYNTAX))
            return False
        if address == BROADCAST & 0x0F and seq is None:
            self._broadcast(session, body)
            return False
        if address != (self.camera_address if seq is None else 1):
            return False  # for another camera on the chain
        if fail:
            socket = 0 if body[:1] == b"\x09" else 1
            self._answer(session, seq, self._error(seq, socket, ViscaError.NOT_EXECUTABLE))
            return True
        if body[:1] == b"\x09":
            self._inquiry(session, seq, body)
        elif len(body) == 1 and body[0] & 0xF0 == 0x20:
            self._cancel(session, seq, body[0] & 0x0F)
        else:
            self._command(session, seq, body)
        return False

    def _broadcast(self, session: Session, body: bytes) -> None:
        """Daisy-chain set-up: address set takes the offered address and passes on the next."""
        if len(body) == 2 and body[0] == 0x30 and 1 <= body[1] <= 7:
            self.camera_address = body[1]
            self._send(session, None, bytes([BROADCAST, 0x30, body[1] + 1, TERMINATOR]))
        elif body == IF_CLEAR:
            self._send(session, None, bytes([BROADCAST]) + body + bytes([TERMINATOR]))

    # -- replies ---------------------------------------------------------------

    def _reply(self, seq: int | None, kind: ReplyKind, socket: int = 0, data: bytes = b"") -> Reply:
        """A reply from this camera: address 1 over IP, the chain address on serial."""
        return Reply(1 if seq is not None else self.camera_address, kind, socket, data)

    def _error(self, seq: int | None, socket: int, error: ViscaError) -> Reply:
        return Reply(
            1 if seq is not None else self.camera_address, ReplyKind.ERROR, socket, error=error
        )

    def _answer(self, session: Session, seq: int | None, reply: Reply) -> None:
        self._send(session, seq, reply.encode())
        if reply.kind is not ReplyKind.ACK:
            self._finished(session, seq)

    def _finished(self, session: Session, seq: int | None) -> None:
        controller = self._controllers.get(session)
        if controller is not None and controller.last == seq:
            controller.done = True

    def _control(self, session: Session, seq: int, payload: bytes) -> None:
        self._transmit(session, Message(PayloadType.CONTROL_REPLY, seq, payload).encode())

    def _send(self, session: Session, seq: int | None, packet: bytes) -> None:
        if seq is None:
            session.push(packet)
        else:
            self._transmit(session, Message(PayloadType.REPLY, seq, packet).encode())

    def _transmit(self, session: Session, datagram: bytes) -> None:
        """Send one datagram through the loss, duplicate and reorder knobs."""
        knobs = self.knobs
        for _ in range(2 if self._chance(knobs.duplicate) else 1):
            if self._chance(knobs.drop_out):
                self.dropped_out += 1
            elif self._chance(knobs.reorder):
                asyncio.get_running_loop().call_later(knobs.reorder_delay, session.push, datagram)
            else:
                session.push(datagram)

    # -- inquiries -------------------------------------------------------------

    def _inquiry(self, session: Session, seq: int | None, body: bytes) -> None:
        self.received[f"inquiry {body.hex()}"] += 1
        data: bytes | ViscaError
        if body == POWER_INQUIRY:
            data = bytes([0x02 if self._power in ("on", "cooling") else 0x03])
        elif body == VERSION_INQUIRY:
            data = VERSION
        elif body in (ZOOM_POSITION_INQUIRY, PAN_TILT_POSITION_INQUIRY):
            if self._power != "on":
                data = ViscaError.NOT_EXECUTABLE
            elif body == ZOOM_POSITION_INQUIRY:
                data = nibbles(self.zoom)
            else:
                data = nibbles(self.pan) + nibbles(self.tilt)
        else:
            data = ViscaError.SYNTAX
        if isinstance(data, ViscaError):
            self._answer(session, seq, self._error(seq, 0, data))
        else:
            self._answer(session, seq, self._reply(seq, ReplyKind.COMPLETION, 0, data))

    # -- commands --------------------------------------------------------------

    def _command(self, session: Session, seq: int | None, body: bytes) -> None:
        if body == IF_CLEAR:
            self.received["if_clear"] += 1
            self._answer(session, seq, self._reply(seq, ReplyKind.COMPLETION))
            return
        free = [s for s in SOCKETS if s not in self._jobs]
        socket = free[0] if free else 0
        outcome = self._outcome(body)
        if not free and not isinstance(outcome, ViscaError):
            outcome = ViscaError.BUFFER_FULL
        if isinstance(outcome, ViscaError):
            socket = socket if outcome is ViscaError.NOT_EXECUTABLE else 0  # 90 60 02, 90 61 41
            self._answer(session, seq, self._error(seq, socket, outcome))
            return
        delay, effect, revert = outcome
        self._answer(session, seq, self._reply(seq, ReplyKind.ACK, socket))
        if delay is None:
            self._complete(session, seq, socket, effect)
            return
        handle = asyncio.get_running_loop().call_later(
            delay, self._complete, session, seq, socket, effect
        )
        self._jobs[socket] = _Job(session, seq, socket, handle, revert)

    def _complete(
        self, session: Session, seq: int | None, socket: int, effect: Callable[[], None]
    ) -> None:
        self._jobs.pop(socket, None)
        effect()
        self._answer(session, seq, self._reply(seq, ReplyKind.COMPLETION, socket))

    def _cancel(self, session: Session, seq: int | None, socket: int) -> None:
        self.received["cancel"] += 1
        job = self._jobs.pop(socket, None)
        if job is None:
            self._answer(session, seq, self._error(seq, socket, ViscaError.NO_SOCKET))
            return
        job.handle.cancel()
        job.revert()
        self._answer(job.session, job.seq, self._error(job.seq, socket, ViscaError.CANCELLED))
        self._finished(session, seq)  # the cancelled command's error answers the cancel too

    def _outcome(self, body: bytes) -> Outcome:
        """Start a command: what it does and when it completes, or why it cannot run."""
        quick = self.knobs.completion_delay
        if body in (POWER_ON, POWER_OFF):
            return self._power_command(body == POWER_ON)
        if self._power != "on":
            return ViscaError.NOT_EXECUTABLE
        if body[:3] == b"\x01\x04\x07":
            return self._zoom_drive(body)
        if body[:3] == b"\x01\x04\x47" and len(body) == 7:
            self.received["zoom_direct"] += 1
            self._zoom.move_to(from_nibbles(body[3:]))
            return quick, _noop, _noop
        if body[:3] == b"\x01\x06\x01":
            return self._pan_tilt_drive(body)
        if body == b"\x01\x06\x04":
            self.received["home"] += 1
            self._pan.move_to(0)
            self._tilt.move_to(0)
            return quick, _noop, _noop
        if body[:3] == b"\x01\x04\x3f" and len(body) == 5:
            return self._memory(body[3], body[4])
        return ViscaError.SYNTAX

    def _power_command(self, on: bool) -> Outcome:
        self.received["power_on" if on else "power_off"] += 1
        stable: PowerState = "on" if on else "off"
        old: PowerState = "off" if on else "on"
        if self._power == stable:
            return None, _noop, _noop
        if self._power != old:  # already switching
            return ViscaError.NOT_EXECUTABLE
        self._power = "warming" if on else "cooling"
        if not on:
            self._stop_axes()

        def done() -> None:
            self._power = stable

        def undo() -> None:
            self._power = old

        return self.knobs.power_delay, done, undo

    def _zoom_drive(self, body: bytes) -> Outcome:
        self.received["zoom"] += 1
        try:
            speed = parse_zoom_drive(body)
        except ValueError:
            return ViscaError.SYNTAX
        rate = speed * self.knobs.zoom_rate
        if rate == self._zoom.speed:
            return None, _noop, _noop
        self._zoom.drive(rate)
        return self.knobs.completion_delay, _noop, _noop

    def _pan_tilt_drive(self, body: bytes) -> Outcome:
        self.received["pan_tilt"] += 1
        try:
            pan, tilt = parse_pan_tilt_drive(body)
        except ValueError:
            return ViscaError.SYNTAX
        speeds_ok = 1 <= body[3] <= self.knobs.max_pan_speed
        if not speeds_ok or not 1 <= body[4] <= self.knobs.max_tilt_speed:
            return ViscaError.SYNTAX
        self._drive = (pan, tilt)
        pan_rate, tilt_rate = pan * self.knobs.pan_rate, tilt * self.knobs.pan_rate
        if (self._pan.speed, self._tilt.speed) == (pan_rate, tilt_rate):
            return None, _noop, _noop
        self._pan.drive(pan_rate)
        self._tilt.drive(tilt_rate)
        return self.knobs.completion_delay, _noop, _noop

    def _memory(self, operation: int, number: int) -> Outcome:
        if number >= self.knobs.presets or operation not in PresetAction._value2member_map_:
            return ViscaError.SYNTAX
        action = PresetAction(operation)
        self.received[f"preset_{action.name.lower()}"] += 1
        quick = self.knobs.completion_delay
        if action is PresetAction.STORE:
            self._presets[number] = (
                self._pan.position(),
                self._tilt.position(),
                self._zoom.position(),
            )
        elif action is PresetAction.RESET:
            self._presets.pop(number, None)
        else:
            pan, tilt, zoom = self._presets.get(number, (0.0, 0.0, 0.0))
            self._stop_axes()

            def arrive() -> None:
                self._pan.move_to(pan)
                self._tilt.move_to(tilt)
                self._zoom.move_to(zoom)

            return self.knobs.preset_delay, arrive, _noop
        return quick, _noop, _noop

    def _stop_axes(self) -> None:
        for axis in (self._pan, self._tilt, self._zoom):
            axis.drive(0.0)
