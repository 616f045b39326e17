"""VISCA wire format: packets, replies, the VISCA-over-IP header. Shared by driver and simulator.

A VISCA packet is `<address> <bytes...> FF` (3-16 bytes). Over serial, packets are
cut at the `FF` terminator; over IP (Sony, UDP 52381) each datagram carries an
8-byte header (payload type, payload length, sequence number) and one payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer

PORT = 52381
TERMINATOR = 0xFF
MIN_PACKET = 3
MAX_PACKET = 16
HEADER = struct.Struct(">HHI")
HEADER_LEN = HEADER.size  # 8
MAX_SEQ = 0xFFFFFFFF
BROADCAST = 0x88

# Message bodies (after the address byte, without the terminator).
IF_CLEAR = b"\x01\x00\x01"
POWER_ON = b"\x01\x04\x00\x02"
POWER_OFF = b"\x01\x04\x00\x03"
ZOOM_STOP = b"\x01\x04\x07\x00"
PAN_TILT_STOP = b"\x01\x06\x01\x01\x01\x03\x03"
POWER_INQUIRY = b"\x09\x04\x00"
ZOOM_POSITION_INQUIRY = b"\x09\x04\x47"
PAN_TILT_POSITION_INQUIRY = b"\x09\x06\x12"
VERSION_INQUIRY = b"\x09\x00\x02"

POWER_VALUES = {0x02: "on", 0x03: "off"}
ZOOM_SPEEDS = 8  # variable zoom: p = 0 (slow) .. 7 (fast)
PAN_DIRECTIONS = {-1: 0x01, 0: 0x03, 1: 0x02}  # left, stop, right
TILT_DIRECTIONS = {-1: 0x02, 0: 0x03, 1: 0x01}  # down, stop, up


class PayloadType(IntEnum):
    """The first two header bytes of a VISCA-over-IP message."""

    COMMAND = 0x0100
    INQUIRY = 0x0110
    REPLY = 0x0111
    DEVICE_SETTING = 0x0120
    CONTROL = 0x0200
    CONTROL_REPLY = 0x0201


CONTROL_TYPES = (PayloadType.CONTROL, PayloadType.CONTROL_REPLY)
RESET = b"\x01"  # control command; its control-reply acknowledgement is the same byte
SEQUENCE_ERROR = b"\x0f\x01"  # control: abnormality in the sequence number
MESSAGE_ERROR = b"\x0f\x02"  # control: abnormality in the message (type)


class ViscaError(IntEnum):
    """The code byte of a `y0 6z <code> FF` error reply."""

    LENGTH = 0x01
    SYNTAX = 0x02
    BUFFER_FULL = 0x03
    CANCELLED = 0x04
    NO_SOCKET = 0x05
    NOT_EXECUTABLE = 0x41


ERROR_MEANINGS = {
    ViscaError.LENGTH: "message length error",
    ViscaError.SYNTAX: "syntax error (command unknown or value out of range for this camera)",
    ViscaError.BUFFER_FULL: "command buffer full (two commands already running)",
    ViscaError.CANCELLED: "command cancelled",
    ViscaError.NO_SOCKET: "no such command socket",
    ViscaError.NOT_EXECUTABLE: "command not executable now (camera in standby or busy)",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One VISCA-over-IP message; `seq` is None for a packet that came without a header."""

    type: PayloadType
    seq: int | None
    payload: bytes

    def encode(self) -> bytes:
        """Header + payload; ValueError for a message that cannot be sent as is."""
        if self.seq is None or not 0 <= self.seq <= MAX_SEQ:
            raise ValueError(f"VISCA-over-IP needs a 32-bit sequence number, got {self.seq}")
        if not 1 <= len(self.payload) <= MAX_PACKET:
            raise ValueError(f"payload must be 1-{MAX_PACKET} bytes, got {len(self.payload)}")
        return HEADER.pack(self.type, len(self.payload), self.seq) + self.payload


def decode_message(data: bytes) -> Message:
    """Parse one datagram (header + payload); ProtocolError when it is not VISCA over IP."""
    if len(data) < HEADER_LEN + 1:
        raise ProtocolError(f"datagram too short for VISCA over IP: {data.hex(' ')}")
    raw_type, length, seq = HEADER.unpack_from(data)
    try:
        kind = PayloadType(raw_type)
    except ValueError:
        raise ProtocolError(f"unknown VISCA-over-IP payload type {raw_type:04x}") from None
    payload = data[HEADER_LEN:]
    if length != len(payload) or not 1 <= length <= MAX_PACKET:
        raise ProtocolError(
            f"VISCA-over-IP header says {length} payload bytes, datagram has {len(payload)}"
        )
    return Message(kind, seq, bytes(payload))


