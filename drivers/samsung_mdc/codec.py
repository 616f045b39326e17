"""Samsung MDC wire format: frames, checksum, framer, command and input tables.

Shared by the driver and the simulator. A frame is `AA cmd id len data cs` with
`cs = (cmd + id + len + sum(data)) & 0xFF`; a reply is a frame with cmd 0xFF whose
data is `ACK|NAK rcmd values...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from drivers.errors import ProtocolError

PORT = 1515
HEADER = 0xAA
REPLY = 0xFF
ACK = 0x41  # 'A'
NAK = 0x4E  # 'N'
MAX_ID = 0xFE
ANY_ID = 0xFE  # addresses whichever display is on the line; it answers with its own ID
TLS_PREAMBLE = b"MDCSTART<<TLS>>"  # the Secured Protocol greeting; not an MDC frame
_MIN_FRAME = 5  # header, cmd, id, len, checksum


class Cmd(IntEnum):
    """MDC command bytes avhub uses."""

    STATUS = 0x00
    SERIAL_NUMBER = 0x0B
    ERROR_STATUS = 0x0D
    SOFTWARE_VERSION = 0x0E
    MODEL_NUMBER = 0x10
    POWER = 0x11
    VOLUME = 0x12
    MUTE = 0x13
    INPUT_SOURCE = 0x14
    PICTURE_ASPECT = 0x15
    VOLUME_STEP = 0x62
    MODEL_NAME = 0x8A
    VIRTUAL_REMOTE = 0xB0


class Power(IntEnum):
    """Power command values."""

    OFF = 0x00
    ON = 0x01
    REBOOT = 0x02


INPUT_SOURCES: dict[int, str] = {
    0x04: "S-Video",
    0x08: "Component",
    0x0C: "AV",
    0x0D: "AV 2",
    0x0E: "SCART 1",
    0x14: "PC",
    0x18: "DVI",
    0x1E: "BNC",
    0x1F: "DVI Video",
    0x20: "MagicInfo",
    0x21: "HDMI 1",
    0x22: "HDMI 1 PC",
    0x23: "HDMI 2",
    0x24: "HDMI 2 PC",
    0x25: "DisplayPort 1",
    0x26: "DisplayPort 2",
    0x27: "DisplayPort 3",
    0x30: "TV",
    0x31: "HDMI 3",
    0x32: "HDMI 3 PC",
    0x33: "HDMI 4",
    0x34: "HDMI 4 PC",
    0x40: "DTV",
    0x50: "Plug-in Module",
    0x55: "HDBaseT",
    0x60: "MagicInfo S",
    0x61: "Screen Mirroring",
    0x62: "Internal USB",
    0x63: "URL Launcher",
    0x64: "IWB",
}
_ALIASES = {"dp": "displayport", "rftv": "tv", "rf": "tv"}
_HEX_CODE = re.compile(r"^(?:input)?(?:0x)?([0-9a-f]{2})$")


def checksum(body: bytes) -> int:
    """Sum of every byte after the 0xAA header, modulo 256."""
    return sum(body) & 0xFF


def command_name(cmd: int) -> str:
    """`0x12` → `volume`; unknown bytes as `command 0x99`."""
    try:
        return Cmd(cmd).name.lower().replace("_", " ")
    except ValueError:
        return f"command 0x{cmd:02X}"


def input_name(code: int) -> str:
    """`0x21` → `HDMI 1`; codes outside the table as `Input 0x99`."""
    return INPUT_SOURCES.get(code) or f"Input 0x{code:02X}"


def _normalise(name: str) -> str:
    key = re.sub(r"[\s_\-/]+", "", name.casefold())
    for short, full in _ALIASES.items():
        if key.startswith(short) and not key.startswith(full):
            key = full + key[len(short) :]
    return key


_BY_NAME = {_normalise(name): code for code, name in INPUT_SOURCES.items()}


def input_code(name: str) -> int | None:
    """An input source code from a name (`HDMI 1`, `hdmi1`, `DP 1`) or hex (`0x21`); None if unknown."""
    key = _normalise(name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    if m := _HEX_CODE.match(key):
        return int(m.group(1), 16)
    return None


@dataclass(frozen=True, slots=True)
class Frame:
    """One MDC frame: a request (`cmd` = the command) or a reply (`cmd` = 0xFF)."""

    cmd: int
    display_id: int
    data: bytes = b""

    def encode(self) -> bytes:
        """`AA cmd id len data cs`; ValueError for out-of-range fields."""
        if not (0 <= self.cmd <= 0xFF and 0 <= self.display_id <= 0xFF):
            raise ValueError(f"cmd and display id must be bytes: {self.cmd}, {self.display_id}")
        if len(self.data) > 0xFF:
            raise ValueError(f"MDC data is at most 255 bytes, got {len(self.data)}")
        body = bytes((self.cmd, self.display_id, len(self.data))) + self.data
        return bytes((HEADER,)) + body + bytes((checksum(body),))


@dataclass(frozen=True, slots=True)
class Reply:
    """A display's answer: ACK or NAK for `rcmd`, then its values (a NAK's error byte)."""

    display_id: int
    ack: bool
    rcmd: int
    values: bytes = b""

    @property
    def error(self) -> int | None:
        """A NAK's error byte (meanings are undocumented); None for an ACK."""
        if self.ack:
            return None
        return self.values[0] if self.values else 0

    def to_frame(self) -> Frame:
        return Frame(
            REPLY, self.display_id, bytes((ACK if self.ack else NAK, self.rcmd)) + self.values
        )

    def encode(self) -> bytes:
        return self.to_frame().encode()

    @classmethod
    def from_frame(cls, frame: Frame) -> Reply:
        """The reply a frame carries; ProtocolError if it is not a well-formed reply."""
        if frame.cmd != REPLY:
            raise ProtocolError(f"expected a reply (0xFF), got command 0x{frame.cmd:02X}")
        if len(frame.data) < 2:
            raise ProtocolError(f"reply too short: {frame.data.hex(' ')}")
        if frame.data[0] not in (ACK, NAK):
            raise ProtocolError(f"reply is neither ACK nor NAK: 0x{frame.data[0]:02X}")
        return cls(frame.display_id, frame.data[0] == ACK, frame.data[1], frame.data[2:])


