"""Sony VISCA PTZ camera driver: VISCA over IP (UDP, sequence numbers) or a serial line.

Every message waits for its reply before the next one goes out. A command is done
on its completion (`y0 5z`), not on its ACK. Over IP, replies are matched by
sequence number; a message that got no answer is retransmitted with the same
number, and a sequence error from the camera (control ERROR `0F 01`) is answered
with a RESET. On serial, replies are matched by camera address and socket.

Over IP a number is never taken twice (until the 32-bit counter wraps), not even
after a RESET: the RESET only clears what the camera expects, and any number it has
not just seen is new to it then. Numbering from 0 again would give a new message
the number of one sent before the RESET, whose late reply (a completion that took
its time, a datagram held up on the network or behind a stalled event loop) would
then pass for the new message's answer.

On serial there are no numbers, but the byte stream keeps the camera's order: what
it sent for earlier messages arrives before the ACK of the next command, and a
completion before the ACK is stale (`_Exchange.first`). After the ACK only the
completion of that ACK's socket counts; the camera frees a socket by sending its
completion, so an older command's completion never names the socket a newer one
was given. A late inquiry reply (one more than the answered inquiry needed, after a
retransmission) is dropped while a command runs, so no answer from before a
command is taken for the state after it; an inquiry sent right after such a one may
take it, and a reply of the wrong shape fails that read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum
from typing import Final, TypeVar

from pydantic import Field

from drivers.actions import Args, action
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import (
    AvhubError,
    CommandError,
    CommandTimeout,
    DeviceError,
    ErrorCode,
    ProtocolError,
)
from drivers.transport.base import ConnectionState
from drivers.visca.codec import (
    CONTROL_TYPES,
    IF_CLEAR,
    MAX_SEQ,
    MESSAGE_ERROR,
    PAN_TILT_POSITION_INQUIRY,
    PAN_TILT_STOP,
    POWER_INQUIRY,
    POWER_OFF,
    POWER_ON,
    RESET,
    SEQUENCE_ERROR,
    ZOOM_POSITION_INQUIRY,
    ZOOM_STOP,
    DatagramFramer,
    Message,
    PayloadType,
    PresetAction,
    Reply,
    ReplyKind,
    SerialFramer,
    ViscaError,
    error_meaning,
    memory,
    packet,
    pan_tilt_drive,
    pan_tilt_position,
    parse_reply,
    power_value,
    zoom_drive,
    zoom_position,
)
from drivers.visca.config import ViscaConfig

log = logging.getLogger("avhub.driver.visca")

IP_ADDRESS = 1  # VISCA over IP always addresses camera 1
R = TypeVar("R")

_ERROR_CODES: dict[int | None, ErrorCode] = {
    ViscaError.SYNTAX: ErrorCode.INVALID_ARGS,
    ViscaError.BUFFER_FULL: ErrorCode.BUSY,
    ViscaError.NOT_EXECUTABLE: ErrorCode.BUSY,
}


class _Phase(Enum):
    ACKED = "ACKED"

    def __repr__(self) -> str:
        return self.name


ACKED: Final = _Phase.ACKED
"""The first-phase answer of a command the camera accepted but has not completed yet."""


class ViscaDeviceError(DeviceError):
    """The camera answered a VISCA error reply (`y0 6z <code> FF`)."""

    def __init__(self, message: str, error: ViscaError | int | None) -> None:
        super().__init__(_ERROR_CODES.get(error, ErrorCode.DEVICE_ERROR), message)
        self.error = error


class SequenceError(ProtocolError):
    """The camera reported an abnormal sequence number; `acked` if it had accepted the message."""

    def __init__(self, message: str, acked: bool) -> None:
        super().__init__(message)
        self.acked = acked


class _Exchange:
    """One VISCA message and the replies that belong to it (by sequence number, else socket)."""

    def __init__(
        self, label: str, wire: bytes, seq: int | None, address: int, inquiry: bool, what: str
    ) -> None:
        self.label = label
        self.wire = wire
        self.seq = seq
        self.address = address
        self.inquiry = inquiry
        self.what = what
        self.socket: int | None = None  # from the ACK

    def _reply(self, frame: Message) -> Reply | None:
        if self.seq is not None and frame.seq != self.seq:
            return None
        if frame.type in CONTROL_TYPES:
            if frame.payload == SEQUENCE_ERROR:
                raise SequenceError(
                    f"{self.what}: camera reported a sequence error (seq {self.seq})",
                    acked=self.socket is not None,
                )
            if frame.payload == MESSAGE_ERROR:
                raise DeviceError(
                    ErrorCode.DEVICE_ERROR,
                    f"{self.what}: camera rejected the message (ERROR 0F 02)",
                )
            return None
        try:
            reply = parse_reply(frame.payload)
        except ProtocolError as err:
            log.warning("%s: skipped bad reply: %s", self.label, err)
            return None
        return reply if reply.address == self.address else None

    def _error(self, reply: Reply) -> ViscaDeviceError:
        return ViscaDeviceError(f"{self.what}: {error_meaning(reply.error)}", reply.error)

    def first(self, frame: Message) -> bytes | _Phase | Wait:
        """Match the ACK (commands), the completion or inquiry reply, or an error."""
        reply = self._reply(frame)
        if reply is None:
            return NOT_MINE
        if reply.kind is ReplyKind.ERROR:
            raise self._error(reply)
        if reply.kind is ReplyKind.ACK and not self.inquiry:
            self.socket = reply.socket
            return ACKED
        if reply.kind is not ReplyKind.COMPLETION or (reply.socket == 0) != self.inquiry:
            return NOT_MINE
        if self.seq is None and not self.inquiry:
            return NOT_MINE  # serial has no sequence numbers: a completion before the ACK is stale
        return reply.data

    def completion(self, frame: Message) -> bytes | Wait:
        """Match the completion (or error) of the socket the ACK named."""
        reply = self._reply(frame)
        if reply is None or reply.kind not in (ReplyKind.COMPLETION, ReplyKind.ERROR):
            return NOT_MINE
        if self.seq is None and reply.socket != self.socket:
            return NOT_MINE
        if reply.kind is ReplyKind.ERROR:
            raise self._error(reply)
        return reply.data


class PanTilt(Args):
    pan: int = Field(0, description="pan speed: + right, - left, 0 stops panning")
    tilt: int = Field(0, description="tilt speed: + up, - down, 0 stops tilting")


class Zoom(Args):
    speed: int = Field(description="+ tele, - wide, 0 stop; 1 (slow) to 8 (fast)")


class Preset(Args):
    preset: int = Field(ge=0, le=255)


def _clamp(speed: int, limit: int) -> int:
    return max(-limit, min(limit, speed))


class ViscaDriver(Driver[ViscaConfig, Message]):
    """A PTZ camera: power, pan/tilt and zoom drives, presets; positions polled."""

    name = "visca"

    _seq = 0
    _completion: tuple[_Exchange, asyncio.Future[bytes]] | None = None

    @property
    def serial(self) -> bool:
        return self.config.transport.is_serial

    @property
    def address(self) -> int:
        return self.config.address if self.serial else IP_ADDRESS

    def create_framer(self) -> DatagramFramer | SerialFramer:
        return SerialFramer() if self.serial else DatagramFramer()

    async def login(self) -> None:
        """IP: RESET the camera's sequence counter. Serial: IF_Clear the camera's buffers."""
        if self.serial:
            await self.ask(IF_CLEAR, "IF_Clear", inquiry=True)
        else:
            await self._reset()

    def unsolicited(self, frame: Message) -> None:
        waiting = self._completion
        if waiting is not None and not waiting[1].done():
            exchange, future = waiting
            try:
                result = exchange.completion(frame)
            except AvhubError as err:
                future.set_exception(err)
                return
            if isinstance(result, bytes):
                future.set_result(result)
                return
        log.debug("%s: ignored a late or duplicate reply: %s", self.label, frame)

    # ---- messages -------------------------------------------------------------------

    async def _request(self, wire: bytes, match: Callable[[Message], R | Wait]) -> R:
        """`request`, with the retransmissions login's single try would not make."""
        tries = 1 + self.config.retries if self.conn_state is ConnectionState.LOGGING_IN else 1
        for attempt in range(tries):
            try:
                return await self.request(wire, match, self.config.timeout)
            except CommandTimeout:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    async def _reset(self) -> None:
        """Clear the camera's sequence expectation; our numbering carries on (module docstring).

        The camera ignores the RESET's own number. Replies to earlier messages that come
        meanwhile are not the RESET's ACK and are dropped; a late ACK of an earlier RESET
        only lets the next message go out sooner, under a number nothing else had.
        """
        wire = Message(PayloadType.CONTROL, 0, RESET).encode()

        def match(frame: Message) -> bool | Wait:
            ok = frame.type in CONTROL_TYPES and frame.payload == RESET
            return True if ok else NOT_MINE

        await self._request(wire, match)

    def _message(self, body: bytes, what: str, inquiry: bool) -> _Exchange:
        data = packet(self.address, body)
        if self.serial:
            return _Exchange(self.label, data, None, self.address, inquiry, what)
        seq, self._seq = self._seq, (self._seq + 1) & MAX_SEQ
        kind = PayloadType.INQUIRY if inquiry else PayloadType.COMMAND
        wire = Message(kind, seq, data).encode()
        return _Exchange(self.label, wire, seq, self.address, inquiry, what)

    async def ask(self, body: bytes, what: str, inquiry: bool = False) -> bytes:
        """Send one message; the data of its completion or inquiry reply."""
        for _ in range(1 + self.config.retries):
            # request() lets waiting user commands run before it writes; do that now, so
            # their sequence numbers do not overtake the one this message is about to take.
            await self.yield_to_commands()
            exchange = self._message(body, what, inquiry)
            try:
                return await self._deliver(exchange)
            except SequenceError as err:
                log.debug("%s: %s; resetting the sequence number", self.label, err)
                await self._reset()
                if err.acked:  # the camera accepted it earlier: a retransmission found it done
                    return b""
        raise DeviceError(
            ErrorCode.DEVICE_ERROR, f"{self.label}: {what}: camera keeps reporting sequence errors"
        )

    async def _deliver(self, exchange: _Exchange) -> bytes:
        """ACK then completion; a lost completion is asked for again by retransmitting."""
        for _ in range(1 + self.config.retries):
            result: bytes | _Phase = await self._request(exchange.wire, exchange.first)
            if result is not ACKED:
                return result
            try:
                return await self._await_completion(exchange)
            except TimeoutError:
                log.debug("%s: no completion for %s, retransmitting", self.label, exchange.what)
        raise CommandTimeout(
            f"{self.label}: camera accepted {exchange.what} but never reported it done"
        )

    async def _await_completion(self, exchange: _Exchange) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._completion = (exchange, future)
        try:
            async with asyncio.timeout(self.config.completion_timeout):
                return await future
        finally:
            self._completion = None

    async def query(self, body: bytes, what: str) -> bytes | None:
        """An inquiry; None when the camera cannot answer it now (standby, busy)."""
        try:
            return await self.ask(body, what, inquiry=True)
        except ViscaDeviceError as err:
            if err.code is ErrorCode.BUSY:
                return None
            raise

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        return [PollGroup("status", self._poll_status, self.config.poll_interval)]

    async def _poll_status(self) -> None:
        await self._read_power()
        if self.state.get("power") == "on":
            await self._read_zoom()
            await self._read_pan_tilt()

    async def _read_power(self) -> None:
        data = await self.query(POWER_INQUIRY, "power inquiry")
        if data is not None:
            self.update(power=power_value(data))

    async def _read_zoom(self) -> None:
        data = await self.query(ZOOM_POSITION_INQUIRY, "zoom position inquiry")
        if data is not None:
            self.update(zoom_position=zoom_position(data))

    async def _read_pan_tilt(self) -> None:
        data = await self.query(PAN_TILT_POSITION_INQUIRY, "pan/tilt position inquiry")
        if data is not None:
            pan, tilt = pan_tilt_position(data)
            self.update(pan=pan, tilt=tilt)

    # ---- actions --------------------------------------------------------------------

    async def _power(self, on: bool) -> None:
        """Switch power, showing warming/cooling until the camera reports the command done."""
        stable, moving = ("on", "warming") if on else ("off", "cooling")
        before = self.state.get("power")
        if before != stable:
            self.update(power=moving)
        try:
            await self.ask(POWER_ON if on else POWER_OFF, f"power {stable}")
        except AvhubError:
            if before is not None:
                self.update(power=before)
            raise
        await self._read_power()

    @action(coalesce="power", lockout=True, description="wake the camera from standby")
    async def power_on(self) -> None:
        await self._power(True)

    @action(coalesce="power", lockout=True, description="put the camera in standby")
    async def power_off(self) -> None:
        await self._power(False)

    @action(
        PanTilt,
        coalesce="pan_tilt",
        description="drive pan/tilt at signed speeds until changed or stopped",
    )
    async def pan_tilt(self, args: PanTilt) -> None:
        pan = _clamp(args.pan, self.config.max_pan_speed)
        tilt = _clamp(args.tilt, self.config.max_tilt_speed)
        await self.ask(pan_tilt_drive(pan, tilt), f"pan/tilt {pan:+d} {tilt:+d}")
        if pan == tilt == 0:
            await self._read_pan_tilt()
        else:
            self.update(preset=None)  # moving off the preset it was at

    @action(Zoom, coalesce="zoom", description="zoom at a signed speed until changed or stopped")
    async def zoom(self, args: Zoom) -> None:
        await self.ask(zoom_drive(args.speed), f"zoom {args.speed:+d}")
        if args.speed == 0:
            await self._read_zoom()
        else:
            self.update(preset=None)

    @action(name="stop", coalesce="stop", description="stop pan, tilt and zoom")
    async def stop_motion(self) -> None:
        await self.ask(PAN_TILT_STOP, "pan/tilt stop")
        await self.ask(ZOOM_STOP, "zoom stop")
        await self._read_pan_tilt()
        await self._read_zoom()

    def _preset_number(self, args: Preset) -> int:
        if args.preset >= self.config.presets:
            raise CommandError(
                ErrorCode.INVALID_ARGS,
                f"preset {args.preset} is out of range: "
                f"{self.device_id} has presets 0-{self.config.presets - 1}",
            )
        return args.preset

    @action(Preset, coalesce="preset", description="move to a stored preset")
    async def recall_preset(self, args: Preset) -> None:
        number = self._preset_number(args)
        await self.ask(memory(PresetAction.RECALL, number), f"recall preset {number}")
        self.update(preset=number)
        await self._read_pan_tilt()
        await self._read_zoom()

    @action(Preset, description="store the current position as a preset")
    async def store_preset(self, args: Preset) -> None:
        number = self._preset_number(args)
        await self.ask(memory(PresetAction.STORE, number), f"store preset {number}")
        self.update(preset=number)  # where it is now is that preset
