"""Simulator framework: fault-injection knobs, per-connection sessions, a TCP listener.

A `Simulator` owns device state and answers frames; a `Session` is one client
connection. Sessions read bytes through `feed()` and write through a `Writer`
(anything with write/close/abort/is_closing, e.g. an `asyncio.Transport`), so a
serial pseudo-terminal (`start_pty`) or a UDP peer drives the same session code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import random
import re
import struct
import termios
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer, Framer, PassThroughFramer

log = logging.getLogger(__name__)

SPLIT_PAUSE = 0.002  # between single-byte writes, long enough for TCP to send each alone
GARBAGE_BYTES = bytes(range(0x80, 0xFF)) + b"#&*?~^"  # never a frame start or terminator
GARBAGE_LEN = 8
_BAUD_RATES = {v: int(k[1:]) for k, v in vars(termios).items() if re.fullmatch(r"B\d+", k)}
PTY_BAUD_RATES = frozenset(rate for rate in _BAUD_RATES.values() if rate)
"""The speeds a pty can be set to (termios B* constants; B0 means hang up)."""


class _Watchers(list[Callable[[str], None]]):
    """Callbacks on knob assignment. A copy of a Knobs starts with none: it is nobody's knobs."""

    def __copy__(self) -> _Watchers:
        return _Watchers()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Watchers:
        return _Watchers()


