"""One hub's link to Redis: ordered commits, the change reader, availability and recovery.

Commits of every room go out in the order they were made, pipelined (one round trip
for whatever queued meanwhile); the script's answer numbers the change and the local
mirror applies it at once (the fast path for this hub's own panels). The commit script
also publishes each change on its room's channel: one subscriber per hub brings the
other hubs' changes into the mirrors, and reads a room's stream (`XRANGE` from the
mirror's `seq`) when it subscribes and whenever a published change is not the next one,
so that what was committed while it was not subscribed arrives too, in `seq` order.

When Redis cannot be reached the hub keeps running: changes wait in the outbox, panels
and `/healthz` are told `store_unavailable`, and a recovery task reconnects with capped
backoff. Back, it reloads each room: same epoch, the outbox is committed in order and the
reader brings what the other hubs committed; a new epoch (Redis lost the room), every
mirror reloads, its panels get a snapshot and the owners commit their devices' full state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from drivers.errors import AvhubError, ErrorCode
from hub.cluster.commands import CommandBus
from hub.cluster.ownership import Ownership
from hub.cluster.scripts import Scripts
from hub.cluster.settings import ClusterSettings
from hub.cluster.store import RedisStore, encode_change
from hub.cluster.tasks import STOP_WAIT, stop_tasks
from hub.encoding import dumps

log = logging.getLogger("avhub.cluster")

BATCH = 512  # most commits in one pipeline
IDLE_WAIT = 1.0  # seconds between looks for an opened room when there is none
MAX_OUTBOX = 100_000  # beyond this, waiting changes are merged per device
BACKOFF_MIN, BACKOFF_MAX = 0.05, 1.0
LINK_ERRORS = (RedisError, OSError, TimeoutError)


class StoreUnavailable(AvhubError):
    """Redis cannot be reached."""

    code = ErrorCode.STORE_UNAVAILABLE


def redacted(url: str) -> str:
    """`redis://host:port/db` without user name or password, for logs and errors."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


class _Kind(Enum):
    CHANGE = "commit"  # a state change (COMMIT)
    DESCRIPTION = "describe"  # new action schemas (DESCRIBE)
    FORGET = "forget"  # the device left the room: its state and description go (FORGET)


@dataclass(slots=True)
class _Pending:
    store: RedisStore
    device: str
    changes: dict[str, Any]
    ts: float
    token: str
    epoch: str
    encoded: list[str]  # COMMIT's `change_json key1 value1 …`, DESCRIBE's `description_json`
    kind: _Kind = _Kind.CHANGE
    actions: dict[str, str] | None = None  # a description change's name → schema id
    schemas: dict[str, Any] | None = None  # ... and id → schema


StatusListener = Callable[[bool], None]
ResetListener = Callable[[RedisStore], None]


