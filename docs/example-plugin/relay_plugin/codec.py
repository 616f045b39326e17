"""The Acme RB protocol: ASCII lines ending in CR LF, the same words in both directions.

The host asks `POWER?` or `RELAY 2?` and sets `POWER ON` or `RELAY 2 CLOSED`; the box
answers every query and every set with the state line (`POWER ON`, `RELAY 2 CLOSED`),
sends the same lines unprompted when its front panel changes something, greets each
connection with `ACME RB READY` and refuses with `ERR <code>`. The driver and the
simulator both read lines with `parse` and write them with `encode`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from drivers.errors import ProtocolError

PORT = 7000
EOL = b"\r\n"
MAX_RELAYS = 16
GREETING = b"ACME RB READY"


class Refusal(IntEnum):
    """The codes of `ERR <code>`."""

    UNKNOWN_COMMAND = 1
    NO_SUCH_RELAY = 2
    POWERED_OFF = 3  # relays switch only while the box is on


@dataclass(frozen=True, slots=True)
class Power:
    """`POWER ON|OFF`: a set from the host, or the state from the box."""

    on: bool


@dataclass(frozen=True, slots=True)
class Relay:
    """`RELAY <n> CLOSED|OPEN`: a set from the host, or the state from the box."""

    number: int
    closed: bool


@dataclass(frozen=True, slots=True)
class PowerQuery:
    """`POWER?`"""


@dataclass(frozen=True, slots=True)
class RelayQuery:
    """`RELAY <n>?`"""

    number: int


@dataclass(frozen=True, slots=True)
class Error:
    """`ERR <code>`: the box refused the last line."""

    code: int


@dataclass(frozen=True, slots=True)
class Greeting:
    """`ACME RB READY`, once per connection."""


Message = Power | Relay | PowerQuery | RelayQuery | Error | Greeting
Command = Power | Relay | PowerQuery | RelayQuery
"""What the host sends."""

_POWER = re.compile(rb"POWER (ON|OFF)")
_RELAY = re.compile(rb"RELAY (\d{1,2}) (CLOSED|OPEN)")
_RELAY_QUERY = re.compile(rb"RELAY (\d{1,2})\?")
_ERROR = re.compile(rb"ERR (\d{1,3})")


def parse(line: bytes) -> Message:
    """One line, without its CR LF; ProtocolError when it is none of the protocol's."""
    if line == GREETING:
        return Greeting()
    if m := _POWER.fullmatch(line):
        return Power(m[1] == b"ON")
    if m := _RELAY.fullmatch(line):
        return Relay(int(m[1]), m[2] == b"CLOSED")
    if line == b"POWER?":
        return PowerQuery()
    if m := _RELAY_QUERY.fullmatch(line):
        return RelayQuery(int(m[1]))
    if m := _ERROR.fullmatch(line):
        return Error(int(m[1]))
    raise ProtocolError(f"not an Acme RB line: {line[:40]!r}")


def answers(reply: Message, sent: Command) -> bool:
    """True when `reply` is the state line the box answers `sent` with."""
    match sent:
        case Power() | PowerQuery():
            return isinstance(reply, Power)
        case Relay(number) | RelayQuery(number):
            return isinstance(reply, Relay) and reply.number == number


def encode(message: Message) -> bytes:
    """One line, with its CR LF."""
    match message:
        case Greeting():
            text = GREETING
        case Power(on):
            text = b"POWER ON" if on else b"POWER OFF"
        case Relay(number, closed):
            text = b"RELAY %d %s" % (number, b"CLOSED" if closed else b"OPEN")
        case PowerQuery():
            text = b"POWER?"
        case RelayQuery(number):
            text = b"RELAY %d?" % number
        case Error(code):
            text = b"ERR %d" % code
    return text + EOL