class Knobs(BaseModel):
    """Fault-injection knobs every simulator has; subclasses add device knobs.

    Knobs may be changed on a running simulator (assignment is validated and takes
    effect at once). They act per session, and a "message" is one `Session.send()`:
    the greeting, a reply or a pushed line. A message goes through them in this order:

    - stall: nothing is sent (and received frames are ignored).
    - reply_delay: wait, then write; the session handles no other command meanwhile.
    - garbage_every=N: messages N, 2N, ... (the greeting is message 1) get
      `make_garbage()` junk (8 bytes from 0x80-0xFE and `#&*?~^`, never a terminator
      or frame start). garbage_mode "line": junk + `line_end`, a line of its own before
      the message (on UDP a datagram of its own); "prefix": the junk starts the
      message's own line; "replace": junk + `line_end` is sent instead of the message.
    - drop_after with drop_mode "mid_reply": the first half of the message is written,
      then the connection is aborted.
    - coalesce_replies=N: messages are held and written together in one write once N
      are held. Held messages are also written once the session is idle (no received
      command waiting, no message added) for coalesce_window, so a reply that a
      one-at-a-time client waits for is late by at most that window; coalescing shows
      when the client pipelines commands or several messages are due at once. On UDP
      the held messages go out as one datagram.
    - trickle_bytes / split_writes: each write goes out in pieces (trickle_bytes per
      trickle_interval; split_writes: one byte per write, SPLIT_PAUSE apart). Not on
      UDP, where a datagram is never split.

    And per received frame: stall ignores it; drop_after=N answers the first N commands
    of a session and drops the connection on command N+1 (drop_mode "before_reply":
    unanswered; "mid_reply": half its answer is written first); device_errors /
    device_error_rate answer a command with the protocol's error reply
    (`Simulator.device_error`) instead of handling it.

    Per connection: refuse keeps the device off the network (no TCP listener: connect
    is refused; no UDP socket: ICMP port unreachable; on a serial pty every byte is
    lost); max_clients closes a connection beyond N live sessions at once, before any
    greeting; idle_timeout closes a session once that long passed since the last
    command was answered (or since it connected). reboot_every power-cycles the device
    (`Simulator.reboot`) periodically. Authentication faults (`fail_auth`) live in
    `AuthKnobs`, for the protocols that have authentication.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    reply_delay: Duration = Field(0.0, description="wait this long before sending each message")
    split_writes: bool = Field(
        False, description="write messages one byte per write, pausing between bytes"
    )
    trickle_bytes: int | None = Field(
        None,
        ge=1,
        description="write messages N bytes at a time, trickle_interval apart (a slow link); "
        "not on UDP",
    )
    trickle_interval: Duration = Field(
        0.05, gt=0, description="pause between the pieces of a trickled message"
    )
    coalesce_replies: int = Field(
        1,
        ge=1,
        description="hold messages and write N in one write; held messages are flushed anyway "
        "once the session has been idle for coalesce_window",
    )
    coalesce_window: Duration = Field(
        0.05, gt=0, description="idle time after which held messages are written"
    )
    drop_after: int | None = Field(
        None,
        ge=0,
        description="answer N commands of a session, then drop the connection on the next one",
    )
    drop_mode: Literal["before_reply", "mid_reply"] = Field(
        "before_reply",
        description="how drop_after drops: before_reply = abort, the command unanswered; "
        "mid_reply = write the first half of its answer, then abort",
    )
    garbage_every: int | None = Field(
        None, ge=1, description="send junk bytes with every Nth message of a session"
    )
    garbage_mode: Literal["line", "prefix", "replace"] = Field(
        "line",
        description="line: junk is its own terminated line before the message; prefix: junk "
        "starts the message's line; replace: a junk line is sent instead of the message",
    )
    stall: bool = Field(
        False,
        description="accept connections but never answer: frames are ignored, nothing is "
        "sent, idle_timeout does not close (a hung device)",
    )
    refuse: bool = Field(
        False,
        description="off the network: TCP connects are refused, UDP gets ICMP port "
        "unreachable, a serial pty loses every byte; live TCP sessions stay",
    )
    device_errors: int = Field(
        0,
        ge=0,
        description="answer the next N commands (all sessions) with the protocol's device "
        "error instead of handling them; counts down as they are answered",
    )
    device_error_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="fraction of commands answered with the protocol's device error",
    )
    reboot_every: Duration | None = Field(
        None,
        gt=0,
        description="power-cycle the device this often: connections dropped, refused for "
        "reboot_downtime, back with the start state",
    )
    reboot_downtime: Duration = Field(1.0, description="how long a reboot refuses connections")
    idle_timeout: Duration | None = Field(
        None, gt=0, description="close a session when no command arrived for this long"
    )
    max_clients: int | None = Field(
        None, ge=1, description="close extra connections at once, before any greeting"
    )
    seed: int | None = Field(
        None, description="seed for random fault decisions (device_error_rate, junk bytes, ...)"
    )
    _watchers: _Watchers = PrivateAttr(default_factory=_Watchers)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            for watcher in list(self._watchers):
                watcher(name)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied._watchers = _Watchers()
        return copied

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(knob name)` after every assignment to a knob; returns a remover."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)


class AuthKnobs(Knobs):
    """Knobs of a protocol with authentication (PJLink, Extron SIS, Q-SYS)."""

    fail_auth: bool = Field(
        False,
        description="refuse every login, even with the right credentials, and ask for one "
        "even when no password is set (new connections)",
    )


KnobsT = TypeVar("KnobsT", bound=Knobs)
Listener = Callable[[str, object], None]
"""Called with (state key, new value) on every state change of a simulator."""


class Writer(Protocol):
    """Where a session's bytes go: an asyncio.Transport fits, so will a pty or UDP peer."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Push:
    data: bytes


class _Eof:
    pass


_EOF = _Eof()
_Item = bytes | ProtocolError | _Push | _Eof