class ClusterNode:
    """This hub in a cluster: Redis clients, rooms' stores, leases and forwarded commands."""

    def __init__(
        self,
        url: str,
        settings: ClusterSettings,
        *,
        replay_size: int = 1000,
        replay_max_age: float = 600.0,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.settings = settings
        self.node_id = settings.node_id or ""
        self.replay_size = replay_size
        self.replay_max_age = replay_max_age
        self.stores: dict[str, RedisStore] = {}
        self.available = False
        self.scripts = Scripts()
        self.ownership = Ownership(self)
        self.commands = CommandBus(self)
        self.status_listeners: list[StatusListener] = []
        self.reset_listeners: list[ResetListener] = []
        timeout = max(0.2, settings.lease_ttl / 4)  # an answer later than this: unreachable
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),  # a failure surfaces at once; recovery backs off
        }
        self.redis = Redis.from_url(url, socket_timeout=timeout, **options)
        # Blocking reads (pub/sub: changes, commands) on connections of their own, no timeout.
        self.listener = Redis.from_url(url, socket_timeout=None, **options)
        self._outbox: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._readers: list[asyncio.Task[None]] = []
        self._leases: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._stopping = False

    def store(self, room_id: str, name: str) -> RedisStore:
        """The store of a room (one per room id)."""
        store = RedisStore(
            self, room_id, name, ring_size=self.replay_size, max_age=self.replay_max_age
        )
        self.stores[room_id] = store
        store.fences = self.ownership.fences(room_id)
        return store

    async def start(self, address: tuple[str, int]) -> None:
        """Reach Redis (or raise StoreUnavailable), then run the commit, read and lease loops."""
        if not self.node_id:
            host = socket.gethostname()
            self.node_id = f"{host}:{address[1]}-{secrets.token_hex(3)}"
        try:
            await self._ping()
            await self.scripts.load(self.redis)
        except LINK_ERRORS as err:
            await self._close_clients()
            raise StoreUnavailable(f"cannot reach Redis at {self.where}: {_why(err)}") from None
        self.available = True
        self._up.set()
        self._tasks = [asyncio.create_task(self._write_loop(), name="cluster-commits")]
        self._restart_readers()
        log.info("cluster node %s on %s", self.node_id, self.where)

    def run_ownership(self) -> None:
        """Start taking device leases (after the rooms have registered their devices)."""
        self._leases = asyncio.create_task(self.ownership.run(), name="cluster-leases")

    async def stop_ownership(self) -> None:
        """Stop every device owned here and hand its lease back; take no more."""
        if self._leases is not None:
            await stop_tasks([self._leases], STOP_WAIT)
            self._leases = None
            await self.ownership.stop()

    async def stop(self) -> None:
        """Commit what is queued (briefly), stop the loops, disconnect."""
        await self.stop_ownership()
        await self.commands.stop()
        self._stopping = True
        await stop_tasks(self._tasks, STOP_WAIT)  # the commit loop, then what it had not sent
        if self._outbox and self.available:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._flush()
        tasks = [t for t in (*self._tasks, *self._readers, self._recovery) if t is not None]
        self._tasks, self._readers, self._recovery = [], [], None
        await stop_tasks(tasks, STOP_WAIT)  # a read that does not end must not hold up the exit
        try:
            async with asyncio.timeout(STOP_WAIT):
                await self._close_clients()
        except TimeoutError:
            log.warning("Redis connections did not close within %gs", STOP_WAIT)

    async def wait_available(self) -> None:
        await self._up.wait()

    # ---- rooms ---------------------------------------------------------------------

    async def open_store(self, store: RedisStore) -> None:
        """Load a room from Redis into its mirror (a room added at run time too)."""
        await self._load(store)
        if self._readers:
            self._restart_readers()  # so the blocking read takes the new stream

    async def _load(self, store: RedisStore) -> None:
        keys = [store.keys.meta, store.keys.state, store.keys.log, store.keys.actions]
        had = store.seq  # the reader may apply changes newer than Redis's answer meanwhile
        reply = await self.scripts.run(self.redis, "open", keys, [secrets.token_hex(8)])
        epoch, seq, state, entries, descriptions = reply
        if store.opened and epoch == store.epoch and had <= int(seq) <= store.seq:
            return  # the mirror has everything Redis had: the reader brings the rest
        if epoch == store.epoch and int(seq) < had:  # Redis lost changes panels have
            log.warning("room %s: Redis is behind this hub; starting a new epoch", store.room_id)
            await self.scripts.run(self.redis, "end", keys, [epoch])
            reply = await self.scripts.run(self.redis, "open", keys, [secrets.token_hex(8)])
            epoch, seq, state, entries, descriptions = reply
        if store.load(epoch, int(seq), state, entries, descriptions):
            log.warning(
                "room %s: continuity lost in Redis (now epoch %s at seq %d); panels resync",
                store.room_id,
                epoch,
                store.seq,
            )
            self._outbox = deque(p for p in self._outbox if p.store is not store)
            await self.ownership.reclaim(store.room_id)
            for listener in self.reset_listeners:
                listener(store)

    def check_epoch(self, store: RedisStore, epoch: str | None) -> None:
        """Redis's epoch of a room, as read now: reload the room when it is not the mirror's."""
        if epoch != store.epoch and self.available:
            self.lost(RuntimeError(f"room {store.room_id}: epoch changed in Redis"))

    # ---- commits -------------------------------------------------------------------

    def submit(self, store: RedisStore, device: str, changes: dict[str, Any], token: str) -> None:
        """Queue one change for Redis, behind every change queued before it."""
        encoded = encode_change(changes)  # not JSON: raises here, as in-process fan-out would
        self._queue(_Pending(store, device, changes, time.time(), token, store.epoch, encoded))

    def describe(
        self,
        store: RedisStore,
        device: str,
        actions: dict[str, str],
        schemas: dict[str, Any],
        token: str,
    ) -> None:
        """Queue a description change (new action schemas) in order with the changes."""
        encoded = [dumps({"actions": actions, "schemas": schemas})]
        kind = _Kind.DESCRIPTION
        pending = _Pending(store, device, {}, time.time(), token, store.epoch, encoded, kind)
        pending.actions, pending.schemas = actions, schemas
        self._queue(pending)

    def forget(self, store: RedisStore, device: str) -> None:
        """Queue deleting a device's state in Redis (it left the room), in order with changes."""
        self._queue(_Pending(store, device, {}, time.time(), "", store.epoch, [], _Kind.FORGET))

    def _queue(self, pending: _Pending) -> None:
        outbox = self._outbox
        outbox.append(pending)
        if len(outbox) == 1:
            self._wake.set()
        elif len(outbox) > MAX_OUTBOX:
            self._outbox = _merged(outbox)
            log.warning("%d changes wait for Redis: merged per device", MAX_OUTBOX)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except Exception:  # a bug here must not stop every later commit
                log.exception("committing to Redis failed")

    async def _flush(self) -> None:
        """Commit the outbox in order, a pipeline at a time, while Redis answers."""
        while self._outbox and self.available:
            batch = [self._outbox[i] for i in range(min(BATCH, len(self._outbox)))]
            pipe = self.redis.pipeline(transaction=False)
            for p in batch:
                self._queue_script(pipe, p)
            try:
                results = await pipe.execute(raise_on_error=False)
            except LINK_ERRORS as err:
                self.lost(err)
                return
            for _ in batch:
                self._outbox.popleft()
            for p, result in zip(batch, results, strict=True):
                if isinstance(result, ResponseError):
                    log.warning("commit script failed: %s", result)
                    self.lost(result)  # e.g. NOSCRIPT: Redis restarted under us
                elif p.kind is _Kind.FORGET:
                    continue
                elif result == -1 and p.epoch == p.store.epoch:
                    self.lost(RuntimeError(f"room {p.store.room_id}: epoch ended in Redis"))
                else:
                    p.store.committed(p.device, p.changes, p.ts, result, p.actions, p.schemas)

    def _queue_script(self, pipe: Pipeline, p: _Pending) -> None:
        keys = p.store.keys
        if p.kind is _Kind.FORGET:
            self.scripts.run(pipe, "forget", [keys.state, keys.actions], [p.device])
            return
        args = [p.epoch, p.token, p.store.ring_size, repr(p.ts), p.device, *p.encoded]
        lease = keys.lease(p.device)
        if p.kind is _Kind.DESCRIPTION:
            describe_keys = [keys.meta, keys.log, lease, keys.actions, keys.changes]
            self.scripts.run(pipe, "describe", describe_keys, args)
        else:
            commit_keys = [keys.meta, keys.state, keys.log, lease, keys.changes]
            self.scripts.run(pipe, "commit", commit_keys, args)

    # ---- the change reader ---------------------------------------------------------

    async def _read_loop(self) -> None:
        """Take the rooms' published changes; catch up from a room's stream where needed."""
        while True:
            await self._up.wait()
            stores = {s.keys.changes: s for s in self.stores.values() if s.opened}
            if not stores:
                await asyncio.sleep(IDLE_WAIT)
                continue
            pubsub = self.listener.pubsub()
            try:
                await pubsub.subscribe(*stores)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    store = stores.get(message["channel"])
                    if store is None:
                        continue
                    kind = message["type"]
                    if kind == "subscribe" or (
                        kind == "message" and not self._pushed(store, message["data"])
                    ):
                        await self._catch_up(store)
            except LINK_ERRORS as err:
                self.lost(err)
            except Exception:  # a bug here must not leave the mirrors without changes
                log.exception("cluster change reader failed; reloading the rooms")
                self.lost(RuntimeError("the change reader failed"))
                await asyncio.sleep(IDLE_WAIT)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _pushed(self, store: RedisStore, text: str) -> bool:
        """Apply a published change; False when changes before it have not reached the mirror."""
        try:
            return store.push(text)
        except Exception:
            log.exception("room %s: unreadable change published in Redis", store.room_id)
            self.lost(RuntimeError(f"room {store.room_id}: reloading its mirror"))
            return True

    async def _catch_up(self, store: RedisStore) -> None:
        """Apply what the room's stream has after the mirror's `seq` (published or not)."""
        entries = await self.redis.xrange(store.keys.log, min=f"{store.seq + 1}-0")
        try:
            complete = store.receive(entries)
        except Exception:
            log.exception("room %s: unreadable change in Redis", store.room_id)
            complete = False
        if not complete:
            self.lost(RuntimeError(f"room {store.room_id}: reloading its mirror"))

    def _restart_readers(self) -> None:
        """(Re)start the change reader and the command listener on fresh subscriptions."""
        for task in self._readers:
            task.cancel()
        self._readers = [
            asyncio.create_task(self._read_loop(), name="cluster-reader"),
            asyncio.create_task(self.commands.run(), name="cluster-commands"),
        ]

    # ---- availability --------------------------------------------------------------

    def lost(self, err: BaseException) -> None:
        """Redis failed or disagrees with a mirror: tell panels, recover in the background."""
        if self._stopping or (self._recovery is not None and not self._recovery.done()):
            return
        told = self.available and isinstance(err, LINK_ERRORS)
        self.available = False
        self._up.clear()
        if isinstance(err, LINK_ERRORS):
            log.warning("Redis at %s unreachable (%s); reconnecting", self.where, _why(err))
        else:
            log.warning("%s; reloading from Redis", err)
        if told:
            self._tell(False)
        self._recovery = asyncio.create_task(self._recover(told), name="cluster-recovery")

    async def _recover(self, told: bool) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                await self._ping()
                await self.scripts.load(self.redis)
                for store in list(self.stores.values()):
                    if store.opened:
                        await self._load(store)
                break
            except LINK_ERRORS as err:
                log.debug("Redis at %s still unreachable: %s", self.where, _why(err))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BACKOFF_MAX)
        self._restart_readers()
        self.ownership.recovered()
        self.available = True
        self._up.set()
        self._wake.set()
        if told:
            log.warning("Redis at %s reachable again", self.where)
            self._tell(True)

    def _tell(self, available: bool) -> None:
        for listener in self.status_listeners:
            listener(available)

    async def _ping(self) -> None:
        await cast(Awaitable[bool], self.redis.ping())

    async def _close_clients(self) -> None:
        for client in (self.redis, self.listener):
            await client.aclose()


def _merged(outbox: deque[_Pending]) -> deque[_Pending]:
    """One waiting change per device and epoch, holding its latest value of every key.

    Changes on either side of a description change or a forget are not merged across it.
    """
    merged: dict[tuple[int, str, str, int], _Pending] = {}
    generation = 0
    for p in outbox:
        if p.kind is not _Kind.CHANGE:
            generation += 1
            merged[(id(p.store), p.device, p.epoch, -generation)] = p
            continue
        key = (id(p.store), p.device, p.epoch, generation)
        first = merged.get(key)
        if first is None:
            merged[key] = _Pending(p.store, p.device, dict(p.changes), p.ts, p.token, p.epoch, [])
        else:
            first.changes.update(p.changes)
            first.ts, first.token = p.ts, p.token
    for p in merged.values():
        if p.kind is _Kind.CHANGE:
            p.encoded = encode_change(p.changes)
    return deque(merged.values())


def _why(err: BaseException) -> str:
    return str(err) or type(err).__name__
