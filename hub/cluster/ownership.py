"""One owner per device: leases in Redis with a TTL and fencing tokens, spread over live hubs.

Every hub registers in `avhub:nodes` (renewed each tick, expiring after the lease TTL)
and computes the same plan from the same live set: each device goes to its highest
rendezvous-hash hub that still has room (at most ceil(devices / hubs) each), so devices
spread evenly and few move when a hub joins or leaves. A hub takes a free lease the plan
gives it (with a fresh fencing token), renews the leases it holds, and hands back the ones
the plan gives to another hub (stopping the device first). A dead hub's leases expire
after the TTL and the survivors take them.

The owner talks to the device only while its lease is sure to be valid: a lease not
confirmed by Redis within `SAFETY` times the TTL of the renewal being sent is dropped at once
(the device is stopped), before Redis can give it to another hub. Every change is
committed with the token (scripts.COMMIT), so a change made under a lost lease is
refused by Redis even if it races the drop.

Anything with an owner implements `Owned` (a room's drivers and its `room` device, the
macro runner, do through hub/cluster/placement.py): `add(room, device, owned)`. A device
that is `busy` (a macro running) is handed to the hub the plan names when it is idle
again; a lease that is lost or may be is dropped at once, busy or not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

from hub.cluster.scripts import NODES, RoomKeys, instance_key

if TYPE_CHECKING:
    from hub.cluster.node import ClusterNode

log = logging.getLogger("avhub.cluster")

SAFETY = 0.8  # share of the TTL a renewal counts for here (the rest absorbs delays and drift)
TICKS_PER_TTL = 5


class Owned(Protocol):
    """Something exactly one hub runs at a time."""

    async def take(self) -> None:
        """This hub now owns it: start (polling, commanding, committing)."""

    async def drop(self) -> None:
        """This hub no longer owns it: stop at once."""

    def republish(self) -> None:
        """The room's epoch restarted (Redis lost it): commit the whole current state."""

    def busy(self) -> bool:
        """True while handing it over would cut work short (a macro running)."""


@dataclass(slots=True, eq=False)
class Lease:
    room_id: str
    device_id: str
    key: str
    owned: Owned
    holder: str | None = None  # `<node>|<token>` while this hub owns the device
    last: str = ""  # the holder string this hub had before (taken back if Redis still has it)
    deadline: float = 0.0  # loop time when this hub must stop trusting the lease


def _named(leases: list[Lease], most: int = 8) -> str:
    """`2: lab/proj0, lab/proj1` for a log line (`0` for none; the first `most` named)."""
    if not leases:
        return "0"
    names = [f"{lease.room_id}/{lease.device_id}" for lease in leases[:most]]
    more = f", and {len(leases) - most} more" if len(leases) > most else ""
    return f"{len(leases)}: {', '.join(names)}{more}"


def rank(node: str, key: str) -> bytes:
    return hashlib.blake2b(f"{node}\0{key}".encode(), digest_size=8).digest()


def assign(keys: list[str], nodes: list[str]) -> dict[str, str]:
    """Lease key → node: rendezvous hashing with bounded load (every hub computes the same).

    Each node gets floor(keys / nodes) keys, and the first nodes to want one more take
    the remainder: loads differ by at most one.
    """
    if not nodes:
        return {}
    floor, extra = divmod(len(keys), len(nodes))
    load: Counter[str] = Counter()
    plan: dict[str, str] = {}
    for key in sorted(keys, key=lambda k: hashlib.blake2b(k.encode(), digest_size=8).digest()):
        for node in sorted(nodes, key=lambda n: rank(n, key), reverse=True):
            if load[node] < floor or (load[node] == floor and extra):
                if load[node] == floor:
                    extra -= 1
                plan[key] = node
                load[node] += 1
                break
    return plan


