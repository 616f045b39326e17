"""Tesira Text Protocol wire format: lines, values, replies, publishes. Shared by driver and simulator.

Commands end with LF; the server ends lines with CR LF or (Telnet style) CR NUL, so
replies are cut at any of CR, LF and NUL and empty frames are skipped: a NUL can
never prefix the next line. Telnet commands are stripped before that
(`drivers/transport/telnet.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer
from drivers.transport.telnet import Negotiation, Policy, TelnetFramer, refuse_all

PORT = 23
OK = "+OK"
BANNER = "Welcome to the Tesira Text Protocol Server..."
COMMAND_END = b"\n"
LINE_ENDS = {"crlf": b"\r\n", "crnul": b"\r\x00"}
TERMINATORS = b"\r\n\x00"
MAX_LINE = 65536  # `SESSION get aliases` of a large design is one long line
MAX_DEPTH = 32

Value: TypeAlias = bool | int | float | str | list["Value"] | dict[str, "Value"] | None
Arg = bool | int | float | str

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(inf|nan)$", re.IGNORECASE)
_BARE = re.compile(r'[^\s\[\]{}":,]+')
_UNQUOTED_ARG = re.compile(r'^[^\s"]+$')
_SEPARATORS = " \t,"


def reply_framer(
    send: Callable[[bytes], None],
    policy: Policy = refuse_all,
    on_negotiation: Callable[[Negotiation], None] | None = None,
) -> TelnetFramer[bytes]:
    """The client-side framer: Telnet answered by `policy` via `send`, lines cut at CR, LF, NUL."""
    return TelnetFramer(DelimiterFramer(TERMINATORS, MAX_LINE), policy, send, on_negotiation)


# ---- values ------------------------------------------------------------------------


def format_value(value: Value) -> str:
    """A value as the server prints it: floats with 6 decimals, quoted strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6f}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    return "{" + " ".join(f"{quote(k)}:{format_value(v)}" for k, v in value.items()) + "}"


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_arg(value: Arg) -> str:
    """A command argument: compact numbers, `true`/`false`, strings quoted only when needed."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot send {value} to a Tesira")
        return str(int(value)) if value.is_integer() else f"{value:.6f}".rstrip("0")
    if isinstance(value, str):
        return value if _UNQUOTED_ARG.match(value) else quote(value)
    return format_value(value)


def encode_command(*parts: Arg) -> bytes:
    """`encode_command("Level1", "set", "level", 1, -10.5)` → `b"Level1 set level 1 -10.5\\n"`."""
    return " ".join(format_arg(p) for p in parts).encode() + COMMAND_END


@dataclass(frozen=True, slots=True)
class Token:
    """One whitespace-separated element of a command line."""

    text: str
    quoted: bool
    start: int  # offset in the line, for `Parse error at N`


def tokenize(line: str) -> list[Token]:
    """Split a command line into elements; double quotes group, backslash escapes inside them."""
    tokens: list[Token] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos].isspace():
            pos += 1
        if pos == end:
            return tokens
        if line[pos] == '"':
            text, after = _read_string(line, pos)
            tokens.append(Token(text, True, pos))
            pos = after
        else:
            start = pos
            while pos < end and not line[pos].isspace():
                pos += 1
            tokens.append(Token(line[start:pos], False, start))


def _read_string(text: str, pos: int) -> tuple[str, int]:
    """The string starting at the quote at `pos`, and the offset after its closing quote."""
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ProtocolError(f"unterminated string at {pos}: {text[pos : pos + 40]!r}")


def parse_scalar(text: str) -> Value:
    """A bare word: number, true/false, null, or (enum-like) text.

    ProtocolError for an integer too long to convert (over 4300 digits).
    """
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "null":
        return None
    if _NUMBER.match(text):
        if any(c in text for c in ".eEnN"):
            return float(text)
        try:
            return int(text)
        except ValueError:
            raise ProtocolError(f"number of {len(text)} digits: {text[:20]}...") from None
    return text


class _Reader:
    """Recursive descent over `"key":value` pairs, bare values, `[...]` lists and `{...}` maps."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def items(self, end: str | None, depth: int) -> tuple[dict[str, Value], list[Value]]:
        if depth > MAX_DEPTH:
            raise ProtocolError(f"values nested over {MAX_DEPTH} deep")
        fields: dict[str, Value] = {}
        values: list[Value] = []
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos] in _SEPARATORS:
                self.pos += 1
            if self.pos == len(text):
                if end is not None:
                    raise ProtocolError(f"missing {end!r} in {text[:60]!r}")
                return fields, values
            if text[self.pos] == end:
                self.pos += 1
                return fields, values
            value, is_text = self.value(depth)
            if is_text and self.pos < len(text) and text[self.pos] == ":":
                self.pos += 1
                fields[str(value)] = self.value(depth)[0]
            else:
                values.append(value)

    def value(self, depth: int) -> tuple[Value, bool]:
        """The value at the cursor and whether it was text (so may be a key)."""
        text = self.text
        if self.pos >= len(text):
            raise ProtocolError(f"value missing at the end of {text[:60]!r}")
        c = text[self.pos]
        if c == '"':
            string, self.pos = _read_string(text, self.pos)
            return string, True
        if c == "[":
            self.pos += 1
            fields, values = self.items("]", depth + 1)
            if fields:
                raise ProtocolError(f"key:value pair inside a list in {text[:60]!r}")
            return values, False
        if c == "{":
            self.pos += 1
            fields, values = self.items("}", depth + 1)
            if values:
                raise ProtocolError(f"value without a key inside a map in {text[:60]!r}")
            return dict(fields), False
        m = _BARE.match(text, self.pos)
        if m is None:
            raise ProtocolError(f"unexpected {c!r} at {self.pos} in {text[:60]!r}")
        self.pos = m.end()
        scalar = parse_scalar(m.group())
        return scalar, isinstance(scalar, str)


