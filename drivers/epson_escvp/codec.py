"""Epson ESC/VP21 wire format, and the ESC/VP.net packet that opens TCP 3629.

Shared by the driver and the simulator (protocols/epson-escvp21.md). Commands are
ASCII lines ending in CR (`PWR ON`, `PWR?`). The projector answers with `KEY=VALUE`
lines ending in CR, or `ERR` for a refusal, and then a `:` prompt with no terminator,
meaning "ready for the next command". Over the network a 16-byte ESC/VP.net packet
each way comes first.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

from drivers.errors import ProtocolError

PORT = 3629
CR = b"\r"
PROMPT = b":"
"""A prompt frame: the projector is ready for the next command."""
MAX_LINE = 256
MAGIC = b"ESC/VP.net"
VERSION = 0x10
HEADER_LEN = 16
FIELD_LEN = 18
MAX_PASSWORD = 16
PASSWORD_FIELD = 0x01
"""Header field carrying the password. Its layout (id, attribute 0x01, 16 bytes of
NUL-padded ASCII) comes from no cited source: unconfirmed."""

ERR = "ERR"


class PacketType(IntEnum):
    """ESC/VP.net packet types; only CONNECT is used."""

    NULL = 0x00
    HELLO = 0x01
    PASSWORD = 0x02
    CONNECT = 0x03


class Status(IntEnum):
    """ESC/VP.net status byte: 0x00 in requests, 0x20 for OK. The failure codes are unconfirmed."""

    REQUEST = 0x00
    OK = 0x20
    BAD_REQUEST = 0x40
    UNAUTHORIZED = 0x41
    FORBIDDEN = 0x43
    NOT_ALLOWED = 0x45
    UNAVAILABLE = 0x53
    BAD_VERSION = 0x55


POWER_STATES = {
    "00": ("off", "standby (network off)"),
    "01": ("on", "on"),
    "02": ("warming", "warming up"),
    "03": ("cooling", "cooling down"),
    "04": ("off", "standby (network on)"),
    "05": ("off", "abnormal standby"),
    "09": ("off", "A/V standby"),
}
"""`PWR?` codes → (common power vocabulary, what the code says exactly)."""
POWER_CODES = {"off": "04", "on": "01", "warming": "02", "cooling": "03"}

SOURCES = {
    "10": "Computer 1",
    "20": "Computer 2",
    "30": "HDMI",
    "A0": "HDMI 2",
    "41": "Video",
    "42": "S-Video",
    "52": "LAN",
    "53": "LAN 2",
    "80": "HDBaseT",
}
"""Common `SOURCE` codes and names (model dependent)."""

ERRORS = {
    "01": ("fan", "fan error"),
    "03": ("lamp_ignition", "lamp failure at power on"),
    "04": ("temperature", "high internal temperature"),
    "06": ("lamp", "lamp error"),
    "07": ("lamp_cover", "lamp cover open"),
    "08": ("cinema_filter", "cinema filter error"),
    "09": ("capacitor", "electric dual-layered capacitor disconnected"),
    "0A": ("auto_iris", "auto iris error"),
    "0B": ("subsystem", "subsystem error"),
    "0C": ("air_flow", "low air flow"),
    "0D": ("air_filter_sensor", "air filter air flow sensor error"),
    "0E": ("power_supply", "power supply unit error (ballast)"),
    "0F": ("shutter", "shutter error"),
    "10": ("cooling_peltier", "cooling system error (peltier element)"),
    "11": ("cooling_pump", "cooling system error (pump)"),
    "12": ("static_iris", "static iris error"),
    "13": ("power_supply_mismatch", "power supply unit error (disagreement of ballast)"),
    "14": ("exhaust_shutter", "exhaust shutter error"),
    "15": ("obstacle", "obstacle detected"),
    "16": ("if_board", "IF board discernment error"),
}
"""`ERR?` codes (hex; 00 = no error), as the openHAB Epson binding documents them."""

_CODE = re.compile(r"^[0-9A-F]{2}$")
_REPLY = re.compile(rb"(?:([A-Z][A-Z0-9]*)=([ -~]*)|(ERR))\Z")
_COMMAND = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:(\?)| +([!-~][ -~]*?)) *$")
_STOPS = re.compile(rb"[\r\n:]")
_STOPS_NO_PROMPT = re.compile(rb"[\r\n]")


@dataclass(frozen=True, slots=True)
class Command:
    """A controller → projector line: `PWR ON`, or the query `PWR?` (value None)."""

    key: str
    value: str | None = None

    @property
    def query(self) -> bool:
        return self.value is None

    def encode(self) -> bytes:
        text = f"{self.key}?" if self.value is None else f"{self.key} {self.value}"
        return text.encode() + CR

    def __str__(self) -> str:
        return self.encode().decode().rstrip()


@dataclass(frozen=True, slots=True)
class Reply:
    """A projector line: `PWR=01`, or the refusal `ERR` (value None)."""

    key: str
    value: str | None = None

    @property
    def refused(self) -> bool:
        return self.value is None

    def encode(self) -> bytes:
        text = self.key if self.value is None else f"{self.key}={self.value}"
        return text.encode() + CR


REFUSAL = Reply(ERR)


@dataclass(frozen=True, slots=True)
class Packet:
    """An ESC/VP.net packet: the 16-byte header and its 18-byte header fields."""

    kind: int
    status: int = Status.REQUEST
    fields: tuple[tuple[int, int, bytes], ...] = ()  # (id, attribute, 16 bytes)
    version: int = VERSION

    def encode(self) -> bytes:
        head = MAGIC + struct.pack(
            "BBHBB", self.version, self.kind, 0, self.status, len(self.fields)
        )
        return head + b"".join(struct.pack("BB16s", *field) for field in self.fields)

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        """A whole packet (as the framer cuts it); ProtocolError if it is not one."""
        if len(data) < HEADER_LEN or not data.startswith(MAGIC):
            raise ProtocolError(f"not an ESC/VP.net packet: {data[:40]!r}")
        version, kind, _, status, count = struct.unpack_from("BBHBB", data, len(MAGIC))
        if len(data) != HEADER_LEN + FIELD_LEN * count:
            raise ProtocolError(f"ESC/VP.net packet of {len(data)} bytes with {count} fields")
        fields = tuple(
            struct.unpack_from("BB16s", data, HEADER_LEN + FIELD_LEN * i) for i in range(count)
        )
        return cls(kind, status, fields, version)

    @property
    def password(self) -> str | None:
        """The password field's text, or None when the packet carries none."""
        for ident, _, value in self.fields:
            if ident == PASSWORD_FIELD:
                return value.rstrip(b"\0").decode("ascii", "replace")
        return None


