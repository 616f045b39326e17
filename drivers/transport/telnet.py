"""Telnet (RFC 854/855) on a byte stream: commands taken out, option negotiation answered.

`Telnet` is the incremental parser: bytes in, clean data and the answers to send out,
whatever way the stream was cut into reads. Which answers it gives is a `Policy`
the user chooses (`refuse_all`, `ignore_all`, `accept_offered`). `TelnetFramer`
puts it in front of a codec's framer, for protocols that run over a Telnet port.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from drivers.errors import ProtocolError
from drivers.transport.framing import Framer

IAC = 255
SB = 250
SE = 240
NOP = 241
MAX_SUBNEGOTIATION = 1024

F = TypeVar("F")

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


Policy = Callable[[Negotiation], Negotiation | None]
"""The answer to the peer's negotiation, or None to send nothing; must not raise."""


def refuse_all(request: Negotiation) -> Negotiation | None:
    """WONT to every DO, DONT to every WILL: a raw client's answer (Tesira waits for it)."""
    return request.refusal()


def ignore_all(request: Negotiation) -> Negotiation | None:
    """No answer at all: for peers that do not wait for one, or users that answer themselves."""
    return None


def accept_offered(options: Collection[int]) -> Policy:
    """Refuse every option but `options`, which we offered (WILL and DO) ourselves.

    The peer's DO or WILL for one of those is its acknowledgement of our offer and
    gets no answer: answering an acknowledgement would start a negotiation loop.
    """
    wanted = frozenset(options)

    def policy(request: Negotiation) -> Negotiation | None:
        return None if request.option in wanted else request.refusal()

    return policy


def escape(data: bytes) -> bytes:
    """Data for a Telnet stream: a 0xFF byte is sent as IAC IAC."""
    return data.replace(b"\xff", b"\xff\xff")


