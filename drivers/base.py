"""Driver base: the device-facing API, on top of a link and a worker.

A driver subclass describes its device: how frames are cut (`create_framer`), what
happens after connecting (`login`), what to poll (`poll_groups`), what unsolicited
frames mean (`unsolicited`) and which actions it offers (`@action` methods). Its
link (drivers/link.py) connects and reconnects with backoff, matches replies to the
requests in flight and tracks online/offline; its worker (drivers/worker.py)
runs commands before reconnects before polls, coalesced, one at a time. This class
turns state into change-only updates and panel commands into work, holding them
through power transitions.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from drivers.actions import ActionSpec, Args, collect_actions
from drivers.config import DeviceConfig
from drivers.errors import CommandError, ErrorCode, OfflineReason
from drivers.link import MORE, NOT_MINE, NOT_REPEATED, F, Link, R, Wait
from drivers.stats import DeviceStats
from drivers.transport import ConnectionState, TransportFactory, create_transport
from drivers.transport.framing import Framer
from drivers.worker import PollGroup, Worker

log = logging.getLogger("avhub.driver")

__all__ = [
    "MORE",
    "NOT_MINE",
    "TRANSITIONS",
    "ActionsSink",
    "Driver",
    "PollGroup",
    "StateSink",
    "Wait",
]

C = TypeVar("C", bound=DeviceConfig)
StateSink = Callable[[dict[str, Any]], None]
ActionsSink = Callable[[dict[str, dict[str, Any]]], None]
"""Where a driver's new action schemas go (`Driver.publish_actions`)."""

TRANSITIONS = ("warming", "cooling")


