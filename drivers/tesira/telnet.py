"""Telnet (RFC 854) on a raw TCP stream: strip commands, report option negotiation.

`TelnetFramer` sits in front of a line framer. Every Telnet command is removed from
the byte stream wherever it appears (between lines, mid-line, split across reads);
option negotiations (`IAC DO/DONT/WILL/WONT <option>`) are handed to a callback in
stream order, so the owner can answer them at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from drivers.errors import ProtocolError
from drivers.transport.framing import Framer

IAC = 255
SB = 250
SE = 240
MAX_SUBNEGOTIATION = 1024

_SPEC = re.compile(r"^\s*(DO|DONT|WILL|WONT)\s+(\d{1,3})\s*$", re.IGNORECASE)


class Verb(IntEnum):
    """Option negotiation verbs."""

    WILL = 251
    WONT = 252
    DO = 253
    DONT = 254


_REFUSAL = {Verb.DO: Verb.WONT, Verb.WILL: Verb.DONT}
_REPLIES = {Verb.DO: (Verb.WILL, Verb.WONT), Verb.WILL: (Verb.DO, Verb.DONT)}


@dataclass(frozen=True, slots=True)
class Negotiation:
    """One `IAC <verb> <option>` sequence."""

    verb: Verb
    option: int

    @classmethod
    def parse(cls, spec: str) -> Negotiation:
        """`"DO 24"` → Negotiation(DO, 24); ValueError for anything else."""
        m = _SPEC.match(spec)
        if m is None or int(m.group(2)) > 255:
            raise ValueError(
                f"expected a Telnet negotiation like 'DO 24' or 'WILL 1', got {spec!r}"
            )
        return cls(Verb[m.group(1).upper()], int(m.group(2)))

    def encode(self) -> bytes:
        return bytes((IAC, self.verb, self.option))

    def refusal(self) -> Negotiation | None:
        """WONT for DO, DONT for WILL; None for DONT/WONT, which need no answer."""
        verb = _REFUSAL.get(self.verb)
        return None if verb is None else Negotiation(verb, self.option)

    def answers(self, request: Negotiation) -> bool:
        """True when this is a reply (accepting or refusing) to `request`."""
        return self.option == request.option and self.verb in _REPLIES.get(request.verb, ())

    def __str__(self) -> str:
        return f"{self.verb.name} {self.option}"


class _State(IntEnum):
    DATA = 0
    COMMAND = 1  # after IAC
    OPTION = 2  # after IAC <verb>
    SUB = 3  # inside IAC SB ... IAC SE
    SUB_IAC = 4  # IAC inside a subnegotiation


class TelnetFramer:
    """Strips Telnet commands from the stream before `inner` cuts it into frames.

    `IAC IAC` is a literal 0xFF data byte; other commands (NOP, GA, subnegotiations)
    are dropped. `on_negotiation` is called for every option negotiation, in stream
    order after the frames that precede it; it must not raise.
    """

    def __init__(
        self,
        inner: Framer[bytes],
        on_negotiation: Callable[[Negotiation], None] | None = None,
    ) -> None:
        self.inner = inner
        self.on_negotiation = on_negotiation
        self._state = _State.DATA
        self._verb = Verb.DO
        self._sub_len = 0

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        if self._state is _State.DATA and IAC not in data:
            return self.inner.feed(data)
        out: list[bytes | ProtocolError] = []
        clean = bytearray()
        for byte in data:
            state = self._state
            if state is _State.DATA:
                if byte == IAC:
                    self._state = _State.COMMAND
                else:
                    clean.append(byte)
            elif state is _State.COMMAND:
                self._state = _State.DATA
                if byte == IAC:
                    clean.append(IAC)
                elif byte in Verb._value2member_map_:
                    self._verb = Verb(byte)
                    self._state = _State.OPTION
                elif byte == SB:
                    self._state = _State.SUB
                    self._sub_len = 0
            elif state is _State.OPTION:
                self._state = _State.DATA
                out += self.inner.feed(bytes(clean))
                clean.clear()
                if self.on_negotiation is not None:
                    self.on_negotiation(Negotiation(self._verb, byte))
            elif state is _State.SUB:
                if byte == IAC:
                    self._state = _State.SUB_IAC
                else:
                    self._sub_len += 1
                    if self._sub_len > MAX_SUBNEGOTIATION:
                        out.append(
                            ProtocolError(
                                f"Telnet subnegotiation over {MAX_SUBNEGOTIATION} bytes dropped"
                            )
                        )
                        self._state = _State.DATA
            else:  # SUB_IAC: IAC SE ends it, IAC IAC is an escaped 0xFF inside it
                self._state = _State.DATA if byte == SE else _State.SUB
        if clean:
            out += self.inner.feed(bytes(clean))
        return out

    def reset(self) -> None:
        self._state = _State.DATA
        self.inner.reset()