def connect_request(password: str | None = None) -> Packet:
    """The CONNECT packet a controller opens with (with a password field if given)."""
    if password is None:
        return Packet(PacketType.CONNECT)
    value = password.encode("ascii")
    if len(value) > MAX_PASSWORD:
        raise ValueError(f"an ESC/VP.net password has at most {MAX_PASSWORD} characters")
    return Packet(PacketType.CONNECT, fields=((PASSWORD_FIELD, 0x01, value),))


def connect_reply(status: Status) -> Packet:
    """The projector's answer to CONNECT."""
    return Packet(PacketType.CONNECT, status)


def is_packet(frame: bytes) -> bool:
    return frame.startswith(MAGIC)


def parse_reply(line: bytes) -> tuple[Reply, bytes]:
    """One projector line (CR removed) → the reply and any junk bytes before it."""
    m = _REPLY.search(line)
    if m is None:
        raise ProtocolError(f"not an ESC/VP21 reply: {line[:60]!r}")
    junk = line[: m.start()]
    if m.group(3):
        return REFUSAL, junk
    return Reply(m.group(1).decode(), m.group(2).decode()), junk


def parse_command(line: bytes) -> Command:
    """One controller line (CR removed) → the command; ProtocolError when malformed."""
    m = _COMMAND.match(line.decode("ascii", "replace"))
    if m is None:
        raise ProtocolError(f"malformed ESC/VP21 command: {line[:60]!r}")
    key = m.group(1).upper()
    return Command(key) if m.group(2) else Command(key, m.group(3).upper())


def is_code(code: str) -> bool:
    """True for two hex digits in upper case, the shape of SOURCE and ERR codes (`30`, `A0`)."""
    return bool(_CODE.match(code))