def split_packets(data: bytes) -> list[bytes]:
    """Cut `FF`-terminated packets (terminator kept); ProtocolError for a bad or unended one."""
    packets = []
    start = 0
    while start < len(data):
        end = data.find(TERMINATOR, start)
        if end < 0:
            raise ProtocolError(f"VISCA packet without FF terminator: {data[start:].hex(' ')}")
        packet = bytes(data[start : end + 1])
        check_packet(packet)
        packets.append(packet)
        start = end + 1
    return packets


def check_packet(packet: bytes) -> None:
    """ProtocolError unless `packet` is 3-16 bytes, starts with an address and ends in FF."""
    if not MIN_PACKET <= len(packet) <= MAX_PACKET:
        raise ProtocolError(f"VISCA packet of {len(packet)} bytes: {packet.hex(' ')}")
    if packet[0] & 0x80 == 0 or packet[-1] != TERMINATOR or TERMINATOR in packet[:-1]:
        raise ProtocolError(f"malformed VISCA packet: {packet.hex(' ')}")


def packet(address: int, body: bytes) -> bytes:
    """A controller → camera packet: `8x <body> FF` (x = camera address 1-7, 8 = broadcast)."""
    return bytes([0x80 | address]) + body + bytes([TERMINATOR])


def reply_packet(address: int, body: bytes) -> bytes:
    """A camera → controller packet: `y0 <body> FF`, y = camera address + 8."""
    return bytes([(address + 8) << 4]) + body + bytes([TERMINATOR])


def parse_command(data: bytes) -> tuple[int, bytes]:
    """A controller packet → (address 1-8, body without terminator); ProtocolError if malformed."""
    check_packet(data)
    if data[0] & 0xF0 != 0x80 or data[0] & 0x0F == 0:
        raise ProtocolError(f"not a controller packet: {data.hex(' ')}")
    return data[0] & 0x0F, data[1:-1]


