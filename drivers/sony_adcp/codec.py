"""Sony ADCP wire format: CR LF lines, the SHA-256 challenge, commands and replies.

Shared by the driver and the simulator (protocols/sony-adcp.md). A command is
`name "value"` or `name ?`; a reply is `ok`, an `err_*` word, or a JSON value (a
quoted string, a number, an array such as `["err_fan"]`, or `[{"light_src": 120}]`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from drivers.errors import ErrorCode, ProtocolError

PORT = 53595
TERMINATOR = b"\r\n"
MAX_LINE = 1024  # the longest reply we expect is a JSON list of errors or timers
CHALLENGE = r"^[!-~]{1,64}$"
"""What a challenge may be: 1-64 printable ASCII characters, no spaces (the charset is unconfirmed)."""
QUERY = "?"
NOKEY = "NOKEY"
"""The greeting of a projector with authentication off."""
DEFAULT_PASSWORD = "Projector"
"""The factory ADCP password in the one client read; not confirmed for every model."""

POWER_STATES = {
    "standby": "off",
    "startup": "warming",
    "on": "on",
    "cooling1": "cooling",
    "cooling2": "cooling",
}
"""`power_status ?` answers → the common power vocabulary."""
NO_ERROR = "no_err"
NO_WARNING = "no_warn"

ERRORS: dict[str, tuple[str, ErrorCode]] = {
    "err_cmd": ("command not recognised or not supported by this model", ErrorCode.DEVICE_ERROR),
    "err_val": ("value out of range", ErrorCode.INVALID_ARGS),
    "err_option": ("bad option", ErrorCode.INVALID_ARGS),
    "err_inactive": ("not available now (standby or in a transition)", ErrorCode.BUSY),
    "err_internal1": ("internal communication error", ErrorCode.DEVICE_ERROR),
    "err_internal2": ("internal communication error", ErrorCode.DEVICE_ERROR),
    "err_auth": ("authentication failed", ErrorCode.DEVICE_ERROR),
}
"""Error replies: meaning, and the panel error code a command refused so gets."""

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_ERROR_WORD = re.compile(r"^err_[a-z0-9_]+$", re.IGNORECASE)
_CHALLENGE = re.compile(CHALLENGE)
# A reply starts with a quote, bracket, brace, digit, minus or letter: bytes before
# that on a line (serial noise, a glitch) are junk, reported apart from the reply.
_REPLY_START = re.compile(rb'["\[{0-9A-Za-z-]')
_PRINTABLE = re.compile(rb"[!-~][ -~]*\Z")
_INPUT_WORD = re.compile(r"^([a-z]+?)(\d*)$")
_KINDS = {
    "hdmi": "HDMI",
    "dvi": "DVI",
    "rgb": "RGB",
    "sdi": "SDI",
    "hdbaset": "HDBaseT",
    "usb": "USB",
    "lan": "LAN",
    "dp": "DisplayPort",
}


@dataclass(frozen=True, slots=True)
class Command:
    """A controller → projector line: `power "on"`, `input ?`, `brightness 50`."""

    name: str
    value: str | int | None = None  # None: a query

    @property
    def query(self) -> bool:
        return self.value is None

    def encode(self) -> bytes:
        if self.value is None:
            text = f"{self.name} {QUERY}"
        else:
            text = f"{self.name} {json.dumps(self.value)}"
        return text.encode() + TERMINATOR

    def __str__(self) -> str:
        return self.encode().decode().rstrip()


@dataclass(frozen=True, slots=True)
class Ok:
    """`ok`: a set was done (also `OK` after a good digest; case varies)."""

    def encode(self, word: str = "ok") -> bytes:
        return word.encode() + TERMINATOR


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An `err_*` word in place of a reply."""

    word: str

    @property
    def meaning(self) -> str:
        known = ERRORS.get(self.word)
        return known[0] if known else "error"

    @property
    def code(self) -> ErrorCode:
        known = ERRORS.get(self.word)
        return known[1] if known else ErrorCode.DEVICE_ERROR

    def encode(self) -> bytes:
        return self.word.encode() + TERMINATOR


@dataclass(frozen=True, slots=True)
class Value:
    """A query's answer: any JSON value (`"standby"`, `42`, `["err_fan"]`, ...)."""

    value: Any

    def encode(self) -> bytes:
        return json.dumps(self.value, separators=(",", ":")).encode() + TERMINATOR