def source_name(code: str) -> str:
    """`30` → `HDMI`, `11` → `Computer 1 (11)`, `5F` → `Source 5F`."""
    if code in SOURCES:
        return SOURCES[code]
    family = SOURCES.get(code[:1] + "0")
    if family is not None and code[:1] in "12":
        return f"{family} ({code})"
    return f"Source {code}"


def parse_lamp_hours(value: str) -> int:
    """`LAMP=1234` (some models list one count per lamp: the first) → 1234."""
    first = value.split()[0] if value.split() else ""
    if not (first.isascii() and first.isdigit()):  # not "²", which isdigit() takes
        raise ProtocolError(f"bad LAMP value {value!r}")
    return int(first)


def error_states(code: str) -> dict[str, str]:
    """`ERR=04` → {"temperature": "error"}; `00` → {}; an unknown code → {"error_XX": "error"}."""
    code = code.upper()
    if not is_code(code):
        raise ProtocolError(f"bad ERR value {code!r}")
    if code == "00":
        return {}
    name = ERRORS[code][0] if code in ERRORS else f"error_{code}"
    return {name: "error"}


class EscvpFramer:
    """Cuts an ESC/VP21 byte stream into frames, all `bytes`.

    An ESC/VP.net packet at the start of a frame is one frame (16 bytes and its fields).
    Otherwise lines end at CR or LF. With `prompts` (the projector → controller
    direction) a `:` is a frame of its own, PROMPT, unless it sits in the value of a
    `KEY=VALUE` line; bytes before a prompt that are no line are reported as junk.
    Without `prompts` (commands), a lone CR is an empty frame — projectors answer it
    with a prompt — while empty lines ended by LF (the LF of CR LF) are skipped. Lines
    over `max_len` bytes are reported once and dropped up to their terminator (or a
    prompt). How the bytes were split into chunks never changes the frames.
    """

    def __init__(self, *, prompts: bool, max_len: int = MAX_LINE) -> None:
        self._prompts = prompts
        self._stops = _STOPS if prompts else _STOPS_NO_PROMPT
        self._max_len = max_len
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its end
        self._in_value = False  # the dropped part of that line held a `=`

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self._buf += data
        out: list[bytes | ProtocolError] = []
        while self._buf and self._next(out):
            pass
        return out

    def _next(self, out: list[bytes | ProtocolError]) -> bool:
        """Cut one frame off the buffer into `out`; False when it needs more bytes."""
        buf = self._buf
        if not self._discarding and MAGIC.startswith(bytes(buf[: len(MAGIC)])):
            if len(buf) < HEADER_LEN:
                return False
            size = HEADER_LEN + FIELD_LEN * buf[HEADER_LEN - 1]
            if len(buf) < size:
                return False
            out.append(bytes(buf[:size]))
            del buf[:size]
            return True
        stop = self._find_stop()
        if stop is None:
            if len(buf) > self._max_len and not self._discarding:
                out.append(self._too_long(buf))
                self._discarding = True
            if self._discarding:
                self._in_value = self._in_value or b"=" in buf
                buf.clear()
            return False
        line, end = bytes(buf[:stop]), bytes(buf[stop : stop + 1])
        del buf[: stop + 1]
        dropped, self._discarding, self._in_value = self._discarding, False, False
        if end == PROMPT:
            if line and not dropped:
                out.append(ProtocolError(f"junk before a prompt: {line[:40]!r}"))
            out.append(PROMPT)
        elif dropped:
            pass  # the tail of an over-long line
        elif len(line) > self._max_len:
            out.append(self._too_long(line))
        elif line or (end == CR and not self._prompts):
            out.append(line)
        return True

    def _too_long(self, line: bytes | bytearray) -> ProtocolError:
        """The error for an over-long line: the same whatever part of it has arrived."""
        head = bytes(line[: min(40, self._max_len + 1)])
        return ProtocolError(f"line over {self._max_len} bytes dropped: {head!r}...")

    def _find_stop(self) -> int | None:
        """Where the frame at the start of the buffer ends: CR, LF or a prompt's `:`."""
        buf = self._buf
        pos = 0
        while (m := self._stops.search(buf, pos)) is not None:
            at = m.start()
            if buf[at : at + 1] != PROMPT or not (self._in_value or b"=" in buf[:at]):
                return at
            pos = at + 1  # a colon in a value, like `NAME=Room:1`
        return None

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False
        self._in_value = False