class Driver(ABC, Generic[C, F]):
    """Base class of every device driver; see the module docstring."""

    name: ClassVar[str]
    persistent: ClassVar[bool] = True
    """Keep a connection open (push updates) rather than connect when there is work."""
    pipelined: ClassVar[bool] = False
    """The protocol takes several requests in flight, answered in order or matched by id:
    `request_many` writes its requests at once (unless the device has a `command_delay`)."""
    actions: dict[str, ActionSpec] = {}
    """The `@action` methods of the class; a driver whose actions come from its config
    sets them per instance (and runs them through `bind_action`)."""
    _action_schemas: ClassVar[dict[str, dict[str, Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.actions = collect_actions(cls)

    @classmethod
    def actions_for(cls, config: DeviceConfig) -> dict[str, ActionSpec]:
        """The actions a device with `config` offers, known before it runs (for `avhub check`)."""
        return cls.actions

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
        self.stats = DeviceStats()
        self.state_version = 0
        """Times `update` changed `state`: while it stays the same, so does the state."""
        self._sink = sink
        self.actions_sink: ActionsSink | None = None  # set by the hub: see publish_actions
        self._waiters: list[asyncio.Future[None]] = []
        self._worker = Worker(self.label, config.poll_interval)
        self._link: Link[F] = Link(
            self, config, self._worker, transport_factory, pipelined=self.pipelined
        )

    # ---- what subclasses provide -------------------------------------------------

    @abstractmethod
    def create_framer(self) -> Framer[F]:
        """A fresh framer for a new connection."""

    async def login(self) -> None:
        """Run after every (re)connect: greeting, authentication, subscriptions."""

    def poll_groups(self) -> list[PollGroup]:
        """What to poll and how often; called once at start."""
        return []

    def unsolicited(self, frame: F) -> None:
        """A frame no request claimed: a push update, or noise to log."""
        log.warning("%s: unexpected data from device: %r", self.label, frame)

    def unavailable_reason(self, action: str) -> str:
        """Why `action` is in the `unavailable_actions` state key, for the error `execute` raises."""
        return "the device lists it in unavailable_actions"

    # ---- state ---------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._link.online

    @property
    def conn_state(self) -> ConnectionState:
        return self._link.conn_state

    @property
    def queued(self) -> int:
        """Pieces of work waiting (commands, a reconnect, polls)."""
        return self._worker.queued

    def update(self, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        """Record new values; publish only the keys whose value changed."""
        merged = {**changes, **kw} if changes else kw
        diff = {k: v for k, v in merged.items() if k not in self.state or self.state[k] != v}
        if not diff:
            return
        self.state.update(diff)
        self.state_version += 1
        self._sink(diff)
        self._worker.wake()  # poll intervals may depend on state (e.g. while warming)
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
        """Start the worker; the first poll (and connect) begins after a random stagger.

        A stopped driver may be started again (a hub that owns the device again): it
        goes on from its current `state`, online if that says so.
        """
        self._link.reopen(online=self.state.get("online") is True)
        connect = self._link.connect if self.persistent else None
        self._worker.start(self.poll_groups(), stagger, connect)

    async def stop(self) -> None:
        """Close the connection, fail queued commands, stop the worker."""
        self._link.close()
        await self._worker.stop()

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
        if action in (self.state.get("unavailable_actions") or ()):
            reason = self.unavailable_reason(action)
            raise CommandError(
                ErrorCode.UNKNOWN_ACTION, f"{self.device_id}: {action} is unavailable ({reason})"
            )
        args = spec.parse(raw_args)
        self._require_online()
        if spec.lockout and self.in_transition():
            await self._hold_for_transition(spec.name)
        run = self.bind_action(spec, args)
        if not spec.repeat:
            run = partial(_not_repeated, run)
        return await self._worker.command(run, spec.key(args), spec.name)

    def bind_action(self, spec: ActionSpec, args: Args | None) -> Callable[[], Awaitable[Any]]:
        """The work that runs `spec` with `args`: its `@action` method, by default."""
        method = getattr(self, spec.method)
        return partial(method, args) if args is not None else method

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
        self._worker.refresh(groups)

    # ---- talking to the device -----------------------------------------------------
    # `request` and `yield_to_commands` return the link's and the worker's coroutines
    # rather than awaiting them: no extra coroutine on every request.

    def request(
        self, data: bytes | None, match: Callable[[F], R | Wait], timeout: float | None = None
    ) -> Coroutine[Any, Any, R]:
        """Send `data` (or nothing) and return what `match` makes of the frame it accepts.

        `match(frame)` returns the result, NOT_MINE, MORE, or raises a DeviceError the
        caller gets. Frames it rejects go to `unsolicited`. Outside `login`, the request
        (re)connects as needed and is retried up to `retries` times on a timeout or a
        lost connection; a device that is already offline gets one try.
        """
        return self._link.request(data, match, timeout)

    def request_many(
        self,
        requests: Sequence[tuple[bytes, Callable[[F], R | Wait]]],
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, list[R]]:
        """Send several requests; return what their matchers make of the replies, in order.

        On a `pipelined` driver they go out in one write and are all in flight at once
        (each reply due `timeout` after the one before): each frame goes to the oldest
        waiting request whose matcher claims it, the rest to `unsolicited`. A matcher
        should apply its reply itself, so that replies and the notices between them
        take effect in stream order. A device whose replies come slowly one after the
        other gets them in parts (see drivers/link.py PIPELINE_WAIT), queued commands
        between. Otherwise (or with `command_delay`) they are sent one at a time.
        Either way every request is answered before the first error a matcher raised
        is raised; a timeout or a lost connection fails (and retries) the requests in
        flight, and the error ends the rest.
        """
        return self._link.request_many(requests, timeout)

    def send(self, data: bytes) -> None:
        """Write without expecting a reply (notifications, keep-alives)."""
        self._link.send(data)

    def post(self, data: bytes) -> Coroutine[Any, Any, None]:
        """Write `data` expecting no reply, as a request would: (re)connected, paced."""
        return self._link.post(data)

    def yield_to_commands(self) -> Coroutine[Any, Any, None]:
        """Between the requests of a poll, run waiting user commands first.

        A poll group can be many requests long; a user waits for at most the one in
        flight, not for the whole group. `request` calls this itself; a driver calls it
        before taking something per-request from shared state (a sequence number) so
        the commands that run first do not take it out of order.
        """
        return self._worker.yield_to_commands()


async def _not_repeated(run: Callable[[], Awaitable[Any]]) -> Any:
    """Run an action whose effect adds up: a request of it once written is not retried."""
    token = NOT_REPEATED.set(True)
    try:
        return await run()
    finally:
        NOT_REPEATED.reset(token)