Reply = Ok | ErrorReply | Value


def auth_digest(challenge: str, password: str) -> str:
    """SHA-256 of challenge + password, no separator, as lowercase hex."""
    return hashlib.sha256((challenge + password).encode()).hexdigest()


def parse_greeting(line: bytes) -> tuple[str | None, bytes]:
    """The first line of a session: (None for `NOKEY` or the challenge, junk before it).

    Whatever comes before the line's last run of printable ASCII is junk. ProtocolError
    for a line that holds no greeting (nothing printable, or spaces inside).
    """
    start = _PRINTABLE.search(line)
    if start is None:
        raise ProtocolError(f"not an ADCP greeting: {line[:60]!r}")
    junk, text = line[: start.start()], line[start.start() :].decode("ascii").strip()
    if text.upper() == NOKEY:
        return None, junk
    if not _CHALLENGE.match(text):
        raise ProtocolError(f"not an ADCP greeting: {line[:60]!r}")
    return text, junk


def parse_reply(line: bytes) -> tuple[Reply, bytes]:
    """Parse one projector line (terminator removed) into a reply and any junk before it.

    `ok` compares case-insensitively. Raises ProtocolError when the line holds no reply.
    """
    start = _REPLY_START.search(line)
    if start is None:
        raise ProtocolError(f"not an ADCP reply: {line[:60]!r}")
    junk, body = line[: start.start()], line[start.start() :]
    text = body.decode("utf-8", "replace").strip()
    if text.lower() == "ok":
        return Ok(), junk
    if _ERROR_WORD.match(text):
        return ErrorReply(text.lower()), junk
    return Value(_json(text, line)), junk


def parse_command(line: bytes) -> Command:
    """Parse one controller line into a command; ProtocolError when malformed."""
    text = line.decode("utf-8", "replace").strip()
    name, _, rest = text.partition(" ")
    rest = rest.strip()
    if not _NAME.match(name) or not rest:
        raise ProtocolError(f"malformed ADCP command: {line[:60]!r}")
    if rest == QUERY:
        return Command(name)
    value = _json(rest, line)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"ADCP command value must be a string or a number: {line[:60]!r}")
    return Command(name, value)


def _json(text: str, line: bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f"malformed ADCP value: {line[:60]!r}") from None


def parse_word(value: Any, what: str) -> str:
    """A reply that must be one quoted word, such as `"standby"` or `"hdmi1"`."""
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what}: expected a quoted word, got {value!r}")
    return value


def parse_list(value: Any, none: str, what: str) -> list[str]:
    """`error ?` / `warning ?` answers: `none` (e.g. "no_err") or a list of words."""
    if value == none:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item != none]
    raise ProtocolError(f"{what}: expected {none!r} or a list of words, got {value!r}")


def error_states(errors: list[str], warnings: list[str]) -> dict[str, str]:
    """`["err_fan"]`, `["warn_temp"]` → {"fan": "error", "temp": "warning"} (errors win)."""
    states = {word.removeprefix("warn_"): "warning" for word in warnings}
    states.update({word.removeprefix("err_"): "error" for word in errors})
    return dict(sorted(states.items()))


def parse_timer(value: Any, key: str) -> int | None:
    """`timer ?` answer `[{"operation": 900}, {"light_src": 120}]` → the hours under `key`.

    None when the projector lists no such timer.
    """
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError(f"timer: expected a list of objects, got {value!r}")
        hours = item.get(key)
        if hours is not None:
            if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
                raise ProtocolError(f"timer: {key} is not a number of hours: {hours!r}")
            return hours
    return None


def is_input_word(word: str) -> bool:
    """True for a word that can name an ADCP input, like `hdmi1` or `dvi`."""
    return bool(_NAME.match(word)) and not word.startswith("_")


def default_input_name(word: str) -> str:
    """`hdmi1` → `HDMI 1`, `video` → `Video`, `hdbaset` → `HDBaseT`."""
    m = _INPUT_WORD.match(word)
    if m is None:
        return word
    kind, number = m.groups()
    label = _KINDS.get(kind) or kind.capitalize()
    return f"{label} {number}" if number else label