class Ownership:
    """This hub's leases; see the module docstring."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.live: list[str] = []
        self._leases: dict[str, Lease] = {}
        self._fences: dict[str, dict[str, str]] = {}
        self._plan: dict[str, str] = {}
        self._plan_of: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        self._drops: set[asyncio.Task[None]] = set()
        self._grace: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._instance = secrets.token_hex(8)  # this process, under its node id
        self._clash = False

    @property
    def interval(self) -> float:
        return self.node.settings.lease_ttl / TICKS_PER_TTL

    def fences(self, room_id: str) -> dict[str, str]:
        """Device → fencing token of the room's devices this hub owns (shared, kept current)."""
        return self._fences.setdefault(room_id, {})

    def add(self, room_id: str, device_id: str, owned: Owned) -> None:
        """A device to own when the plan says so (now, or as a room or device is added)."""
        key = RoomKeys.of(room_id).lease(device_id)
        if key in self._leases:
            raise ValueError(f"{room_id}/{device_id} already has an owner entry")
        self._leases[key] = Lease(room_id, device_id, key, owned)
        self._changed.set()

    async def remove(self, room_id: str, device_id: str) -> None:
        """A device leaves the deployment: stop it if owned here and free its lease."""
        lease = self._leases.pop(RoomKeys.of(room_id).lease(device_id), None)
        if lease is None or lease.holder is None:
            return
        holder = lease.holder
        await self._drop(lease)
        await self._release([(lease.key, holder)])
        self._changed.set()

    def owns(self, room_id: str, device_id: str) -> bool:
        return device_id in self._fences.get(room_id, ())

    def holder(self, room_id: str, device_id: str) -> Lease | None:
        return self._leases.get(RoomKeys.of(room_id).lease(device_id))

    def owned(self) -> list[tuple[str, str]]:
        """(room, device) of every device this hub owns."""
        return [(lease.room_id, lease.device_id) for lease in self._leases.values() if lease.holder]

    def republish(self, room_id: str) -> None:
        for lease in self._leases.values():
            if lease.holder is not None and lease.room_id == room_id:
                lease.owned.republish()

    async def reclaim(self, room_id: str) -> None:
        """Redis lost the room: take back this hub's leases in it, unless another hub has."""
        node = self.node
        held = [x for x in self._leases.values() if x.holder and x.room_id == room_id]
        if not held:
            return
        ttl_ms = int(node.settings.lease_ttl * 1000)
        pipe = node.redis.pipeline(transaction=False)
        for lease in held:
            node.scripts.run(pipe, "reclaim", [lease.key], [lease.holder, ttl_ms])
        sent = asyncio.get_running_loop().time()
        results = await pipe.execute()
        for lease, ok in zip(held, results, strict=True):
            if lease.holder is None:
                continue
            if ok == 1:
                lease.deadline = sent + node.settings.lease_ttl * SAFETY
            else:
                self._lose(lease)

    def recovered(self) -> None:
        """Redis is back: for one TTL, hubs live before count as live while they re-register.

        Otherwise the first hub back would see itself alone and take every free lease.
        """
        loop = asyncio.get_running_loop()
        self._grace = (loop.time() + self.node.settings.lease_ttl, frozenset(self.live))
        self._changed.set()

    async def run(self) -> None:
        """Tick every TTL / 5 (and at once when devices come or go)."""
        while True:
            if self.node.available:
                try:
                    await self._tick()
                except (RedisError, OSError, TimeoutError) as err:
                    self.node.lost(err)
                except Exception:  # a bug here must not stop renewing every lease
                    log.exception("device leases: tick failed")
            self._changed.clear()
            try:
                async with asyncio.timeout(self.interval):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop every owned device, then hand back its lease and leave the live set."""
        if self._timer is not None:
            self._timer.cancel()
        held = [(lease, lease.holder) for lease in self._leases.values() if lease.holder]
        await asyncio.gather(*(self._drop(lease) for lease, _ in held))
        await asyncio.gather(*self._drops, return_exceptions=True)
        if self.node.available:
            await self._release([(lease.key, holder) for lease, holder in held if holder], True)

    # ---- one tick ------------------------------------------------------------------

    async def _tick(self) -> None:
        node = self.node
        loop = asyncio.get_running_loop()
        ttl_ms = int(node.settings.lease_ttl * 1000)
        pipe = node.redis.pipeline(transaction=False)
        node.scripts.run(pipe, "heartbeat", [NODES], [node.node_id, ttl_ms])
        pipe.set(instance_key(node.node_id), self._instance, px=ttl_ms, get=True)
        stores = [s for s in node.stores.values() if s.opened]
        for store in stores:
            pipe.hget(store.keys.meta, "epoch")
        live, other, *epochs = await pipe.execute()
        self._check_instance(other)
        for store, epoch in zip(stores, epochs, strict=True):
            node.check_epoch(store, epoch)
        until, before = self._grace
        self.live = sorted(set(live) | before if loop.time() < until else live)
        plan = self._planned()
        leaving = [
            lease
            for lease in self._leases.values()
            if lease.holder and plan.get(lease.key) != node.node_id and not lease.owned.busy()
        ]
        released = [(lease.key, lease.holder) for lease in leaving if lease.holder]
        if leaving:  # stop first: the next owner may start the moment the lease is free
            await asyncio.gather(*(self._drop(lease) for lease in leaving))
        renewing = [lease for lease in self._leases.values() if lease.holder]
        taking = [
            lease
            for lease in self._leases.values()
            if not lease.holder and plan.get(lease.key) == node.node_id
        ]
        pipe = node.redis.pipeline(transaction=False)
        for lease in renewing:
            node.scripts.run(pipe, "renew", [lease.key], [lease.holder, ttl_ms])
        for lease in taking:
            fence = RoomKeys.of(lease.room_id).fence
            args = [node.node_id, ttl_ms, lease.last]
            node.scripts.run(pipe, "acquire", [lease.key, fence], args)
        for key, holder in released:
            node.scripts.run(pipe, "release", [key], [holder])
        sent = loop.time()
        results = await pipe.execute()
        deadline = sent + node.settings.lease_ttl * SAFETY
        lost: list[Lease] = []
        for lease, ok in zip(renewing, results, strict=False):
            if lease.holder is None:
                continue  # dropped meanwhile (expired, removed)
            if ok == 1:
                lease.deadline = deadline
            else:
                lost.append(lease)
                self._lose(lease)
        taken = []
        for lease, holder in zip(taking, results[len(renewing) :], strict=False):
            if holder and self._leases.get(lease.key) is lease:
                lease.holder, lease.deadline = holder, deadline
                self.fences(lease.room_id)[lease.device_id] = holder
                taken.append(lease)
        for lease in taken:
            try:
                await lease.owned.take()
            except Exception:
                log.exception("%s/%s: failed to start", lease.room_id, lease.device_id)
        if taken or leaving or lost:
            log.info(
                "node %s owns %d devices (took %s; handed over %s; lost %s; hubs live: %s)",
                node.node_id,
                len(self.owned()),
                _named(taken),
                _named(leaving),
                _named(lost),
                ", ".join(self.live),
            )
        self._arm(loop)

    def _check_instance(self, other: str | None) -> None:
        """Warn (once while it lasts) when another process registered this node id within
        the TTL: two hubs under one id split nothing between them, and a hub restarted
        under its id at once answers for the old one until its leases run out."""
        node = self.node
        clash = other is not None and other != self._instance
        if clash and not self._clash:
            log.warning(
                "node %s: another hub process registered this node_id within lease_ttl: "
                "if it still runs, give each hub its own hub.cluster.node_id (two hubs "
                "under one id own nothing apart); if this hub just restarted, it clears "
                "once the old leases run out",
                node.node_id,
            )
        elif self._clash and not clash:
            log.info("node %s: this node_id is this hub's alone again", node.node_id)
        self._clash = clash

    def _planned(self) -> dict[str, str]:
        keys = tuple(sorted(self._leases))
        nodes = tuple(self.live)
        if (keys, nodes) != self._plan_of:
            self._plan = assign(list(keys), list(nodes))
            self._plan_of = (keys, nodes)
        return self._plan

    # ---- losing and handing back ---------------------------------------------------

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake at the earliest lease deadline: past it, the device is dropped at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [lease.deadline for lease in self._leases.values() if lease.holder]
        if deadlines:
            self._timer = loop.call_at(min(deadlines), self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        expired = [
            lease for lease in self._leases.values() if lease.holder and lease.deadline <= now
        ]
        for lease in expired:
            self._lose(lease)
        if expired:
            log.warning(
                "node %s: %d device leases not renewed in time: stopped talking to them",
                self.node.node_id,
                len(expired),
            )
        self._arm(loop)

    def _lose(self, lease: Lease) -> None:
        """The lease is gone or may be: no more commits now, stop the device soon after."""
        lease.last, lease.holder = lease.holder or "", None
        self._fences.get(lease.room_id, {}).pop(lease.device_id, None)
        task = asyncio.ensure_future(self._stop_owned(lease))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _drop(self, lease: Lease) -> None:
        lease.holder = None
        self._fences.get(lease.room_id, {}).pop(lease.device_id, None)
        await self._stop_owned(lease)

    async def _stop_owned(self, lease: Lease) -> None:
        try:
            await lease.owned.drop()
        except Exception:
            log.exception("%s/%s: failed to stop", lease.room_id, lease.device_id)

    async def _release(self, held: list[tuple[str, str]], leave: bool = False) -> None:
        """Free leases still held by this hub (best effort: they expire anyway)."""
        node = self.node
        pipe = node.redis.pipeline(transaction=False)
        for key, holder in held:
            node.scripts.run(pipe, "release", [key], [holder])
        if leave:
            pipe.zrem(NODES, node.node_id)
        try:
            await pipe.execute()
        except (RedisError, OSError, TimeoutError) as err:
            log.info("could not hand back leases (they expire by themselves): %s", err)