def subnegotiation(body: bytes) -> bytes:
    """`IAC SB <body> IAC SE`, with 0xFF bytes of `body` escaped."""
    return bytes((IAC, SB)) + escape(body) + bytes((IAC, SE))


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one `Telnet.feed` found, each in stream order."""

    data: bytes  # everything that is not Telnet, IAC IAC unescaped
    negotiations: tuple[Negotiation, ...]  # the peer's DO/DONT/WILL/WONT
    replies: tuple[Negotiation, ...]  # the policy's answers, to send back
    subnegotiations: tuple[bytes, ...]  # bodies of complete IAC SB ... IAC SE, unescaped
    errors: tuple[ProtocolError, ...]  # over-long subnegotiations, dropped

    @property
    def answer(self) -> bytes:
        """The replies as bytes for the wire."""
        return b"".join(r.encode() for r in self.replies)


class _State(IntEnum):
    DATA = 0
    COMMAND = 1  # after IAC
    OPTION = 2  # after IAC <verb>
    SUB = 3  # inside IAC SB ... IAC SE
    SUB_IAC = 4  # IAC inside a subnegotiation


_VERBS = frozenset(Verb)


class Telnet:
    """Incremental Telnet parser; a command may be split across any number of reads.

    `IAC IAC` is a literal 0xFF data byte; NOP, GA and the other two-byte commands
    are dropped; each negotiation is answered by `policy`. The only bytes kept
    between reads are a subnegotiation's body: one longer than `max_subnegotiation`
    is reported and dropped, and what follows is data again (a stray IAC SB must not
    swallow the session).
    """

    __slots__ = ("_max_sub", "_state", "_sub", "_verb", "policy")  # one per Telnet connection

    def __init__(
        self, policy: Policy = ignore_all, max_subnegotiation: int = MAX_SUBNEGOTIATION
    ) -> None:
        if max_subnegotiation < 1:
            raise ValueError(f"max_subnegotiation must be at least 1, not {max_subnegotiation}")
        self.policy = policy
        self._max_sub = max_subnegotiation
        self._state = _State.DATA
        self._verb = Verb.DO
        self._sub = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished subnegotiation; never more than the cap."""
        return len(self._sub)

    def feed(self, data: bytes) -> Decoded:
        clean = bytearray()
        negotiations: list[Negotiation] = []
        replies: list[Negotiation] = []
        subs: list[bytes] = []
        errors: list[ProtocolError] = []
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state is _State.DATA or state is _State.SUB:  # copy up to the next IAC at once
                at = data.find(IAC, i)
                end = n if at < 0 else at
                if state is _State.DATA:
                    clean += data[i:end]
                    i = end
                else:
                    i = self._collect(data, i, end, errors)
                    if self._state is not _State.SUB:  # over the cap: the rest is data
                        continue
                if i == at:
                    self._state = _State.COMMAND if state is _State.DATA else _State.SUB_IAC
                    i += 1
                continue
            byte = data[i]
            i += 1
            if state is _State.COMMAND:
                self._state = _State.DATA
                if byte == IAC:
                    clean.append(IAC)
                elif byte in _VERBS:
                    self._verb = Verb(byte)
                    self._state = _State.OPTION
                elif byte == SB:
                    self._state = _State.SUB
            elif state is _State.OPTION:
                self._state = _State.DATA
                request = Negotiation(self._verb, byte)
                negotiations.append(request)
                if (reply := self.policy(request)) is not None:
                    replies.append(reply)
            elif byte == SE:  # SUB_IAC
                self._state = _State.DATA
                subs.append(bytes(self._sub))
                self._sub.clear()
            else:  # IAC IAC is a 0xFF of the body; any other command inside it is dropped
                self._state = _State.SUB
                if byte == IAC:
                    self._collect(b"\xff", 0, 1, errors)
        return Decoded(
            bytes(clean), tuple(negotiations), tuple(replies), tuple(subs), tuple(errors)
        )

    def _collect(self, data: bytes, start: int, end: int, errors: list[ProtocolError]) -> int:
        """Add `data[start:end]` to the body; where parsing goes on (past the cap: data)."""
        room = self._max_sub - len(self._sub)
        if end - start <= room:
            self._sub += data[start:end]
            return end
        errors.append(ProtocolError(f"Telnet subnegotiation over {self._max_sub} bytes dropped"))
        self._sub.clear()
        self._state = _State.DATA
        return start + room + 1  # the byte past the cap goes with the body

    def reset(self) -> None:
        self._state = _State.DATA
        self._sub.clear()


class TelnetFramer(Generic[F]):
    """A Telnet layer in front of `inner`: commands stripped before it cuts frames.

    The policy's answers go to `send` (needed unless the policy is `ignore_all`).
    `on_negotiation`, when set, also sees each negotiation, after the data of the
    same read was framed; it must not raise. Over-long subnegotiations come out as a
    ProtocolError ahead of that read's frames.
    """

    __slots__ = ("inner", "on_negotiation", "send", "telnet")

    def __init__(
        self,
        inner: Framer[F],
        policy: Policy = ignore_all,
        send: Callable[[bytes], None] | None = None,
        on_negotiation: Callable[[Negotiation], None] | None = None,
    ) -> None:
        if send is None and policy is not ignore_all:
            raise ValueError("a Telnet policy that answers needs `send`")
        self.inner = inner
        self.telnet = Telnet(policy)
        self.send = send
        self.on_negotiation = on_negotiation

    def feed(self, data: bytes) -> list[F | ProtocolError]:
        # The usual read: no IAC in it, and none in progress (the Telnet's own state is read
        # here, in its module, rather than through a property: this runs for every read).
        if IAC not in data and self.telnet._state is _State.DATA:
            return self.inner.feed(data)
        got = self.telnet.feed(data)
        if got.replies and self.send is not None:
            self.send(got.answer)
        out: list[F | ProtocolError] = [*got.errors]
        if got.data:
            out += self.inner.feed(got.data)
        if self.on_negotiation is not None:
            for negotiation in got.negotiations:
                self.on_negotiation(negotiation)
        return out

    def reset(self) -> None:
        self.telnet.reset()
        self.inner.reset()