class ChecksumError(ProtocolError):
    """A complete frame whose checksum byte is wrong; `frame` holds its bytes."""

    def __init__(self, frame: bytes) -> None:
        want = checksum(frame[1:-1]) if len(frame) >= 2 else 0
        got = frame[-1] if frame else 0
        super().__init__(
            f"MDC frame with bad checksum dropped (0x{got:02X}, expected 0x{want:02X}): "
            f"{frame[:40].hex(' ')}"
        )
        self.frame = frame


def decode_frame(raw: bytes) -> Frame:
    """One complete frame → Frame; ProtocolError (ChecksumError for the checksum) if malformed."""
    if len(raw) < _MIN_FRAME or raw[0] != HEADER:
        raise ProtocolError(f"not an MDC frame: {raw[:40].hex(' ')}")
    if len(raw) != _MIN_FRAME + raw[3]:
        raise ProtocolError(f"MDC frame length {len(raw)} does not match LEN {raw[3]}")
    if checksum(raw[1:-1]) != raw[-1]:
        raise ChecksumError(raw)
    return Frame(raw[1], raw[2], raw[4:-1])


def parse_reply(raw: bytes) -> Reply:
    """One complete frame → Reply; ProtocolError when it is not a valid reply."""
    return Reply.from_frame(decode_frame(raw))


@dataclass(frozen=True, slots=True)
class Status:
    """The status (0x00) reply: power, volume, mute and input in one."""

    power: bool
    volume: int
    mute: bool
    input: int
    aspect: int = 0

    def encode(self) -> bytes:
        """The seven status values: power, volume, mute, input, aspect, N-time, F-time."""
        return bytes((int(self.power), self.volume, int(self.mute), self.input, self.aspect, 0, 0))

    @classmethod
    def decode(cls, values: bytes) -> Status:
        """ProtocolError when fewer than four values came back."""
        if len(values) < 4:
            raise ProtocolError(f"status reply too short: {values.hex(' ')}")
        aspect = values[4] if len(values) > 4 else 0
        return cls(values[0] != 0, values[1], values[2] != 0, values[3], aspect)


def decode_text(values: bytes) -> str:
    """ASCII values (model name, serial, version) without NUL or space padding."""
    return values.decode("ascii", "replace").strip("\x00 ").replace("\x00", "")


def _next_start(buf: bytearray) -> int:
    """Index of the next byte after the first that may start a frame or the TLS greeting."""
    starts = [i for i in (buf.find(HEADER, 1), buf.find(TLS_PREAMBLE[:1], 1)) if i > 0]
    return min(starts, default=len(buf))


class MdcFramer:
    """Cuts frames out of a byte stream by their LEN byte, resyncing on 0xAA.

    Yields each complete frame with a good checksum as bytes, the Secured Protocol
    greeting `MDCSTART<<TLS>>` as its own frame, and in place of anything else a
    ProtocolError: skipped junk, or a ChecksumError for a frame whose checksum is
    wrong (its LEN is trusted, so the frame after it survives). `replies_only`
    accepts only reply frames (cmd 0xFF), so a stray 0xAA is less likely to be
    taken for a frame start.
    """

    def __init__(self, replies_only: bool = False) -> None:
        self._replies_only = replies_only
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self._buf += data
        out: list[bytes | ProtocolError] = []
        junk = bytearray()
        buf = self._buf
        while buf:
            if buf[0] != HEADER:
                if buf.startswith(TLS_PREAMBLE):
                    self._flush(junk, out)
                    out.append(TLS_PREAMBLE)
                    del buf[: len(TLS_PREAMBLE)]
                    continue
                if TLS_PREAMBLE.startswith(buf):
                    break  # maybe the start of the greeting: wait for more
                end = _next_start(buf)
                junk += buf[:end]
                del buf[:end]
                continue
            if len(buf) < 2:
                break
            if self._replies_only and buf[1] != REPLY:
                junk.append(buf.pop(0))
                continue
            if len(buf) < 4:
                break
            size = _MIN_FRAME + buf[3]
            if len(buf) < size:
                break
            raw = bytes(buf[:size])
            del buf[:size]
            self._flush(junk, out)
            out.append(raw if checksum(raw[1:-1]) == raw[-1] else ChecksumError(raw))
        self._flush(junk, out)
        return out

    @staticmethod
    def _flush(junk: bytearray, out: list[bytes | ProtocolError]) -> None:
        if junk:
            out.append(
                ProtocolError(f"skipped {len(junk)} bytes that are not MDC: {bytes(junk[:40])!r}")
            )
            junk.clear()

    def reset(self) -> None:
        self._buf.clear()