class ReplyKind(StrEnum):
    """What a camera → controller packet says."""

    ACK = "ack"
    COMPLETION = "completion"  # also the inquiry reply (socket 0)
    ERROR = "error"
    NETWORK_CHANGE = "network_change"
    BROADCAST = "broadcast"  # 88 ... from the daisy chain (address set, IF_Clear)


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed camera reply. `data` is the completion/inquiry data (no terminator)."""

    address: int
    kind: ReplyKind
    socket: int = 0
    data: bytes = b""
    error: ViscaError | int | None = None

    def encode(self) -> bytes:
        if self.kind is ReplyKind.BROADCAST:
            return bytes([BROADCAST]) + self.data + bytes([TERMINATOR])
        if self.kind is ReplyKind.NETWORK_CHANGE:
            return reply_packet(self.address, b"\x38")
        code = {ReplyKind.ACK: 0x40, ReplyKind.COMPLETION: 0x50, ReplyKind.ERROR: 0x60}[self.kind]
        body = bytes([code | self.socket])
        if self.kind is ReplyKind.ERROR:
            body += bytes([int(self.error or 0)])
        return reply_packet(self.address, body + self.data)


def parse_reply(data: bytes) -> Reply:
    """A camera → controller packet (with its FF) → Reply; ProtocolError when malformed."""
    check_packet(data)
    first, body = data[0], data[1:-1]
    if first == BROADCAST:
        return Reply(0, ReplyKind.BROADCAST, data=body)
    if first & 0x0F or not 0x90 <= first <= 0xF0:
        raise ProtocolError(f"not a camera reply: {data.hex(' ')}")
    address = (first >> 4) - 8
    code, socket, rest = body[0] & 0xF0, body[0] & 0x0F, body[1:]
    if body[0] == 0x38 and not rest:
        return Reply(address, ReplyKind.NETWORK_CHANGE)
    if code == 0x40 and not rest:
        return Reply(address, ReplyKind.ACK, socket)
    if code == 0x50:
        return Reply(address, ReplyKind.COMPLETION, socket, rest)
    if code == 0x60 and len(rest) == 1:
        error: ViscaError | int = rest[0]
        if rest[0] in ViscaError._value2member_map_:
            error = ViscaError(rest[0])
        return Reply(address, ReplyKind.ERROR, socket, error=error)
    raise ProtocolError(f"unknown VISCA reply: {data.hex(' ')}")


def error_meaning(error: ViscaError | int | None) -> str:
    if isinstance(error, ViscaError):
        return ERROR_MEANINGS[error]
    return f"error {error or 0:02x}"


# ---- nibble-coded values -------------------------------------------------------------


def nibbles(value: int, count: int = 4) -> bytes:
    """`value` as `count` bytes 0p 0q ... (two's complement for negatives)."""
    value &= (1 << (4 * count)) - 1
    return bytes((value >> (4 * i)) & 0x0F for i in reversed(range(count)))


def from_nibbles(data: bytes, signed: bool = False) -> int:
    """Inverse of `nibbles`; ProtocolError if a byte is not 00-0F."""
    if not data or any(b > 0x0F for b in data):
        raise ProtocolError(f"expected nibble bytes 00-0F, got {data.hex(' ')}")
    value = 0
    for b in data:
        value = value << 4 | b
    bits = 4 * len(data)
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def pan_tilt_position(data: bytes) -> tuple[int, int]:
    """Inquiry data `0w*4 0z*4` → (pan, tilt), signed."""
    if len(data) != 8:
        raise ProtocolError(f"pan/tilt position needs 8 bytes, got {data.hex(' ')}")
    return from_nibbles(data[:4], signed=True), from_nibbles(data[4:], signed=True)


def zoom_position(data: bytes) -> int:
    if len(data) != 4:
        raise ProtocolError(f"zoom position needs 4 bytes, got {data.hex(' ')}")
    return from_nibbles(data)


def power_value(data: bytes) -> str:
    if len(data) != 1 or data[0] not in POWER_VALUES:
        raise ProtocolError(f"unknown power value {data.hex(' ')}")
    return POWER_VALUES[data[0]]


# ---- motion commands -----------------------------------------------------------------


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def pan_tilt_drive(pan: int, tilt: int) -> bytes:
    """Drive body from signed speeds (sign = direction: + right/up, 0 = that axis stops)."""
    for name, speed in (("pan", pan), ("tilt", tilt)):
        if abs(speed) > 0xFF:
            raise ValueError(f"{name} speed {speed} does not fit a VISCA speed byte")
    return bytes(
        [
            0x01,
            0x06,
            0x01,
            abs(pan) or 1,
            abs(tilt) or 1,
            PAN_DIRECTIONS[_sign(pan)],
            TILT_DIRECTIONS[_sign(tilt)],
        ]
    )


def parse_pan_tilt_drive(body: bytes) -> tuple[int, int]:
    """Inverse of `pan_tilt_drive`: signed (pan, tilt) speeds; ValueError if malformed."""
    if len(body) != 7 or body[:3] != b"\x01\x06\x01":
        raise ValueError("not a pan/tilt drive")
    pan_dir = {v: k for k, v in PAN_DIRECTIONS.items()}.get(body[5])
    tilt_dir = {v: k for k, v in TILT_DIRECTIONS.items()}.get(body[6])
    if pan_dir is None or tilt_dir is None:
        raise ValueError(f"bad pan/tilt direction {body[5]:02x} {body[6]:02x}")
    return pan_dir * body[3], tilt_dir * body[4]


def zoom_drive(speed: int) -> bytes:
    """Zoom body from a signed speed: + tele, - wide, 0 stop; |speed| 1-8 → p 0-7."""
    if speed == 0:
        return ZOOM_STOP
    p = min(abs(speed), ZOOM_SPEEDS) - 1
    return bytes([0x01, 0x04, 0x07, (0x20 if speed > 0 else 0x30) | p])


def parse_zoom_drive(body: bytes) -> int:
    """Inverse of `zoom_drive` (also the standard 02/03 speeds, as p = 0)."""
    if len(body) != 4 or body[:3] != b"\x01\x04\x07":
        raise ValueError("not a zoom drive")
    value = body[3]
    if value == 0x00:
        return 0
    if value in (0x02, 0x03):
        return 1 if value == 0x02 else -1
    direction = {0x20: 1, 0x30: -1}.get(value & 0xF0)
    if direction is None or value & 0x0F >= ZOOM_SPEEDS:
        raise ValueError(f"bad zoom value {value:02x}")
    return direction * ((value & 0x0F) + 1)


class PresetAction(IntEnum):
    RESET = 0x00
    STORE = 0x01
    RECALL = 0x02


def memory(action: PresetAction, number: int) -> bytes:
    """Preset (CAM_Memory) body `01 04 3F 0a pp`: reset, store or recall preset `number`."""
    if not 0 <= number <= 0xFF:
        raise ValueError(f"preset {number} is not 0-255")
    return bytes([0x01, 0x04, 0x3F, action, number])


# ---- framers -------------------------------------------------------------------------


class DatagramFramer:
    """One datagram → its messages; a reply payload holding two packets gives two messages."""

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        try:
            message = decode_message(data)
            if message.type in CONTROL_TYPES:
                return [message]
            return [Message(message.type, message.seq, p) for p in split_packets(message.payload)]
        except ProtocolError as err:
            return [err]

    def reset(self) -> None:
        pass


class SerialFramer:
    """An `FF`-terminated byte stream → packets as header-less messages (seq None)."""

    def __init__(self, kind: PayloadType = PayloadType.REPLY) -> None:
        self._kind = kind
        self._lines = DelimiterFramer(bytes([TERMINATOR]), max_len=MAX_PACKET - 1)

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        out: list[Message | ProtocolError] = []
        for frame in self._lines.feed(data):
            if isinstance(frame, ProtocolError):
                out.append(frame)
                continue
            packet = frame + bytes([TERMINATOR])
            try:
                check_packet(packet)
            except ProtocolError as err:
                out.append(err)
                continue
            out.append(Message(self._kind, None, packet))
        return out

    def reset(self) -> None:
        self._lines.reset()
