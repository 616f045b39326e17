"""The link to one device: its connection, the requests in flight, online/offline.

A link connects (after a backoff once tries have failed), lets its device log in,
writes requests and hands every frame that comes back to the matcher of a request
in flight, else to the device's `unsolicited`. Usually one request is in flight; a
pipelined device may have a group of them, written at once (`request_many`). It
counts failures and publishes `online` and `offline_reason` through the device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Generic, Protocol

from typing_extensions import TypeVar

from drivers.config import DeviceConfig
from drivers.errors import (
    AuthError,
    AvhubError,
    CommandTimeout,
    ConnectError,
    ConnectionClosed,
    DeviceError,
    OfflineReason,
    ProtocolError,
    TransportError,
)
from drivers.stats import DeviceStats
from drivers.transport import ConnectionState, Transport, TransportFactory
from drivers.transport.backoff import Backoff
from drivers.transport.framing import Framer
from drivers.worker import Worker

log = logging.getLogger("avhub.driver")

F = TypeVar("F", default=Any)
"""The frame type: what the framer yields and matchers take; `Driver[C]` alone means any."""
R = TypeVar("R")

_BACKLOG = 64
NOT_REPEATED: ContextVar[bool] = ContextVar("avhub_not_repeated", default=False)
"""True while a command whose effect adds up runs (`ActionSpec.repeat` False): a request
of it that was written is not retried (`Link._request`)."""
CLOSE_TURNS = 4  # loop turns a timeout waits for a close already in the socket to land
PIPELINE_WAIT: Final = 0.05
"""Seconds the replies of one pipelined write may take at the device's recent pace: a
command queued meanwhile waits for them, so a slower device gets its groups in parts."""
_GAP_WEIGHT = 0.25  # of each new gap between the replies of a write, in their average


class Wait(Enum):
    """A matcher's answer for a frame that does not complete its reply: keep waiting."""

    NOT_MINE = "NOT_MINE"
    MORE = "MORE"

    def __repr__(self) -> str:
        return self.name


NOT_MINE: Final = Wait.NOT_MINE
"""A matcher's answer for a frame that is not the reply it waits for (route it elsewhere)."""
MORE: Final = Wait.MORE
"""A matcher's answer for a frame that belongs to the reply but does not finish it."""


