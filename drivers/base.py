"""Driver base: one connection, one request in flight, a paced queue, polling, online/offline.

A driver subclass describes its device: how frames are cut (`create_framer`), what
happens after connecting (`login`), what to poll (`poll_groups`), what unsolicited
frames mean (`unsolicited`) and which actions it offers (`@action` methods). This
class owns everything else: connecting and reconnecting with backoff, matching
replies to the one outstanding request, retries, coalescing, lockouts, and turning
state into change-only updates.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from drivers.actions import ActionSpec, collect_actions
from drivers.config import DeviceConfig
from drivers.errors import (
    AuthError,
    AvhubError,
    CommandError,
    CommandTimeout,
    ConnectError,
    ConnectionClosed,
    DeviceError,
    ErrorCode,
    OfflineReason,
    ProtocolError,
    TransportError,
)
from drivers.queue import Kind, Work, WorkQueue
from drivers.transport import ConnectionState, Transport, TransportFactory, create_transport
from drivers.transport.backoff import Backoff
from drivers.transport.framing import Framer

log = logging.getLogger("avhub.driver")

C = TypeVar("C", bound=DeviceConfig)
StateSink = Callable[[dict[str, Any]], None]
ActionsSink = Callable[[dict[str, dict[str, Any]]], None]
"""Where a driver's new action schemas go (`Driver.publish_actions`)."""
Matcher = Callable[[Any], Any]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NOT_MINE = _Sentinel("NOT_MINE")
"""A matcher's answer for a frame that is not the reply it waits for (route it elsewhere)."""
MORE = _Sentinel("MORE")
"""A matcher's answer for a frame that belongs to the reply but does not finish it."""

TRANSITIONS = ("warming", "cooling")
_BACKLOG = 64


@dataclass(slots=True)
class PollGroup:
    """Keys polled together: `run` queries the device and calls `update`."""

    name: str
    run: Callable[[], Awaitable[None]]
    interval: Callable[[], float]
    last: float = field(default=-1.0)


@dataclass(slots=True)
class _Pending:
    match: Matcher
    future: asyncio.Future[Any]
    data: bytes | None
    deadline: float


