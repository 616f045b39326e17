"""PJLink wire format: lines, greeting, digest, value tables. Shared by driver and simulator."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache

from drivers.errors import ProtocolError

PORT = 4352
TERMINATOR = b"\r"
MAX_LINE = 136  # '%' + class + body(4) + sep + param(<=128) + CR
MAX_PASSWORD = 32

POWER_STATES = {"0": "off", "1": "on", "2": "cooling", "3": "warming"}
POWER_CODES = {v: k for k, v in POWER_STATES.items()}
INPUT_TYPES = {
    "1": "RGB",
    "2": "Video",
    "3": "HDMI",
    "4": "Storage",
    "5": "Network",
    "6": "Internal",
}
ERROR_FIELDS = ("fan", "lamp", "temperature", "cover_open", "filter", "other")
ERROR_LEVELS = {"0": "ok", "1": "warning", "2": "error"}

SEARCH = b"%2SRCH" + TERMINATOR
"""Class 2 search, sent by a controller over UDP; projectors answer `%2ACKN=<mac>`."""
NOTIFICATIONS = ("LKUP", "POWR", "INPT", "ERST", "AVMT")
"""Class 2 status notifications a projector pushes over UDP."""
MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")

_INPUT_CODE = re.compile(r"^[1-6][1-9A-Z]$")
_MESSAGE_START = re.compile(rb"%[12]|PJLINK", re.IGNORECASE)
_REPLY = re.compile(rb"^%([12])([A-Za-z0-9]{4})=(.*)$", re.DOTALL)
_COMMAND = re.compile(rb"^%([12])([A-Za-z0-9]{4}) (.*)$", re.DOTALL)
_GREETING = re.compile(rb"^PJLINK (0|1 ([0-9A-Za-z]{1,32})|ERRA)$", re.IGNORECASE)
_DIGEST = re.compile(rb"^([0-9a-fA-F]{32})(%.*)$", re.DOTALL)


class PjlinkError(StrEnum):
    """Error answers a projector gives in place of a value."""

    ERR1 = "ERR1"  # undefined command / no such item (LAMP, FILT)
    ERR2 = "ERR2"  # out of parameter
    ERR3 = "ERR3"  # unavailable time (standby, warming, busy)
    ERR4 = "ERR4"  # projector failure


ERROR_MEANINGS = {  # as a panel shows them, before the code itself
    PjlinkError.ERR1: "this projector does not have that",
    PjlinkError.ERR2: "the projector does not take that value",
    PjlinkError.ERR3: "not possible now: the projector is in standby, warming up or cooling down",
    PjlinkError.ERR4: "the projector reports a failure",
}


@dataclass(frozen=True, slots=True)
class Command:
    """A controller → device line: `%1POWR 1`."""

    pjclass: int
    body: str
    param: str = "?"

    def encode(self, digest: str = "") -> bytes:
        return f"{digest}%{self.pjclass}{self.body} {self.param}".encode() + TERMINATOR


@dataclass(frozen=True, slots=True)
class Reply:
    """A device → controller line: `%1POWR=1`, `%1INPT=ERR2`."""

    pjclass: int
    body: str
    param: str

    @property
    def error(self) -> PjlinkError | None:
        upper = self.param.upper()
        return PjlinkError(upper) if upper in PjlinkError.__members__ else None

    @property
    def ok(self) -> bool:
        return self.param.upper() == "OK"

    def encode(self) -> bytes:
        return f"%{self.pjclass}{self.body}={self.param}".encode() + TERMINATOR


@dataclass(frozen=True, slots=True)
class Greeting:
    """`PJLINK 0` (open) or `PJLINK 1 <nonce>` (password required)."""

    nonce: str | None

    def encode(self) -> bytes:
        text = "PJLINK 0" if self.nonce is None else f"PJLINK 1 {self.nonce}"
        return text.encode() + TERMINATOR


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """`PJLINK ERRA`: wrong or missing digest."""

    def encode(self) -> bytes:
        return b"PJLINK ERRA" + TERMINATOR


Message = Reply | Greeting | AuthFailure


def auth_digest(nonce: str, password: str) -> str:
    """MD5 of nonce + password, no separator, as lowercase hex."""
    return hashlib.md5((nonce + password).encode(), usedforsecurity=False).hexdigest()


def parse_message(line: bytes) -> tuple[Message, bytes]:
    """Parse one device line (terminator removed) into a message and any junk before it.

    Case-insensitive, as some projectors answer in lowercase. Raises ProtocolError
    when the line holds no PJLink message at all.
    """
    found = _MESSAGE_START.search(line)
    if found is None:
        raise ProtocolError(f"not a PJLink line: {line[:60]!r}")
    junk, text = line[: found.start()], line[found.start() :]
    if m := _REPLY.match(text):
        param = m.group(3).decode("utf-8", "replace")
        return Reply(int(m.group(1)), m.group(2).decode().upper(), param), junk
    if m := _GREETING.match(text):
        if m.group(1).upper() == b"ERRA":
            return AuthFailure(), junk
        nonce = m.group(2).decode() if m.group(2) else None
        return Greeting(nonce), junk
    raise ProtocolError(f"malformed PJLink line: {line[:60]!r}")


def parse_command(line: bytes) -> tuple[str | None, Command]:
    """Parse one controller line into (digest or None, command); ProtocolError if malformed."""
    digest = None
    if m := _DIGEST.match(line):
        digest, line = m.group(1).decode().lower(), m.group(2)
    m = _COMMAND.match(line)
    if m is None:
        raise ProtocolError(f"malformed PJLink command: {line[:60]!r}")
    param = m.group(3).decode("utf-8", "replace")
    return digest, Command(int(m.group(1)), m.group(2).decode().upper(), param)


def is_input_code(code: str) -> bool:
    """True for a class 1 or class 2 input code such as `31` or `3A`."""
    return bool(_INPUT_CODE.match(code))


@lru_cache(maxsize=512)  # one string per code, shared by every projector's state
def default_input_name(code: str) -> str:
    """`31` → `HDMI 1`, `11` → `RGB 1`, `3A` → `HDMI A`."""
    kind = INPUT_TYPES.get(code[:1], f"Input {code[:1]}")
    return f"{kind} {code[1:]}"


MUTES: dict[str, tuple[bool | None, bool | None]] = {
    "10": (False, None),
    "11": (True, None),
    "20": (None, False),
    "21": (None, True),
    "30": (False, False),
    "31": (True, True),
}
"""AVMT value → the (video_mute, audio_mute) it sets; None leaves that mute as it is."""


def parse_mutes(param: str) -> tuple[bool, bool]:
    """AVMT reply → (video_mute, audio_mute); a mute the value does not name is off."""
    try:
        video, audio = MUTES[param]
    except KeyError:
        raise ProtocolError(f"bad AVMT value {param!r}") from None
    return bool(video), bool(audio)


def mutes_code(video: bool, audio: bool) -> str:
    """(video_mute, audio_mute) → the AVMT value that reports both: 31, 11, 21 or 30."""
    return {(True, True): "31", (True, False): "11", (False, True): "21"}.get((video, audio), "30")


@cache  # 729 values at most: projectors that report the same share one dict (read-only)
def parse_errors(param: str) -> dict[str, str]:
    """ERST reply `000010` → {"fan": "ok", ..., "filter": "warning", "other": "ok"}."""
    if len(param) != 6 or any(c not in ERROR_LEVELS for c in param):
        raise ProtocolError(f"bad ERST value {param!r}")
    return {name: ERROR_LEVELS[c] for name, c in zip(ERROR_FIELDS, param, strict=True)}


def parse_lamps(param: str) -> list[dict[str, int | bool]]:
    """LAMP reply `1000 1 50 0` → [{"hours": 1000, "on": True}, {"hours": 50, "on": False}]."""
    parts = param.split()
    if not parts or len(parts) % 2 or not all(p.isdigit() for p in parts):
        raise ProtocolError(f"bad LAMP value {param!r}")
    pairs = zip(parts[::2], parts[1::2], strict=True)
    return [{"hours": int(hours), "on": on == "1"} for hours, on in pairs]