class Device(Protocol[F]):
    """What a link needs from the driver above it."""

    label: str
    stats: DeviceStats

    def create_framer(self) -> Framer[F]: ...

    async def login(self) -> None: ...

    def unsolicited(self, frame: F) -> None: ...

    def update(self, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> None: ...

    def refresh(self, groups: Iterable[str] | None = None) -> None: ...


Request = tuple[bytes | None, Callable[[F], Any]]
"""What to write (None: nothing) and the matcher of its reply."""


class _Waiting:
    """The reply slot of a request not answered yet."""


_WAITING: Final = _Waiting()


@dataclass(slots=True)
class _Pending(Generic[F]):
    """The requests in flight, written together: one, or a pipelined group.

    A frame goes to the oldest request still waiting whose matcher claims it; the
    future gets every reply, in request order, once each request has one (or the
    first error a matcher raised, once each request has an answer).
    """

    requests: Sequence[Request[F]]
    replies: list[Any]
    future: asyncio.Future[list[Any]]
    timeout: float
    waiting: int
    written: float = 0.0
    """When the requests went out (`time.monotonic`): each reply's latency counts from it."""
    answered: float = 0.0
    """When the last reply came (`time.monotonic`), 0.0 before the first."""
    error: AvhubError | None = None
    first: int = 0
    """No request before this index is waiting (replies usually come in order)."""

    @property
    def deadline(self) -> float:
        """When (`time.monotonic`) the next reply is due: `timeout` after the write or the
        last reply."""
        return max(self.written, self.answered) + self.timeout

    def first_waiting(self) -> int:
        """The index of the oldest request without a reply."""
        return next(i for i, reply in enumerate(self.replies) if reply is _WAITING)


class _Connection(Generic[F]):
    """Receiver bound to one transport, so late callbacks from an old one are ignored.

    Bytes (and a loss) that arrive while the transport is still opening, before the
    link adopts the connection, are kept and handed over by `adopt`: a device that
    greets at once must not have its greeting dropped (event loops differ in whether
    the first `data_received` runs before `open` returns).
    """

    __slots__ = ("_early", "_lost_early", "framer", "link", "transport")

    def __init__(self, link: Link[F], transport: Transport, framer: Framer[F]) -> None:
        self.link = link
        self.transport = transport
        self.framer = framer
        self._early: list[bytes] | None = []  # None once adopted
        self._lost_early: list[Exception | None] = []

    def adopt(self) -> None:
        """Make this the link's connection and deliver what came before."""
        early, self._early = self._early, None
        self.link._conn = self
        for data in early or ():
            self.data_received(data)
        for exc in self._lost_early:
            self.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link._conn is self:  # adopted (so nothing is kept early)
            frames = self.framer.feed(data)
            if link._held is not None:
                link._held.extend(frames)
            elif frames:
                link._feed(frames)
        elif self._early is not None:
            self._early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._early is not None:
            self._lost_early[:] = [exc]
        elif self.link._conn is self:
            self.link._on_lost(exc)


class Link(Generic[F]):
    """One device's connection: connect and log in, match replies, count failures."""

    __slots__ = (
        "_backlog",
        "_backoff",
        "_closing",
        "_conn",
        "_failures",
        "_gap",
        "_held",
        "_last_io",
        "_pending",
        "_pipelined",
        "_reported_offline",
        "_retry_at",
        "_timeout",
        "_timer",
        "_transport_factory",
        "_worker",
        "_written",
        "config",
        "conn_state",
        "device",
        "label",
        "online",
    )

    def __init__(
        self,
        device: Device[F],
        config: DeviceConfig,
        worker: Worker,
        transport_factory: TransportFactory,
        pipelined: bool = False,
    ) -> None:
        self.device = device
        self.config = config
        self.label = device.label
        self.online = False
        self.conn_state = ConnectionState.IDLE
        self._worker = worker
        self._transport_factory = transport_factory
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max)
        self._retry_at = 0.0
        self._failures = 0
        self._reported_offline = False
        self._written = 0  # requests written so far (`_request` tells a written try by it)
        self._conn: _Connection[F] | None = None
        self._pending: _Pending[F] | None = None
        self._backlog: list[F] = []  # frames nobody claimed yet; the newest _BACKLOG
        self._held: list[F | ProtocolError] | None = None  # frames behind a reply (see _feed)
        self._last_io = 0.0
        self._timer: asyncio.TimerHandle | None = None  # see _arm
        self._closing = False
        # Pacing needs each reply before the next write: no pipelining with a delay.
        self._pipelined = pipelined and not config.command_delay
        self._gap = 0.0  # seconds between the replies of one write, averaged (see _claim)
        self._timeout = config.timeout  # read for every request: a config's attributes are slow

    # ---- requests ------------------------------------------------------------------

    def request(
        self, data: bytes | None, match: Callable[[F], R | Wait], timeout: float | None = None
    ) -> Coroutine[Any, Any, R]:
        """Send `data` (or nothing) and return what `match` makes of the reply; see Driver."""
        return self._request(((data, match),), timeout, True)

    def request_many(
        self,
        requests: Sequence[tuple[bytes, Callable[[F], R | Wait]]],
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, list[R]]:
        """Send several requests, written at once on a pipelined link; see Driver."""
        if not self._pipelined or len(requests) < 2:
            return self._in_parts(requests, timeout, False)
        if self._gap * len(requests) > PIPELINE_WAIT:
            return self._in_parts(requests, timeout, True)
        return self._request(requests, timeout, False)

    async def _in_parts(
        self,
        requests: Sequence[tuple[bytes, Callable[[F], R | Wait]]],
        timeout: float | None,
        pipelined: bool,
    ) -> list[R]:
        """`request_many` one request at a time or, `pipelined`, in parts written at once;
        queued commands go between them."""
        replies: list[Any] = []
        error: DeviceError | ProtocolError | None = None
        done = 0
        while done < len(requests):
            size = 1
            if pipelined:  # the part the device answers within PIPELINE_WAIT, at least two
                size = max(2, int(PIPELINE_WAIT / self._gap)) if self._gap else len(requests)
            part = requests[done : done + size]
            done += len(part)
            try:
                if len(part) == 1:
                    replies.append(await self.request(*part[0], timeout))
                else:
                    replies += await self._request(part, timeout, False)
            except (DeviceError, ProtocolError) as err:  # answered: the rest go too, as in a group
                error = error or err
                replies += [None] * len(part)
        if error is not None:
            raise error
        return replies

    async def _request(
        self, requests: Sequence[Request[F]], timeout: float | None, single: bool
    ) -> Any:
        """Exchange `requests`, with retries; the one reply if `single`, else all of them."""
        if self.conn_state is ConnectionState.LOGGING_IN:
            replies = await self._exchange(requests, timeout or self.config.connect_timeout)
            return replies[0] if single else replies
        if self._worker.commands_waiting:
            await self._worker.yield_to_commands()
        online, attempt = self.online, 0
        while True:
            try:
                if self._conn is None or self.conn_state is not ConnectionState.ONLINE:
                    await self.connect()  # counts its own failures
            except (TransportError, CommandTimeout) as err:
                if self._last_try(attempt, online) or isinstance(err, AuthError) or not self.online:
                    raise
                self.device.stats.retries += len(requests)
                attempt += 1
                continue
            written = self._written
            try:
                replies = await self._exchange(requests, timeout or self._timeout)
            except (TransportError, CommandTimeout) as error:
                failure = await self._closed_meanwhile(error)
                self._failed(failure)
                if not (isinstance(failure, CommandTimeout) and self._datagram()):
                    self._drop_connection()  # a datagram endpoint outlives a lost reply
                if NOT_REPEATED.get() and self._written != written:
                    raise CommandTimeout(
                        f"{failure}; the device may have applied it, and it adds up, "
                        "so it was not sent again: check the device's state"
                    ) from error
                last = self._last_try(attempt, online)
                if last or isinstance(failure, AuthError) or not self.online:
                    if failure is error:
                        raise
                    raise failure from error
                self.device.stats.retries += len(requests)
                attempt += 1
                log.debug("%s: retrying after %s", self.label, failure)
            except (DeviceError, ProtocolError):
                self._succeeded()  # the device answered, even if to say no
                raise
            else:
                if self._failures or self._retry_at or not self.online:  # see _succeeded
                    self._succeeded()
                return replies[0] if single else replies

    def _last_try(self, attempt: int, online: bool) -> bool:
        """Whether try `attempt` (from 0) of a request is its last: a device online when it
        began gets `retries` more (read only once a try failed: the config is cold)."""
        return attempt >= (self.config.retries if online else 0)

    def _exchange(
        self, requests: Sequence[Request[F]], timeout: float, paced: bool = False
    ) -> Awaitable[list[Any]]:
        """One try: write `requests` (after the `command_delay`, unless `paced` already);
        the future gets their replies (`_claim`), a timeout (`_expire`) or the loss of
        the connection (`_on_lost`), each of which ends `_pending`."""
        single = len(requests) == 1  # a group is pipelined: no command_delay to keep
        if single and not paced and self.config.command_delay and requests[0][0] is not None:
            return self._paced(requests, timeout)
        conn = self._conn
        if conn is None:
            raise ConnectionClosed(f"{self.label}: not connected")
        if self._pending is not None and not self._pending.future.done():  # done: cancelled
            raise RuntimeError("one exchange at a time")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if single:
            data, match = requests[0]
            if data is None and self._backlog:  # arrived before anyone asked, like a greeting
                early = self._from_backlog(match)
                if early is not _WAITING:
                    future.set_result([early])
                    return future
        else:
            data = b"".join([d for d, _ in requests if d is not None])
        replies: list[Any] = [_WAITING] * len(requests)
        self._pending = pending = _Pending(requests, replies, future, timeout, len(requests))
        if data is not None:
            try:
                if not conn.transport.is_open:
                    raise ConnectionClosed(f"{self.label}: connection closed")
                conn.transport.write(data)
                self._written += 1
            except BaseException:
                self._pending = None
                raise
        pending.written = time.monotonic()
        # One timer per link, not one per request: requests take milliseconds and time
        # out after seconds, so the timer set for an earlier request usually still
        # stands; when it fires it re-arms for the request then pending (`_expire`).
        deadline = loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._expire, loop)
        return future

    async def _paced(self, requests: Sequence[Request[F]], timeout: float) -> list[Any]:
        await self._pace()
        return await self._exchange(requests, timeout, paced=True)

    def _from_backlog(self, match: Callable[[F], Any]) -> Any:
        """The first frame of the backlog `match` completes a reply with, or _WAITING."""
        early, rest = list(self._backlog), []
        self._backlog.clear()
        for i, frame in enumerate(early):
            result = match(frame)
            if result is NOT_MINE:
                rest.append(frame)
            elif result is not MORE:
                self._backlog[:] = (rest + early[i + 1 :])[-_BACKLOG:]
                return result
        self._backlog[:] = rest[-_BACKLOG:]
        return _WAITING

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        pending = self._pending
        if pending is None or pending.future.done():
            return
        late = time.monotonic() - pending.deadline
        if late < 0:
            self._timer = loop.call_at(loop.time() - late, self._expire, loop)
            return
        index = pending.first_waiting()
        data = pending.requests[index][0]
        what = f"reply to {data!r}" if data is not None else "data from device"
        if len(pending.requests) > 1:
            what += f" (request {index + 1} of {len(pending.requests)} written together)"
        if self.conn_state is not ConnectionState.ONLINE and self._backlog:
            sent = repr(self._backlog[-1])
            sent = sent if len(sent) <= 60 else sent[:57] + "..."
            what += f"; it sent {sent}, not an answer (another kind of device on this port?)"
        self.device.stats.timeouts += pending.waiting  # each request without an answer
        self._pending = None
        self._last_io = time.monotonic()
        pending.future.set_exception(CommandTimeout(f"{self.label}: no {what}"))

    async def post(self, data: bytes) -> None:
        """Write `data`, expecting no reply: (re)connected and paced like a request."""
        if self.conn_state is not ConnectionState.LOGGING_IN:
            await self._worker.yield_to_commands()
            await self.connect()
        await self._pace()
        self.send(data)

    def send(self, data: bytes) -> None:
        """Write without expecting a reply (notifications, keep-alives)."""
        if self._conn is None or not self._conn.transport.is_open:
            raise ConnectionClosed(f"{self.label}: not connected")
        self._conn.transport.write(data)
        self._last_io = time.monotonic()

    async def _pace(self) -> None:
        gap = self.config.command_delay - (time.monotonic() - self._last_io)
        if gap > 0:
            await asyncio.sleep(gap)

    # ---- frames from the device ----------------------------------------------------

    def _feed(self, frames: list[F | ProtocolError]) -> None:
        """Route frames in order: each to the requests in flight, else `_unclaimed`."""
        pending = self._pending
        if pending is not None and pending.future.done():  # cancelled
            pending = None
        now = time.monotonic()  # when they came: the latency of every reply among them
        waiting = pending.waiting if pending is not None else 0
        for i, frame in enumerate(frames):
            if isinstance(frame, ProtocolError):
                log.warning("%s: skipped bad data: %s", self.label, frame)
                continue
            if pending is not None:  # the same until it is complete (then this returns)
                claimed = self._claim(pending, frame, now)
                if claimed:
                    self._answered(pending, waiting, now)
                    if i + 1 < len(frames):
                        # The requester applies its reply when it resumes. Frames behind
                        # the reply (a newer push, say) wait until then, so state
                        # follows the stream.
                        self._held = list(frames[i + 1 :])
                        asyncio.get_running_loop().call_soon(self._release, self._conn)
                    return
                if claimed is not None:
                    continue
            self._unclaimed(frame)
        if pending is not None and pending.waiting < waiting:
            self._answered(pending, waiting, now)

    def _answered(self, pending: _Pending[F], waiting: int, now: float) -> None:
        """Count the replies of one read (`waiting` before it): answered, even if to say
        no, and each took from the write of their group until `now`."""
        self.device.stats.observe(now - pending.written, waiting - pending.waiting)

    def _release(self, conn: _Connection[F] | None) -> None:
        held, self._held = self._held, None
        if held and conn is self._conn:
            self._feed(held)

    def _unclaimed(self, frame: F) -> None:
        """A frame no request claimed: kept for the next request until the device is
        online, then the device's `unsolicited`."""
        if self.conn_state is not ConnectionState.ONLINE:
            self._backlog.append(frame)
            if len(self._backlog) > _BACKLOG:
                del self._backlog[0]
            return
        try:
            self.device.unsolicited(frame)
        except ProtocolError as err:
            log.warning("%s: skipped bad data: %s", self.label, err)
        except Exception:
            log.exception("%s: failed to handle %r", self.label, frame)

    def _claim(self, pending: _Pending[F], frame: F, now: float) -> bool | None:
        """Offer `frame`, received at `now` (`time.monotonic`), to the waiting requests,
        oldest first.

        None when no matcher claims it; else True when it answered the last waiting one.
        A matcher's error answers its request: the others still take their replies,
        so the stream stays in step, and the group fails with the first error.
        """
        requests, replies = pending.requests, pending.replies
        for i in range(pending.first, len(requests)):
            if replies[i] is not _WAITING:
                continue
            try:
                result = requests[i][1](frame)
            except AvhubError as err:
                result = None
                pending.error = pending.error or err
            except Exception as err:  # a driver bug must not kill the connection callback
                log.exception("%s: reply matcher failed on %r", self.label, frame)
                result = None
                pending.error = pending.error or ProtocolError(
                    f"cannot parse reply {frame!r}: {err}"
                )
            else:
                if result is NOT_MINE:
                    continue
                if result is MORE:
                    return False
            replies[i] = result
            if i == pending.first:
                pending.first = i + 1
            if pending.answered:  # the device's pace: the gap after another reply of the write
                self._gap += (now - pending.answered - self._gap) * _GAP_WEIGHT
            pending.answered = now  # each reply gets `timeout` after the one before it
            pending.waiting -= 1
            if pending.waiting:
                return False
            self._pending = None
            self._last_io = now
            if pending.error is not None:
                pending.future.set_exception(pending.error)
            else:
                pending.future.set_result(replies)
            return True
        return None

    async def _closed_meanwhile(
        self, err: TransportError | CommandTimeout
    ) -> TransportError | CommandTimeout:
        """A timeout that fired as the device hung up is reported as the hang-up.

        An event loop held up for longer than the timeout (a loaded machine) runs the due
        timer before it reads the close already waiting in the socket; a few turns of the
        loop let that close land, so the device goes offline as `closed`, not `timeout`.
        """
        if not isinstance(err, CommandTimeout) or self._datagram():
            return err
        for _ in range(CLOSE_TURNS):
            if self._conn is None:
                return ConnectionClosed(f"{self.label}: connection closed while waiting ({err})")
            await asyncio.sleep(0)
        return err

    def _on_lost(self, exc: Exception | None) -> None:
        self._conn = None
        self._backlog.clear()
        if self._pending is not None and not self._pending.future.done():
            why = f": {exc}" if exc else ""
            lost = ConnectionClosed(f"{self.label}: connection closed{why}")
            if isinstance(exc, TransportError):  # e.g. ICMP port unreachable on UDP: "refused"
                lost.reason = exc.reason
            self._pending.future.set_exception(lost)
        self._pending = None
        if self._closing:
            return
        log.debug("%s: connection closed%s", self.label, f" ({exc})" if exc else "")
        self.conn_state = ConnectionState.IDLE
        self._worker.reconnect()

    # ---- connecting ----------------------------------------------------------------

    async def connect(self) -> None:
        """Make sure a logged-in connection exists; count and back off on failure."""
        if self._conn is not None and self.conn_state is ConnectionState.ONLINE:
            return
        try:
            await self._connect()
        except (TransportError, CommandTimeout) as err:
            self._failed(err)
            raise
        except (DeviceError, ProtocolError) as err:  # login got an answer it cannot use
            self._failed(
                ConnectError(f"{self.label}: login failed: {err}", OfflineReason.PROTOCOL_ERROR)
            )
            raise
        self._succeeded()

    async def _connect(self) -> None:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            self.conn_state = ConnectionState.BACKING_OFF
            await asyncio.sleep(wait)
        self.conn_state = ConnectionState.CONNECTING
        transport = self._transport_factory(self.config.transport, self.config.connect_timeout)
        conn = _Connection(self, transport, self.device.create_framer())
        await transport.open(conn)
        self.conn_state = ConnectionState.LOGGING_IN
        conn.adopt()
        try:
            await self.device.login()
        except BaseException:
            self._drop_connection()
            raise
        self.conn_state = ConnectionState.ONLINE
        self.device.stats.connects += 1
        while self._backlog:  # pushed during login, nobody claimed them
            self._unclaimed(self._backlog.pop(0))

    def _datagram(self) -> bool:
        return self._conn is not None and self._conn.transport.datagram

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._backlog.clear()
        if conn is not None:
            conn.transport.close()
        if not self._closing:
            self.conn_state = ConnectionState.IDLE

    def reopen(self, online: bool) -> None:
        """Be ready to connect again after `close` (the device is started again)."""
        self._closing = False
        self.conn_state = ConnectionState.IDLE
        self.online = online
        self._failures = 0
        self._reported_offline = False
        self._retry_at = 0.0
        self._backoff.reset()

    def close(self) -> None:
        """Close the connection for good: no reconnect, no timer."""
        self._closing = True
        self.conn_state = ConnectionState.CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_connection()

    # ---- failure accounting --------------------------------------------------------

    def _failed(self, err: AvhubError) -> None:
        """Count a failed try: back off, and go offline after `offline_after` in a row."""
        self._failures += 1
        auth = isinstance(err, AuthError)
        delay = self._backoff.penalize() if auth else self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        reason = (
            err.reason.value if isinstance(err, TransportError) else OfflineReason.TIMEOUT.value
        )
        if auth or self._failures >= self.config.offline_after:
            if self.online:
                self.device.stats.went_offline(reason)
            self.online = False
            self.device.update(online=False, offline_reason=reason)
        elif not self.online:
            self.device.update(offline_reason=reason)
        if not self.online and not self._reported_offline:  # once, as panels first see it
            self._reported_offline = True
            log.warning("%s offline: %s", self.label, self._why_offline(err))
        log.debug("%s: failure %d (%s), next try in %.2fs", self.label, self._failures, err, delay)

    def _why_offline(self, err: AvhubError) -> str:
        """The error for the log line that already names the device: without the device's
        label again, with the device's address when the error does not give it."""
        text = str(err).removeprefix(f"{self.label}: ")
        transport = self.config.transport
        place = transport.path if transport.scheme == "serial" else transport.host
        if place and place not in text:
            return f"{text} ({transport}; retrying with backoff)"
        return f"{text} (retrying with backoff)"

    def _succeeded(self) -> None:
        """The device answered: reset the failure count; back online (and refresh) if needed."""
        if not self._failures and not self._retry_at and self.online:
            return  # the usual case: nothing failed since the last good reply
        self._failures = 0
        self._backoff.reset()
        self._retry_at = 0.0
        if self.online:
            return
        if self._reported_offline:
            log.warning("%s back online", self.label)
        else:
            log.info("%s online", self.label)
        self._reported_offline = False
        self.online = True
        self.device.update(online=True, offline_reason=None)
        self.device.refresh()
