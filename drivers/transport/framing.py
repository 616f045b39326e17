"""Framers turn a byte stream into frames; each owns its buffer and caps frame size."""

from __future__ import annotations

import re
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

    `DelimiterFramer(b"\\r\\n")` accepts CR, LF and CR LF endings alike.
    """

    def __init__(self, terminators: bytes, max_len: int = 4096) -> None:
        if not terminators:
            raise ValueError("need at least one terminator byte")
        self._split = re.compile(b"[" + re.escape(terminators) + b"]").split
        self._max_len = max_len
        self._buf = bytearray()

    @property
    def pending(self) -> bytes:
        """Bytes received after the last terminator (e.g. a `Password:` prompt)."""
        return bytes(self._buf)

    def take_pending(self) -> bytes:
        """Return and forget the unterminated tail."""
        tail = bytes(self._buf)
        self._buf.clear()
        return tail

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self._buf += data
        *frames, tail = self._split(self._buf)
        self._buf = bytearray(tail)
        out: list[bytes | ProtocolError] = [bytes(f) for f in frames if f]
        if len(self._buf) > self._max_len:
            head = bytes(self._buf[:40])
            out.append(ProtocolError(f"frame over {self._max_len} bytes dropped: {head!r}..."))
            self._buf.clear()
        return out

    def reset(self) -> None:
        self._buf.clear()


class PassThroughFramer:
    """One datagram is one frame."""

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        return [data] if data else []

    def reset(self) -> None:
        pass
