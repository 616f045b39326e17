"""Framers turn a byte stream into frames; each owns its buffer and caps frame size."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from operator import methodcaller
from typing import Protocol, TypeVar

from drivers.errors import ProtocolError

F = TypeVar("F")


class Framer(Protocol[F]):
    """Splits received bytes into frames.

    `feed` returns complete frames in order; bytes that can never become a frame are
    dropped and reported in place as a ProtocolError so the caller can log them
    without losing the frames around them.
    """

    def feed(self, data: bytes) -> list[F | ProtocolError]: ...

    def reset(self) -> None: ...


class DelimiterFramer:
    """Frames end at any byte of `terminators`; empty frames are skipped.

    `DelimiterFramer(b"\\r\\n")` accepts CR, LF and CR LF endings alike. A line longer
    than `max_len` is reported once as a ProtocolError and dropped whole, up to its
    terminator, so its tail never turns into a frame; how the bytes were split into
    chunks never changes the frames.
    """

    __slots__ = ("_buf", "_discarding", "_max_len", "_split")

    def __init__(self, terminators: bytes, max_len: int = 4096) -> None:
        if not terminators:
            raise ValueError("need at least one terminator byte")
        self._split = _splitter(terminators)
        self._max_len = max_len
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its terminator

    @property
    def pending(self) -> bytes:
        """Bytes received after the last terminator (e.g. a `Password:` prompt)."""
        return bytes(self._buf)

    @property
    def pending_size(self) -> int:
        """How many bytes `pending` holds (without copying them)."""
        return len(self._buf)

    def take_pending(self) -> bytes:
        """Return and forget the unterminated tail."""
        tail = bytes(self._buf)
        self._buf.clear()
        return tail

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        lines = self._split(data)
        tail = lines.pop()
        if not self._buf and not self._discarding and len(data) <= self._max_len:
            # The usual read: whole lines, none too long; nothing to join or drop.
            if tail:
                self._buf += tail
            if all(lines):
                return lines  # type: ignore[return-value]  # a list of bytes is one of frames
            return list(filter(None, lines))
        out: list[bytes | ProtocolError] = []
        for line in lines:
            self._add(line, out)
            if self._buf:
                out.append(bytes(self._buf))
                self._buf.clear()
            self._discarding = False
        self._add(tail, out)
        return out

    def _add(self, part: bytes, out: list[bytes | ProtocolError]) -> None:
        if self._discarding:
            return
        self._buf += part
        if len(self._buf) > self._max_len:
            head = bytes(self._buf[: min(40, self._max_len + 1)])  # not how much has arrived
            out.append(ProtocolError(f"frame over {self._max_len} bytes dropped: {head!r}..."))
            self._buf.clear()
            self._discarding = True

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False


@cache  # a hub makes a framer per connection, with a few distinct terminator sets
def _splitter(terminators: bytes) -> Callable[[bytes], list[bytes]]:
    """A function cutting bytes at each byte of `terminators`, the unterminated tail last
    (b"" when there is none); shared by their framers.

    One terminator is `bytes.split`; CR and LF are `bytes.splitlines`, which makes no
    empty piece between the CR and LF of one ending (empty lines are no frames anyway):
    both much faster than the pattern that serves other sets.
    """
    if len(set(terminators)) == 1:
        return methodcaller("split", terminators[:1])
    if set(terminators) == set(_CRLF):
        return _split_lines
    return re.compile(b"[" + re.escape(terminators) + b"]").split


_CRLF = b"\r\n"


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.splitlines()
    if not data or data[-1] in _CRLF:
        lines.append(b"")
    return lines


class PassThroughFramer:
    """One datagram is one frame."""

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        return [data] if data else []

    def reset(self) -> None:
        pass


class FixedLengthFramer:
    """Every `length` bytes are one frame, for binary protocols without a terminator."""

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ValueError("a frame is at least one byte long")
        self._length = length
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self._buf += data
        size = self._length
        count = len(self._buf) // size
        if not count:
            return []
        frames: list[bytes | ProtocolError] = [
            bytes(self._buf[i * size : (i + 1) * size]) for i in range(count)
        ]
        del self._buf[: count * size]
        return frames

    def reset(self) -> None:
        self._buf.clear()