class _Connection:
    """Receiver bound to one transport, so late callbacks from an old one are ignored.

    Bytes (and a loss) that arrive while the transport is still opening, before the
    driver adopts the connection, are kept and handed over by `adopt`: a device that
    greets at once must not have its greeting dropped (event loops differ in whether
    the first `data_received` runs before `open` returns).
    """

    def __init__(self, driver: Driver[Any], transport: Transport, framer: Framer[Any]) -> None:
        self.driver = driver
        self.transport = transport
        self.framer = framer
        self._early: list[bytes] | None = []  # None once adopted
        self._lost_early: list[Exception | None] = []

    def adopt(self) -> None:
        """Make this the driver's connection and deliver what came before."""
        early, self._early = self._early, None
        self.driver._conn = self
        for data in early or ():
            self.data_received(data)
        for exc in self._lost_early:
            self.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early.append(data)
        elif self.driver._conn is self:
            self.driver._on_data(self.framer.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._early is not None:
            self._lost_early[:] = [exc]
        elif self.driver._conn is self:
            self.driver._on_lost(exc)


class Driver(ABC, Generic[C]):
    """Base class of every device driver; see the module docstring."""

    name: ClassVar[str]
    persistent: ClassVar[bool] = True
    """Keep a connection open (push updates) rather than connect when there is work."""
    actions: ClassVar[dict[str, ActionSpec]] = {}
    _action_schemas: ClassVar[dict[str, dict[str, Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.actions = collect_actions(cls)

    def __init__(
        self,
        device_id: str,
        config: C,
        sink: StateSink,
        *,
        label: str | None = None,
        transport_factory: TransportFactory = create_transport,
    ) -> None:
        self.device_id = device_id
        self.config = config
        self.label = label or device_id
        self.state: dict[str, Any] = {
            "online": False,
            "offline_reason": OfflineReason.STARTING.value,
        }
        self.conn_state = ConnectionState.IDLE
        self._sink = sink
        self.actions_sink: ActionsSink | None = None  # set by the hub: see publish_actions
        self._transport_factory = transport_factory
        self._queue = WorkQueue()
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max)
        self._retry_at = 0.0
        self._failures = 0
        self._reported_offline = False
        self._conn: _Connection | None = None
        self._pending: _Pending | None = None
        self._backlog: list[Any] = []  # frames nobody claimed yet; the newest _BACKLOG
        self._held: list[Any] | None = None  # frames waiting behind a reply (see _feed)
        self._last_io = 0.0
        self._groups: list[PollGroup] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None  # see _arm
        self._current: Work | None = None
        self._closing = False

    # ---- what subclasses provide -------------------------------------------------

    @abstractmethod
    def create_framer(self) -> Framer[Any]:
        """A fresh framer for a new connection."""

    async def login(self) -> None:
        """Run after every (re)connect: greeting, authentication, subscriptions."""

    def poll_groups(self) -> list[PollGroup]:
        """What to poll and how often; called once at start."""
        return []

    def unsolicited(self, frame: Any) -> None:
        """A frame no request claimed: a push update, or noise to log."""
        log.warning("%s: unexpected data from device: %r", self.label, frame)

    # ---- state ---------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return bool(self.state["online"])

    def update(self, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        """Record new values; publish only the keys whose value changed."""
        merged = {**changes, **kw} if changes else kw
        diff = {k: v for k, v in merged.items() if k not in self.state or self.state[k] != v}
        if not diff:
            return
        self.state.update(diff)
        self._sink(diff)
        self._queue.wake()  # poll intervals may depend on state (e.g. while warming)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for_state(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds after some update; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                # Not wait_for: on 3.11 it swallows a cancel that arrives as the event is set.
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                return predicate()
        return True

    def in_transition(self) -> bool:
        """True while power is warming or cooling."""
        return self.state.get("power") in TRANSITIONS

    def describe_actions(self) -> dict[str, dict[str, Any]]:
        """Action name → JSON Schema of its arguments (the snapshot's `actions`).

        Built once per driver class and shared by all its devices: treat it as read-only.
        """
        cls = type(self)
        schemas: dict[str, dict[str, Any]] | None = cls.__dict__.get("_action_schemas")
        if schemas is None:
            schemas = {name: spec.schema() for name, spec in self.actions.items()}
            cls._action_schemas = schemas
        return schemas

    def publish_actions(self) -> None:
        """Tell the hub that `describe_actions()` changed (say, limits learnt at login)."""
        if self.actions_sink is not None:
            self.actions_sink(self.describe_actions())

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self, stagger: float | None = None) -> None:
        """Start the worker; the first poll (and connect) begins after a random stagger."""
        self._groups = self.poll_groups()
        if stagger is None:
            stagger = random.uniform(0, min(self.config.poll_interval, 1.0))
        self._tasks = [asyncio.create_task(self._worker(stagger), name=f"{self.label}-worker")]

    async def stop(self) -> None:
        """Close the connection, fail queued commands, stop every task."""
        self._closing = True
        self.conn_state = ConnectionState.CLOSED
        for task in self._tasks:
            task.cancel()
        for work in self._queue.drain():
            work.resolve(error=CommandError(ErrorCode.DEVICE_OFFLINE, "hub is shutting down"))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_connection()

    # ---- commands ------------------------------------------------------------------

    async def execute(self, action: str, raw_args: object = None) -> Any:
        """Run a panel command; raises AvhubError subclasses carrying an ErrorCode."""
        spec = self.actions.get(action)
        if spec is None:
            known = ", ".join(sorted(self.actions))
            raise CommandError(
                ErrorCode.UNKNOWN_ACTION,
                f"{self.device_id} has no action {action!r} (has: {known})",
            )
        args = spec.parse(raw_args)
        self._require_online()
        if spec.lockout and self.in_transition():
            await self._hold_for_transition(spec.name)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        run = (
            partial(getattr(self, spec.method), args)
            if args is not None
            else getattr(self, spec.method)
        )
        self._queue.put(Work(Kind.COMMAND, run, spec.key(args), spec.name, future))
        return await future

    def _require_online(self) -> None:
        if not self.online:
            reason = self.state.get("offline_reason") or "unknown"
            raise CommandError(ErrorCode.DEVICE_OFFLINE, f"{self.device_id} is offline ({reason})")

    async def _hold_for_transition(self, name: str) -> None:
        power = self.state.get("power")
        if self.config.lockout == "reject":
            raise CommandError(ErrorCode.BUSY, f"{self.device_id} is {power}; {name} refused")
        ended = await self.wait_for_state(
            lambda: not self.in_transition() or not self.online, self.config.lockout_timeout
        )
        if not ended:
            raise CommandError(ErrorCode.BUSY, f"{self.device_id} still {self.state.get('power')}")
        self._require_online()

    def refresh(self, groups: Iterable[str] | None = None) -> None:
        """Queue the named poll groups (all when None) to run soon."""
        now = asyncio.get_running_loop().time()
        for group in self._groups:
            if groups is None or group.name in groups:
                group.last = now
                self._queue.put(Work(Kind.POLL, group.run, ("poll", group.name), group.name))

    # ---- talking to the device -----------------------------------------------------

    async def request(
        self, data: bytes | None, match: Matcher, timeout: float | None = None
    ) -> Any:
        """Send `data` (or nothing) and wait for the frame `match` accepts.

        `match(frame)` returns the result, NOT_MINE, MORE, or raises a DeviceError the
        caller gets. Frames it rejects go to `unsolicited`. Outside `login`, the request
        (re)connects as needed and is retried up to `retries` times on a timeout or a
        lost connection; a device that is already offline gets one try.
        """
        if self.conn_state is ConnectionState.LOGGING_IN:
            return await self._exchange(data, match, timeout or self.config.connect_timeout)
        await self.yield_to_commands()
        tries = 1 + (self.config.retries if self.online else 0)
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                await self._connect_or_fail()  # counts its own failures
            except (TransportError, CommandTimeout) as err:
                if last or isinstance(err, AuthError) or not self.online:
                    raise
                continue
            try:
                result = await self._exchange(data, match, timeout or self.config.timeout)
            except (TransportError, CommandTimeout) as err:
                self._failed(err)
                if not (isinstance(err, CommandTimeout) and self._datagram()):
                    self._drop_connection()  # a datagram endpoint outlives a lost reply
                if last or isinstance(err, AuthError) or not self.online:
                    raise
                log.debug("%s: retrying after %s", self.label, err)
            except (DeviceError, ProtocolError):
                self._succeeded()  # the device answered, even if to say no
                raise
            else:
                self._succeeded()
                return result
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes | None, match: Matcher, timeout: float) -> Any:
        """One try: write, then wait for the matching frame on the current connection."""
        conn = self._conn
        if conn is None:
            raise ConnectionClosed(f"{self.label}: not connected")
        if self._pending is not None:
            raise RuntimeError("one request at a time")
        if data is None and self._backlog:  # arrived before anyone asked, like a greeting
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
        if data is not None:
            await self._pace()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending = pending = _Pending(match, future, data, loop.time() + timeout)
        try:
            if data is not None:
                if not conn.transport.is_open:
                    raise ConnectionClosed(f"{self.label}: connection closed")
                conn.transport.write(data)
            self._arm(loop, pending.deadline)
            return await future
        finally:
            self._pending = None
            self._last_io = time.monotonic()

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure the request timer fires by `deadline`.

        One timer per driver, not one per request: requests take milliseconds and time
        out after seconds, so the timer set for an earlier request usually still
        stands; when it fires it re-arms for the request then pending, if any.
        """
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        pending = self._pending
        if pending is None or pending.future.done():
            return
        if pending.deadline > loop.time():
            self._arm(loop, pending.deadline)
            return
        what = f"reply to {pending.data!r}" if pending.data is not None else "data from device"
        pending.future.set_exception(CommandTimeout(f"{self.label}: no {what}"))

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

    def _on_data(self, frames: list[Any]) -> None:
        if self._held is not None:
            self._held.extend(frames)
        else:
            self._feed(frames)

    def _feed(self, frames: list[Any]) -> None:
        for i, frame in enumerate(frames):
            if isinstance(frame, ProtocolError):
                log.warning("%s: skipped bad data: %s", self.label, frame)
                continue
            if self._dispatch(frame) and i + 1 < len(frames):
                # The requester applies its reply when it resumes. Frames behind the
                # reply (a newer push, say) wait until then, so state follows the stream.
                self._held = list(frames[i + 1 :])
                asyncio.get_running_loop().call_soon(self._release, self._conn)
                return

    def _release(self, conn: _Connection | None) -> None:
        held, self._held = self._held, None
        if held and conn is self._conn:
            self._feed(held)

    def _dispatch(self, frame: Any) -> bool:
        """Route one frame; True when it completed the pending request."""
        pending = self._pending
        if pending is not None and not pending.future.done():
            try:
                result = pending.match(frame)
            except AvhubError as err:
                pending.future.set_exception(err)
                return True
            except Exception as err:  # a driver bug must not kill the connection callback
                log.exception("%s: reply matcher failed on %r", self.label, frame)
                pending.future.set_exception(ProtocolError(f"cannot parse reply {frame!r}: {err}"))
                return True
            if result is MORE:
                return False
            if result is not NOT_MINE:
                pending.future.set_result(result)
                return True
        if self.conn_state is not ConnectionState.ONLINE:
            self._backlog.append(frame)
            if len(self._backlog) > _BACKLOG:
                del self._backlog[0]
            return False
        try:
            self.unsolicited(frame)
        except ProtocolError as err:
            log.warning("%s: skipped bad data: %s", self.label, err)
        except Exception:
            log.exception("%s: failed to handle %r", self.label, frame)
        return False

    def _on_lost(self, exc: Exception | None) -> None:
        self._conn = None
        self._backlog.clear()
        if self._pending is not None and not self._pending.future.done():
            why = f": {exc}" if exc else ""
            lost = ConnectionClosed(f"{self.label}: connection closed{why}")
            if isinstance(exc, TransportError):  # e.g. ICMP port unreachable on UDP: "refused"
                lost.reason = exc.reason
            self._pending.future.set_exception(lost)
        if self._closing:
            return
        log.debug("%s: connection closed%s", self.label, f" ({exc})" if exc else "")
        self.conn_state = ConnectionState.IDLE
        if self.persistent:
            self._queue.put(Work(Kind.CONNECT, self._noop, ("connect",), "reconnect"))

    async def _noop(self) -> None:
        """A CONNECT work item needs no work beyond the connection it ensures."""

    def _datagram(self) -> bool:
        return self._conn is not None and self._conn.transport.datagram

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._backlog.clear()
        if conn is not None:
            conn.transport.close()
        if not self._closing:
            self.conn_state = ConnectionState.IDLE

    async def _connect_or_fail(self) -> None:
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
        conn = _Connection(self, transport, self.create_framer())
        await transport.open(conn)
        self.conn_state = ConnectionState.LOGGING_IN
        conn.adopt()
        try:
            await self.login()
        except BaseException:
            self._drop_connection()
            raise
        self.conn_state = ConnectionState.ONLINE
        while self._backlog:  # pushed during login, nobody claimed them
            self._dispatch(self._backlog.pop(0))

    # ---- the worker ----------------------------------------------------------------

    async def _worker(self, stagger: float) -> None:
        """Run queued work, most urgent first, and queue each poll group when it is due.

        One task per device does both: between pieces of work it waits for new work
        or the next poll, whichever comes first.
        """
        loop = asyncio.get_running_loop()
        queue = self._queue
        begin = loop.time() + stagger
        while loop.time() < begin:  # a refresh asked for meanwhile still runs
            work = await queue.get(begin)
            if work is not None:
                await self._run(work)
        if self.persistent:
            queue.put(Work(Kind.CONNECT, self._noop, ("connect",), "connect"))
        self.refresh()
        count = len(self._groups)
        for i, group in enumerate(self._groups):  # later groups a little later each round
            group.last += self._interval(group) * i / (2 * count)
        while True:
            work = await queue.get(self._queue_due_polls(loop.time()))
            if work is not None:
                await self._run(work)

    async def _run(self, work: Work) -> None:
        """Do one piece of work and hand its outcome to every caller waiting on it."""
        outer, self._current = self._current, work
        try:
            result = await self._attempt(work)
        except asyncio.CancelledError:
            work.resolve(error=CommandError(ErrorCode.DEVICE_OFFLINE, "hub is shutting down"))
            raise
        except AvhubError as err:
            if work.kind is not Kind.COMMAND:
                log.debug("%s: %s failed: %s", self.label, work.label, err)
            work.resolve(error=err)
        except Exception as err:
            log.exception("%s: %s failed", self.label, work.label)
            work.resolve(error=CommandError(ErrorCode.INTERNAL, f"internal error: {err}"))
        else:
            work.resolve(result)
        finally:
            self._current = outer

    async def yield_to_commands(self) -> None:
        """Between the requests of a poll, run waiting user commands first.

        A poll group can be many requests long; a user waits for at most the one in
        flight, not for the whole group. `request` calls this itself; a driver calls it
        before taking something per-request from shared state (a sequence number) so
        the commands that run first do not take it out of order.
        """
        current = self._current
        while current is not None and current.kind is Kind.POLL:
            command = self._queue.pop(Kind.COMMAND)
            if command is None:
                return
            await self._run(command)

    async def _attempt(self, work: Work) -> Any:
        if work.kind is Kind.CONNECT:
            try:
                await self._connect_or_fail()
            except AvhubError:
                if self.persistent and not self._closing:
                    self._queue.put(Work(Kind.CONNECT, self._noop, ("connect",), "reconnect"))
                raise
        return await work.run()

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
            if not self._reported_offline:
                self._reported_offline = True
                log.warning("%s offline: %s (retrying with backoff)", self.label, err)
            self.update(online=False, offline_reason=reason)
        elif not self.online:
            self.update(offline_reason=reason)
        log.debug("%s: failure %d (%s), next try in %.2fs", self.label, self._failures, err, delay)

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
        self.update(online=True, offline_reason=None)
        self.refresh()

    # ---- polling -------------------------------------------------------------------

    def _queue_due_polls(self, now: float) -> float | None:
        """Queue every poll group that is due; returns when the next one will be."""
        next_due = None
        for group in self._groups:
            interval = self._interval(group)
            due = group.last + interval
            if due <= now:
                group.last = now
                self._queue.put(Work(Kind.POLL, group.run, ("poll", group.name), group.name))
                due = now + interval
            if next_due is None or due < next_due:
                next_due = due
        return next_due

    def _interval(self, group: PollGroup) -> float:
        """The group's interval now; `poll_interval` if the driver's own rule fails.

        The worker that runs commands also schedules polls, so a bug here must not
        stop the device from taking commands.
        """
        try:
            return float(group.interval())
        except Exception:
            log.exception("%s: interval of poll group %r failed", self.label, group.name)
            return self.config.poll_interval