class Session:
    """One client connection: frames are handled one at a time, messages go out through the knobs."""

    def __init__(
        self, sim: Simulator[Any], writer: Writer, peer: str, framer: Framer[bytes] | None = None
    ) -> None:
        self.sim = sim
        self.peer = peer
        # A UDP peer: each frame is one datagram and each message goes out as one.
        self.datagram: bool = getattr(writer, "datagram", False)
        self.commands = 0  # frames received
        self.messages = 0  # messages sent
        self._writer = writer
        self._framer = framer if framer is not None else sim.make_framer()
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._held: list[bytes] = []
        self._pushes = 0  # pushed messages queued, not sent yet
        self._cut = False  # drop_mode mid_reply: the next message is cut, then the link drops
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._last_command = self._loop.time()
        self.task: asyncio.Task[None] = self._loop.create_task(self._run(), name=f"session {peer}")

    def __repr__(self) -> str:
        return f"<Session {self.sim.kind} {self.peer}>"

    @property
    def on_serial(self) -> bool:
        """True when the session runs on a serial pty (`start_pty`), not a network connection."""
        return isinstance(self._writer, _PtyWriter)

    @property
    def closed(self) -> bool:
        """True once the session closed or was asked to."""
        return self._closing or self._writer.is_closing()

    def feed(self, data: bytes) -> None:
        """Bytes from the client; complete frames are queued for the handler."""
        for frame in self._framer.feed(data):
            self._inbox.put_nowait(frame)

    def connection_lost(self) -> None:
        """The transport went away; frames already queued are still handled."""
        self.sim.forget(self)
        self._inbox.put_nowait(_EOF)

    def push(self, data: bytes) -> None:
        """Queue an unsolicited message; it is sent in order with the replies."""
        self._pushes += 1
        self._inbox.put_nowait(_Push(data))

    def close(self) -> None:
        """Close after the current frame: held messages are written, then the writer closes."""
        self._closing = True

    def abort(self) -> None:
        """Drop the connection now; held and buffered bytes are lost."""
        self._closing = True
        self._held.clear()
        self._writer.abort()
        self.sim.forget(self)

    async def send(self, data: bytes) -> None:
        """Send one message through the knobs (see `Knobs` for the order they act in)."""
        knobs = self.sim.knobs
        if knobs.stall:
            self.sim.stalled += 1
            return
        if knobs.reply_delay and not self._writer.is_closing():
            await asyncio.sleep(knobs.reply_delay)
        if self._writer.is_closing():
            return
        self.messages += 1
        if knobs.garbage_every and self.messages % knobs.garbage_every == 0:
            data = await self._spoil(data)
        if self._cut:
            self._cut = False
            log.info("%s: dropping the connection in the middle of a reply", self)
            self._held.append(data[: len(data) // 2])
            await self._flush()
            self.abort()
            return
        self._held.append(data)
        if len(self._held) >= knobs.coalesce_replies:
            await self._flush()

    async def _spoil(self, data: bytes) -> bytes:
        """`data` with junk, as garbage_mode says."""
        junk = self.sim.make_garbage()
        mode = self.sim.knobs.garbage_mode
        if mode == "prefix":
            return junk + data
        line = junk + self.sim.line_end
        if mode == "replace":
            return line
        if self.datagram:  # a junk datagram of its own
            await self._write(line)
            return data
        return line + data

    async def _flush(self) -> None:
        data, self._held = b"".join(self._held), []
        if data:
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        """Write `data` whole, or in pieces as trickle_bytes / split_writes say."""
        if self._writer.is_closing():
            return
        knobs = self.sim.knobs
        step, pause = len(data), 0.0
        if knobs.trickle_bytes:
            step, pause = knobs.trickle_bytes, knobs.trickle_interval
        elif knobs.split_writes:
            step, pause = 1, SPLIT_PAUSE
        if self.datagram or step >= len(data):
            self._writer.write(data)
            return
        for start in range(0, len(data), step):
            if self._writer.is_closing():
                return
            if start:
                await asyncio.sleep(pause)
            self._writer.write(data[start : start + step])

    async def _next(self) -> _Item | None:
        """The next inbox item, flushing held messages when idle; None on idle timeout."""
        while True:
            with contextlib.suppress(asyncio.QueueEmpty):
                return self._inbox.get_nowait()
            knobs = self.sim.knobs
            timeout: float | None = None
            if knobs.idle_timeout is not None:
                timeout = max(0.0, self._last_command + knobs.idle_timeout - self._loop.time())
            if self._held:
                window = knobs.coalesce_window
                timeout = window if timeout is None else min(timeout, window)
            try:
                async with asyncio.timeout(timeout):
                    return await self._inbox.get()
            except TimeoutError:
                if not self._held:
                    return None
                await self._flush()

    def _idle_expired(self) -> bool:
        limit = self.sim.knobs.idle_timeout
        return limit is not None and self._loop.time() >= self._last_command + limit

    async def _run(self) -> None:
        try:
            await self.sim.session_started(self)
            while not self._closing:  # not `closed`: frames queued before EOF still count
                item = await self._next()
                if item is None:
                    if self.sim.knobs.stall:  # a hung device does not time out either
                        self._last_command = self._loop.time()
                    if not self._idle_expired():  # knobs changed while it waited
                        continue
                    log.info("%s: idle timeout, closing", self)
                    self.close()
                elif isinstance(item, _Eof):
                    break
                elif isinstance(item, _Push):
                    self._pushes -= 1
                    await self.send(item.data)
                elif isinstance(item, ProtocolError):
                    self.sim.frame_error(self, item)
                else:
                    await self._handle(item)
            if not self._writer.is_closing():
                await self._flush()
        except Exception:
            log.exception("%s: simulator session failed", self)
        finally:
            log.debug("%s: closed", self)
            self._writer.close()
            self.sim.forget(self)
            self.sim.session_ended(self)

    async def _handle(self, frame: bytes) -> None:
        knobs = self.sim.knobs
        if knobs.stall:
            self.sim.stalled += 1
            return
        self.commands += 1
        drop_after = knobs.drop_after
        if drop_after is not None and self.commands > drop_after:
            if knobs.drop_mode == "before_reply":
                log.info("%s: dropping the connection after %d commands", self, drop_after)
                self.abort()
                return
            self._cut = True
        try:
            await self.sim.answer(self, frame)
        except Exception:
            log.exception("%s: error handling %r", self, frame[:60])
        if self._cut and not self._pushes:  # no reply to cut, none queued: drop all the same
            self._cut = False
            log.info("%s: dropping the connection after %d commands", self, drop_after)
            self.abort()
        self._last_command = self._loop.time()


class _TcpProtocol(asyncio.Protocol):
    """Glue from an accepted TCP connection to a Session."""

    def __init__(self, sim: Simulator[Any]) -> None:
        self._sim = sim
        self._session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._session = self._sim.open_session(transport, name)

    def data_received(self, data: bytes) -> None:
        if self._session is not None:
            self._session.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session.connection_lost()


class _DatagramWriter:
    """A Writer for one UDP peer: each write goes out as one datagram to that peer."""

    datagram = True

    def __init__(self, transport: asyncio.DatagramTransport, peer: Any) -> None:
        self._transport = transport
        self._peer = peer
        self._closed = False

    def write(self, data: bytes) -> None:
        if not self.is_closing():
            self._transport.sendto(data, self._peer)

    def close(self) -> None:
        self._closed = True

    def abort(self) -> None:
        self._closed = True

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()


class _UdpProtocol(asyncio.DatagramProtocol):
    """Glue from a UDP socket to one Session per peer address; one datagram is one frame."""

    def __init__(self, sim: Simulator[Any]) -> None:
        self._sim = sim
        self._sessions: dict[Any, Session] = {}
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._transport is None:
            return
        session = self._sessions.get(addr)
        if session is None or session.closed:
            writer = _DatagramWriter(self._transport, addr)
            peer = f"{addr[0]}:{addr[1]}"
            session = self._sim.open_session(writer, peer, PassThroughFramer())
            if session is None:
                return
            self._sessions[addr] = session
        session.feed(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s simulator: %s", self._sim.kind, exc)  # e.g. a client that went away

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for session in self._sessions.values():
            session.connection_lost()


def _make_raw(fd: int, baudrate: int) -> None:
    """Set a tty to raw 8N1 at `baudrate`: no echo, no CR/LF translation, no signals."""
    speed = next((c for c, rate in _BAUD_RATES.items() if rate == baudrate), None)
    if speed is None:
        raise ValueError(f"{baudrate} is not a standard baud rate a pty can be set to")
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    oflag &= ~termios.OPOST
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8 | termios.CREAD
    lflag &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    # TCSANOW: a flush here would look like the host opening the port.
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


def _replace_link(link: Path, target: str) -> None:
    """Point symlink `link` at `target` atomically; refuse to replace anything but a symlink."""
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


class _PtyWriter:
    """A session's view of a pty port: bytes pass until the session ends (the port stays)."""

    def __init__(self, port: _PtyPort) -> None:
        self._port = port
        self._closed = False
        self.session: Session | None = None

    def write(self, data: bytes) -> None:
        if not self._closed:
            self._port.write(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.session is not None:  # as a closed TCP connection would, end the session
            asyncio.get_running_loop().call_soon(self.session.connection_lost)

    abort = close

    def is_closing(self) -> bool:
        return self._closed


class _PtyPort:
    """The device end of a pseudo-terminal: a simulator's serial port.

    A host (a driver, a terminal program) opens the slave end. A session starts when
    the host opens the port — pyserial flushes its input on open, which the master
    sees in packet mode — or sends bytes while no session is live; one at a time.
    The simulator holds the slave open too, so the line keeps its settings while the
    host has it closed, and bytes it sends then are lost as on a real line. While the
    host's speed differs from `baudrate`, bytes both ways are dropped (a real UART
    would garble them), with one warning per session. While the simulator refuses
    connections (knob `refuse`, or a reboot) the device is off: every byte is lost.
    """

    def __init__(self, sim: Simulator[Any], baudrate: int, link: Path | None) -> None:
        master, slave = os.openpty()
        try:
            _make_raw(slave, baudrate)
            fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
            os.set_blocking(master, False)
            self.slave_path = os.ttyname(slave)
            if link is not None:
                _replace_link(link, self.slave_path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self.sim = sim
        self.baudrate = baudrate
        self.link = link
        self.session: Session | None = None
        self._master, self._slave = master, slave
        self._warned: Session | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._readable)

    @property
    def path(self) -> str:
        """What a host opens: the link when there is one, else the slave device."""
        return str(self.link) if self.link is not None else self.slave_path

    def _readable(self) -> None:
        try:
            packet = os.read(self._master, 4097)  # status byte + up to 4096 data bytes
        except BlockingIOError:
            return
        except OSError as err:
            log.warning("%s simulator: pty %s failed: %s", self.sim.kind, self.path, err)
            self.sim.close_pty()
            return
        if not packet or self.sim.refusing:  # a device that is off hears nothing
            return
        if packet[0] != termios.TIOCPKT_DATA:
            if packet[0] & termios.TIOCPKT_FLUSHREAD:  # the host opened (or reset) the port
                self._start_session()
            return
        if self.session is None or self.session.closed:
            self._start_session()
        if self.session is not None and self._speed_matches():
            self.session.feed(packet[1:])

    def _start_session(self) -> None:
        old = self.session
        if old is not None and not old.task.done():
            old.abort()
        writer = _PtyWriter(self)
        self.session = writer.session = self.sim.open_session(writer, f"pty {self.slave_path}")

    def _speed_matches(self) -> bool:
        host = termios.tcgetattr(self._slave)[5]
        if _BAUD_RATES.get(host) == self.baudrate:
            return True
        if self._warned is not self.session:
            self._warned = self.session
            log.warning(
                "%s simulator: host set %s to %s baud, the device runs at %d: bytes lost",
                self.sim.kind,
                self.path,
                _BAUD_RATES.get(host, "a non-standard"),
                self.baudrate,
            )
        return False

    def write(self, data: bytes) -> None:
        """Send bytes down the line; what the host's full buffer cannot take is lost."""
        if not self._speed_matches():
            return
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        except OSError as err:
            log.warning("%s simulator: pty %s write failed: %s", self.sim.kind, self.path, err)
            return
        if written < len(data):
            log.debug("%s: host not reading, %d bytes lost", self.path, len(data) - written)

    def close(self) -> None:
        """Pull the port: the host's reads fail at once; the link is removed."""
        self._loop.remove_reader(self._master)
        if self.session is not None:
            self.session.abort()
        os.close(self._master)
        os.close(self._slave)
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.slave_path:
                    self.link.unlink()


class Simulator(ABC, Generic[KnobsT]):
    """A simulated device: state, knobs, and a TCP listener that gives each client a Session.

    `start_pty` serves the same device on a pseudo-terminal instead (or as well).

    Each protocol implements `handle_frame` (its behaviour), `device_error` (its error
    reply, for the device_errors knobs) and `reset_state` (its start state, for
    `reboot`); `__init__` of a subclass calls `reset_state()` once its own attributes
    exist.
    """

    kind: ClassVar[str] = "device"
    knobs_model: ClassVar[type[Knobs]] = Knobs
    default_port: ClassVar[int] = 0
    terminators: ClassVar[bytes] = b"\r\n"  # any of these ends a received frame
    line_end: ClassVar[bytes] = b"\r"  # ends a garbage line
    max_frame: ClassVar[int] = 4096
    serial: ClassVar[bool] = False  # True when the real device also has an RS-232 port

    def __init__(self, knobs: KnobsT | None = None) -> None:
        self.knobs: KnobsT = knobs if knobs is not None else cast(KnobsT, self.knobs_model())
        self.rng = random.Random(self.knobs.seed)
        """Every random fault decision draws from this (seeded by the `seed` knob)."""
        self.sessions: set[Session] = set()
        self.connections = 0  # connections accepted
        self.refused = 0  # connections closed at once (max_clients, or while refusing)
        self.stalled = 0  # frames ignored and messages not sent while stalled
        self.device_errors_sent = 0  # commands answered with a device error
        self.reboots = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._scheme = "tcp"
        self._started = False  # between start() and stop(), listening or not
        self._rebooting = 0  # reboots under way
        self._listening = asyncio.Lock()
        self._reboot_loop: asyncio.Task[None] | None = None
        self._pty: _PtyPort | None = None
        self._listeners: list[Listener] = []
        self.knobs.watch(self._knob_changed)

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """Knobs a device's own config implies (its password, say), for `--simulate`."""
        return {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Command-line options of this kind beyond its knobs (`python -m simulators KIND`)."""

    @classmethod
    def options_from_arguments(cls, args: argparse.Namespace) -> dict[str, Any]:
        """Knobs those options give (the knob flags override them); ValueError when bad."""
        return {}

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None) -> Self:
        """Build from a plain knob dict (e.g. a device's `simulator:` config); validates it."""
        return cls(cast(KnobsT, cls.knobs_model.model_validate(options or {})))

    # -- listening -------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 = an ephemeral port); OSError if it cannot bind."""
        await self._start("tcp", host, port)

    async def start_udp(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve UDP on host:port: each peer address gets a Session, each datagram is a frame."""
        await self._start("udp", host, port)

    async def _start(self, scheme: str, host: str, port: int) -> None:
        if self.running:
            raise RuntimeError(f"{self.kind} simulator is already listening on {self.address}")
        self._scheme, self._host = scheme, host
        await self._listen(port)  # binds even when refusing: the port is known from now on
        self._started = True
        if self.refusing:
            self._unlisten()
        self._follow_reboot_every()

    async def _listen(self, port: int) -> None:
        """Open the listening socket on the host at `port` (0: any) and record the port.

        Subclasses that serve more sockets (a UDP side channel, say) open them here too.
        """
        loop = asyncio.get_running_loop()
        if self._scheme == "udp":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self._host, port)
            )
            self._udp = transport
            self._port = transport.get_extra_info("sockname")[1]
        else:
            self._server = await loop.create_server(
                lambda: _TcpProtocol(self), self._host, port, reuse_address=True
            )
            self._port = self._server.sockets[0].getsockname()[1]

    def _unlisten(self) -> None:
        """Close the listening socket(s): new TCP connections are refused, UDP sessions end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()

    async def _follow_refuse(self) -> None:
        """Listen again once neither `refuse` nor a reboot keeps the device off the network."""
        async with self._listening:
            if not self._started or self.refusing or self.listening:
                return
            try:
                await self._listen(self.port)
            except OSError as err:
                log.error(
                    "%s simulator: cannot listen on port %d again: %s", self.kind, self.port, err
                )
                return
            if not self._started or self.refusing:  # changed while the socket opened
                self._unlisten()

    @property
    def refusing(self) -> bool:
        """True while the device is off the network: knob `refuse`, or a reboot."""
        return self.knobs.refuse or self._rebooting > 0

    @property
    def listening(self) -> bool:
        """True while a TCP listener or UDP socket is open."""
        return self._server is not None or self._udp is not None

    async def start_pty(self, link: str | Path | None = None, baudrate: int = 9600) -> str:
        """Serve on a new raw pseudo-terminal at `baudrate`; returns the path a host opens.

        With `link`, a symlink there (created or replaced) points at the pty and is
        returned, so `close_pty()` then `start_pty(link=same)` unplugs and replugs a
        port whose path stays valid.
        """
        if self._pty is not None:
            raise RuntimeError(f"{self.kind} simulator already serves pty {self._pty.path}")
        self._pty = _PtyPort(self, baudrate, Path(link) if link is not None else None)
        self._follow_reboot_every()
        return self._pty.path

    def close_pty(self) -> None:
        """Unplug the serial port: the host's port fails at once and the link is removed."""
        pty, self._pty = self._pty, None
        if pty is not None:
            pty.close()

    @property
    def pty_path(self) -> str | None:
        """The path `start_pty` returned, while the pty is open."""
        return self._pty.path if self._pty is not None else None

    async def stop(self) -> None:
        """Stop listening, close the pty and drop every session; state is kept, so `start` may follow."""
        self._started = False
        self.close_pty()
        server = self._server
        self._unlisten()
        for session in list(self.sessions):
            session.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        if not self.running:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """True between `start` and `stop`, even while refusing connections."""
        return self._started

    @property
    def port(self) -> int:
        """The bound port; still known after `stop` so a restart can reuse it."""
        if self._port is None:
            raise RuntimeError(f"{self.kind} simulator was never started")
        return self._port

    @property
    def host(self) -> str:
        return self._host

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self.port

    @property
    def url(self) -> str:
        return f"{self._scheme}://{self._host}:{self.port}"

    # -- faults that are actions -------------------------------------------------

    async def reboot(self, downtime: float | None = None) -> None:
        """Power-cycle the device; returns once it is back.

        Every session is dropped at once, the device is off the network for `downtime`
        seconds (default: knob reboot_downtime) as with knob `refuse`, and it comes
        back with its start state (`reset_state`).
        """
        wait = self.knobs.reboot_downtime if downtime is None else downtime
        log.info("%s simulator: rebooting (%.2fs)", self.kind, wait)
        self.reboots += 1
        self._rebooting += 1
        if self._started:
            self._unlisten()
        self.drop_sessions()
        self.reset_state()
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self._rebooting -= 1
            if self._started:  # cancelled, but not by stop(): the device comes back anyway
                self._spawn(self._follow_refuse())
            raise
        self._rebooting -= 1
        await self._follow_refuse()

    def drop_sessions(self) -> None:
        """Break every live connection now: TCP peers get a reset, a pty session just ends."""
        for session in list(self.sessions):
            session.abort()

    def _follow_reboot_every(self) -> None:
        loop, self._reboot_loop = self._reboot_loop, None
        if loop is not None:
            loop.cancel()
        serving = self._started or self._pty is not None
        if serving and self.knobs.reboot_every is not None:
            self._reboot_loop = self._spawn(self._reboot_forever())

    async def _reboot_forever(self) -> None:
        while (every := self.knobs.reboot_every) is not None:
            await asyncio.sleep(every)
            await self.reboot()

    def _knob_changed(self, name: str) -> None:
        """Knobs that act on the listener act at once (the rest are read when used)."""
        if name == "refuse" and self._started:  # else start() applies it
            if self.refusing:
                self._unlisten()  # now: the very next connect is refused
            else:
                self._spawn(self._follow_refuse())
        elif name == "reboot_every":
            self._follow_reboot_every()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task that `stop()` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- state-change listeners -------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(key, value)` on every state change; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def state_changed(self, key: str, value: object) -> None:
        """Tell every listener that state `key` is now `value`; a failing listener is logged."""
        for listener in list(self._listeners):
            try:
                listener(key, value)
            except Exception:
                log.exception("%s simulator: state listener failed on %s", self.kind, key)

    # -- sessions --------------------------------------------------------------

    def open_session(
        self, writer: Writer, peer: str, framer: Framer[bytes] | None = None
    ) -> Session | None:
        """Start a session for a new client, or close it at once (max_clients, refusing).

        Transports call this; `framer` overrides `make_framer()` (e.g. one frame per datagram).
        """
        limit = self.knobs.max_clients
        full = limit is not None and len(self.sessions) >= limit
        if full or self.refusing:
            self.refused += 1
            log.info("%s simulator: refusing %s (%s)", self.kind, peer, "full" if full else "off")
            writer.close()
            return None
        self.connections += 1
        session = Session(self, writer, peer, framer)
        log.debug("%s: connected", session)
        self.sessions.add(session)
        self._tasks.add(session.task)
        session.task.add_done_callback(self._tasks.discard)
        return session

    def forget(self, session: Session) -> None:
        """Stop counting `session` as connected (idempotent)."""
        self.sessions.discard(session)

    def broadcast(self, data: bytes) -> None:
        """Push an unsolicited message to every connected session."""
        for session in self.sessions:
            session.push(data)

    async def answer(self, session: Session, frame: bytes) -> None:
        """Handle one received frame, or answer it with a device error as the knobs say."""
        knobs = self.knobs
        counted = knobs.device_errors > 0
        rate = knobs.device_error_rate  # no draw at 0: seeded runs stay as they were
        due = counted or (rate > 0 and self.rng.random() < rate)
        if due and await self.device_error(session, frame):
            self.device_errors_sent += 1
            if counted and knobs.device_errors > 0:
                knobs.device_errors -= 1
            return
        await self.handle_frame(session, frame)

    # -- hooks for subclasses --------------------------------------------------

    def make_framer(self) -> Framer[bytes]:
        """The framer for a new session."""
        return DelimiterFramer(self.terminators, self.max_frame)

    def make_garbage(self) -> bytes:
        """Junk bytes for garbage_every; never contains a terminator or a frame start."""
        return bytes(self.rng.choices(GARBAGE_BYTES, k=GARBAGE_LEN))

    async def session_started(self, session: Session) -> None:
        """Called once per session before any frame (send a greeting here)."""

    @abstractmethod
    async def handle_frame(self, session: Session, frame: bytes) -> None:
        """Answer one received frame (terminator removed) with `session.send`."""

    @abstractmethod
    async def device_error(self, session: Session, frame: bytes) -> bool:
        """Answer `frame` with this protocol's device-error reply instead of handling it.

        False (nothing sent) when the frame is not a command that could get one: a
        login step, a frame for another device, a notification without a reply. It is
        then handled as usual and the device_errors knob does not count down.
        """

    @abstractmethod
    def reset_state(self) -> None:
        """Set device state to what the knobs say at start (after a reboot, say).

        What a real device keeps in non-volatile memory (stored presets) survives.
        """

    def frame_error(self, session: Session, error: ProtocolError) -> None:
        """A frame the framer had to drop (e.g. too long); the session stays open."""
        log.warning("%s: %s", session, error)

    def session_ended(self, session: Session) -> None:
        """Called once when a session is over."""


SimulatorT = TypeVar("SimulatorT", bound="Simulator[Any]")


async def start_many(
    make: Callable[[], SimulatorT], count: int, host: str = "127.0.0.1", port_base: int = 0
) -> list[SimulatorT]:
    """Start `count` independent simulators on ports port_base, port_base+1, ...

    With port_base 0 each gets its own ephemeral port. If one cannot bind, those
    already started are stopped and the OSError propagates.
    """
    sims: list[SimulatorT] = []
    try:
        for i in range(count):
            sim = make()
            await sim.start(host, port_base + i if port_base else 0)
            sims.append(sim)
    except BaseException:
        await asyncio.gather(*(sim.stop() for sim in sims), return_exceptions=True)
        raise
    return sims