def parse_values(text: str) -> tuple[dict[str, Value], list[Value]]:
    """`"value":-10.000000` → ({"value": -10.0}, []); concise `-10.000000` → ({}, [-10.0])."""
    return _Reader(text).items(None, 0)


# ---- server lines ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """`+OK`, with `"key":value` pairs (verbose) or bare values (concise)."""

    fields: dict[str, Value] = field(default_factory=dict)
    values: tuple[Value, ...] = ()

    @property
    def value(self) -> Value:
        """The `value` field, or the only bare value; None when there is none."""
        if "value" in self.fields:
            return self.fields["value"]
        return self.values[0] if len(self.values) == 1 else None


class ErrorKind(StrEnum):
    """What an error line means."""

    ADDRESS_NOT_FOUND = "address_not_found"  # no such instance tag
    NOT_SUPPORTED = "not_supported"  # no such attribute on this block
    PARSE_ERROR = "parse_error"  # malformed command or value
    INVALID_PARAMETER = "invalid_parameter"  # index or value out of range
    WRONG_STATE = "wrong_state"
    ALREADY_SUBSCRIBED = "already_subscribed"
    CANNOT_DELIVER = "cannot_deliver"
    GENERAL_FAILURE = "general_failure"
    OTHER = "other"


_KINDS = (
    ("address not found", ErrorKind.ADDRESS_NOT_FOUND),
    ("ALREADY_SUBSCRIBED", ErrorKind.ALREADY_SUBSCRIBED),
    ("INVALID_PARAMETER", ErrorKind.INVALID_PARAMETER),
    ("out of range", ErrorKind.INVALID_PARAMETER),
    ("WRONG_STATE", ErrorKind.WRONG_STATE),
    ("CANNOT_DELIVER", ErrorKind.CANNOT_DELIVER),
    ("GENERAL_FAILURE", ErrorKind.GENERAL_FAILURE),
    ("Parse error", ErrorKind.PARSE_ERROR),
    ("is not supported by", ErrorKind.NOT_SUPPORTED),
)


@dataclass(frozen=True, slots=True)
class Err:
    """A line starting with `-`: `-ERR <message>`, `-CANNOT_DELIVER`, `-GENERAL_FAILURE`."""

    text: str  # without the leading "-"

    @property
    def kind(self) -> ErrorKind:
        for needle, kind in _KINDS:
            if needle in self.text:
                return kind
        return ErrorKind.OTHER


@dataclass(frozen=True, slots=True)
class Publish:
    """`! "publishToken":"<label>" "value":<value>` (or concise `! "<label>" <value>`)."""

    token: str
    value: Value


@dataclass(frozen=True, slots=True)
class Other:
    """Any other line: the banner, an echoed command, noise."""

    text: str

    @property
    def is_banner(self) -> bool:
        return self.text.startswith(BANNER.rstrip("."))


Message = Ok | Err | Publish | Other


def parse_line(line: bytes) -> Message:
    """Classify one server line (terminator removed); ProtocolError for a malformed `+OK`/`!` line."""
    text = line.decode("utf-8", "replace").strip()
    if text.startswith("+OK") and (len(text) == 3 or text[3].isspace()):
        fields, values = parse_values(text[3:])
        return Ok(fields, tuple(values))
    if text.startswith("-"):
        return Err(text[1:].strip())
    if text.startswith("!"):
        return _publish(text)
    return Other(text)


def _publish(text: str) -> Publish:
    fields, values = parse_values(text[1:])
    if "publishToken" in fields:
        token: Any = fields["publishToken"]
        value = fields.get("value", values[0] if len(values) == 1 else None)
    elif len(values) == 2:
        token, value = values
    else:
        raise ProtocolError(f"publish line without a token: {text[:80]!r}")
    if not isinstance(token, str):
        raise ProtocolError(f"publish token is not text: {text[:80]!r}")
    return Publish(token, value)


def encode_value_reply(value: Value, *, verbose: bool = True, key: str = "value") -> str:
    """`+OK "value":<v>` (verbose) or `+OK <v>` (concise)."""
    return f"+OK {quote(key)}:{format_value(value)}" if verbose else f"+OK {format_value(value)}"


def encode_publish(token: str, value: Value, *, verbose: bool = True) -> str:
    if verbose:
        return f'! "publishToken":{quote(token)} "value":{format_value(value)}'
    return f"! {quote(token)} {format_value(value)}"
