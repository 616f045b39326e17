"""`RedisStore`: one room's state in Redis, mirrored in this hub in `seq` order.

Redis numbers every change (the commit script, hub/cluster/scripts.py) and keeps the
replay ring as a stream. Each hub holds a mirror of the room: the state, `epoch`, `seq`
and the ring as of the last change it applied, loaded from Redis when the room opens and
then fed, change by change in `seq` order, by its own commits' replies (the local fast
path) and by the node's reader: the changes the commit script publishes, and the stream
for whatever was committed while the reader was not subscribed (everything else). Subscribers are called from the
mirror, so every panel of every hub gets every change once and in order, and `since`,
`snapshot` and `snapshot_json` answer from the same mirror at the exact `seq` a joining
panel continues from.

A description change (`describe`: a device's new action schemas) is numbered by Redis
like a state change, and Redis keeps each device's last description for hubs that load
the room later.

The device list comes from each hub's own deployment file. A reload that adds or removes
a device (or renames the room) changes this hub's mirror as `MemoryStore` does; a removed
device's state is also deleted in Redis, in order with the commits. The state of devices
another hub has and this one does not is kept aside, so a device added here by a later
reload shows what its owner committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.cluster.scripts import RoomKeys
from hub.schemas import Schema, schema_id
from hub.store import Change, DeviceEntry, MemoryStore, dumps

if TYPE_CHECKING:
    from hub.cluster.node import ClusterNode

log = logging.getLogger("avhub.cluster")

# How long a panel resuming at a seq this hub has not applied yet waits for it (it saw
# that seq on another hub, so the change reader brings it here within a round trip).
CATCH_UP_WAIT = 2.0


class RedisStore(MemoryStore):
    """A room's `RoomStore` with `hub.store: redis://…`; see the module docstring.

    `commit` does not number the change itself: it hands it, with the device's fencing
    token, to the node's ordered commit pipeline and returns None. A device this hub does
    not own (no token) commits nothing.
    """

    def __init__(
        self,
        node: ClusterNode,
        room_id: str,
        name: str,
        *,
        ring_size: int = 1000,
        max_age: float = 600.0,
    ) -> None:
        super().__init__(room_id, name, ring_size=ring_size, max_age=max_age, epoch="")
        self.node = node
        self.keys = RoomKeys.of(room_id)
        self.ring_size = ring_size
        self.fences: dict[str, str] = {}  # device → fencing token while this hub owns it
        self.opened = False
        self.refused = 0  # changes Redis refused: a lost lease, or an epoch that ended
        self._initial: dict[str, dict[str, Any]] = {}  # a device's state before Redis had any
        self._others: dict[str, dict[str, Any]] = {}  # devices of other hubs' files only
        self._described: dict[str, _Description] = {}  # ... and their last descriptions
        self._ahead: dict[int, Change] = {}  # numbered, waiting for the seqs before them
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def commit(self, device_id: str, changes: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Queue the change for Redis under this hub's lease of the device (README: Scaling out)."""
        token = self.fences.get(device_id)
        if token is None:
            self.refused += 1
            log.debug("%s/%s: change not committed: not owned here", self.room_id, device_id)
            return
        self.node.submit(self, device_id, dict(changes), token)

    def describe(self, device_id: str, actions: Mapping[str, Schema]) -> None:
        """Queue a description change for Redis under this hub's lease (as `commit`)."""
        entry = self.devices[device_id]
        refs = {name: schema_id(schema) for name, schema in actions.items()}
        if refs == entry.actions:
            return
        token = self.fences.get(device_id)
        if token is None:
            self.refused += 1
            log.debug("%s/%s: description not committed: not owned here", self.room_id, device_id)
            return
        schemas = {refs[name]: schema for name, schema in actions.items()}
        self.node.describe(self, device_id, refs, schemas, token)

    def catch_up(self, epoch: object, seq: object) -> Awaitable[None] | None:
        """Wait (briefly) until this mirror has applied `seq` of `epoch`, if it is behind."""
        if epoch != self.epoch or not isinstance(seq, int) or seq <= self.seq:
            return None
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        return _wait(future, CATCH_UP_WAIT)

    async def open(self) -> None:
        """Load the room from Redis (creating its epoch on first use)."""
        await self.node.open_store(self)
        self._opened = True  # device-list changes from now on end replay (MemoryStore)

    def add_device(
        self,
        device_id: str,
        name: str,
        driver: str,
        state: Mapping[str, Any],
        actions: Mapping[str, Schema],
    ) -> None:
        """Register a device; with what Redis has of it when other hubs ran it first.

        The mirror's state is a copy: it follows Redis (another hub's changes, a load),
        not the driver's own dict, which `MemoryStore` would keep.
        """
        super().add_device(device_id, name, driver, dict(state), actions)
        self._initial[device_id] = dict(state)
        entry = self.devices[device_id]
        seen = self._others.pop(device_id, None)
        if seen is not None:
            entry.state.update(seen)
        described = self._described.pop(device_id, None)
        if described is not None:
            self._redescribe(entry, described)

    def remove_device(self, device_id: str) -> None:
        """Forget a device here and (in order with the commits) its state in Redis."""
        super().remove_device(device_id)
        self._initial.pop(device_id, None)
        self._others.pop(device_id, None)
        self._described.pop(device_id, None)
        if self.opened:
            self.node.forget(self, device_id)

    async def close(self) -> None:
        await super().close()
        self._release_waiters()

    # ---- fed by the node -----------------------------------------------------------

    def committed(
        self,
        device_id: str,
        changes: dict[str, Any],
        ts: float,
        result: Any,
        actions: dict[str, str] | None = None,
        schemas: dict[str, Schema] | None = None,
    ) -> None:
        """The script's answer for one queued change or description (scripts.COMMIT)."""
        if isinstance(result, int) and result > 0:
            self.deliver(Change(self.epoch, result, device_id, changes, ts, actions, schemas))
        elif result == -2:
            self.refused += 1
            log.warning(
                "%s/%s: Redis refused a change: this hub no longer holds the device's lease",
                self.room_id,
                device_id,
            )
        else:
            self.refused += 1
            log.info("%s/%s: change not committed (%s)", self.room_id, device_id, result)

    def receive(self, entries: list[tuple[str, dict[str, str]]]) -> bool:
        """Stream entries from the reader; False when a gap cannot be filled from them."""
        for entry_id, fields in entries:
            seq = int(entry_id.partition("-")[0])
            if seq <= self.seq or fields.get("e") != self.epoch:
                continue
            if seq > self.seq + 1 and (self.seq + 1) not in self._ahead:
                return False  # trimmed before this hub read it: reload
            self.deliver(_change(self.epoch, seq, fields))
        return True

    def push(self, text: str) -> bool:
        """A change published by the commit script (scripts.COMMIT); False when the ones
        before it have not reached this mirror (it waits for them, see `receive`)."""
        head, _, rest = text.partition("\n")
        seq = int(head)
        if seq <= self.seq:
            return True  # this hub's own commit, or read from the stream already
        lines = rest.split("\n")
        if len(lines) not in (4, 5):
            raise ValueError(f"published change {seq} has {len(lines) + 1} lines, not 5 or 6")
        if lines[0] != self.epoch:
            return True
        fields = {"d": lines[1], "t": lines[2], "s": lines[3]}
        if len(lines) == 5:
            fields["a"] = lines[4]
        missing = seq > self.seq + 1 and (self.seq + 1) not in self._ahead
        self.deliver(_change(self.epoch, seq, fields))
        return not missing

    def deliver(self, change: Change) -> None:
        """Apply `change` when it is the next seq, else hold it until the ones before arrive."""
        if change.epoch != self.epoch or change.seq <= self.seq:
            return
        if change.seq > self.seq + 1:
            self._ahead[change.seq] = change
            return
        self._apply(change)
        ahead = self._ahead
        while ahead:
            following = ahead.pop(self.seq + 1, None)
            if following is None:
                break
            self._apply(following)
        if self._waiters:
            self._wake_waiters()

    def load(
        self, epoch: str, seq: int, state: list[str], entries: list[Any], descriptions: list[str]
    ) -> bool:
        """Take the room as Redis has it; True when that ended this mirror's continuity."""
        if epoch == self.epoch and seq >= self.seq and self.opened:
            return False  # the reader brings whatever this mirror has not applied yet
        restart = self.opened
        self.epoch, self.seq = epoch, seq
        if restart:
            self._layout = None  # a new epoch: no seq of it is before a device-list change
        for device_id, entry in self.devices.items():
            initial = self._initial.setdefault(device_id, dict(entry.state))
            entry.state.clear()
            entry.state.update(initial)
            entry.text = None
        self._others.clear()
        for i in range(0, len(state), 2):
            device_id, _, key = state[i].partition("/")
            known = self.devices.get(device_id)
            target = known.state if known is not None else self._others.setdefault(device_id, {})
            target[key] = json.loads(state[i + 1])
        self._described.clear()
        for i in range(0, len(descriptions), 2):
            device_id, described = descriptions[i], _description(descriptions[i + 1])
            known = self.devices.get(device_id)
            if known is not None:
                self._redescribe(known, described)
            else:
                self._described[device_id] = described
        self._ring.clear()
        self._ahead.clear()
        for entry_id, flat in entries:  # from Lua: fields as a flat [name, value, …] list
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            number = int(entry_id.partition("-")[0])
            if fields.get("e") == epoch and number <= seq:
                self._keep(_change(epoch, number, fields), fields["s"])
        self.opened = True
        self._release_waiters()
        return restart

    def state_of(self, device_id: str) -> dict[str, Any]:
        """The device's state in this mirror (what a new owner starts from)."""
        return dict(self.devices[device_id].state)

    # ---- inside --------------------------------------------------------------------

    def _apply(self, change: Change) -> None:
        entry = self.devices.get(change.device)
        described = None
        if change.actions is not None:
            described = _Description(dict(change.actions), dict(change.schemas or {}))
        if entry is None:  # a device of another hub's file: kept for a reload that adds it here
            if described is not None:
                self._described[change.device] = described
            else:
                self._others.setdefault(change.device, {}).update(change.state)
        elif described is not None:
            self._redescribe(entry, described)
        else:
            entry.state.update(change.state)
            entry.text = None
        self.seq = change.seq
        self._publish(change)

    def _redescribe(self, entry: DeviceEntry, described: _Description) -> None:
        """Give a device the actions of a description change (the schemas it names)."""
        schemas = described.schemas
        entry.actions = self.schemas.intern({n: schemas[r] for n, r in described.actions.items()})
        entry.tail = entry.text = None
        self._forget_unused_schemas()

    def _wake_waiters(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for seq, future in self._waiters:
            if seq <= self.seq:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                still.append((seq, future))
        self._waiters = still

    def _release_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_result(None)


async def _wait(future: asyncio.Future[None], timeout: float) -> None:
    """Wait for `future` at most `timeout` seconds; the caller then answers from what it has."""
    try:
        async with asyncio.timeout(timeout):
            await future
    except TimeoutError:
        future.cancel()


@dataclass(frozen=True, slots=True)
class _Description:
    """A description change's content: the device's actions and the schemas they name."""

    actions: dict[str, str]  # name → schema id
    schemas: dict[str, Schema]  # id → schema


def _description(text: str) -> _Description:
    data = json.loads(text)
    return _Description(data["actions"], data["schemas"])


def _change(epoch: str, seq: int, fields: Mapping[str, str]) -> Change:
    """A change as the stream keeps it (scripts.COMMIT, scripts.DESCRIBE)."""
    state, ts = json.loads(fields["s"]), float(fields["t"])
    described = fields.get("a")
    if described is None:
        return Change(epoch, seq, fields["d"], state, ts)
    description = _description(described)
    return Change(epoch, seq, fields["d"], state, ts, description.actions, description.schemas)


def encode_change(changes: Mapping[str, Any]) -> list[str]:
    """The commit script's `change_json key1 value1 …` arguments."""
    args = [dumps(changes)]
    for key, value in changes.items():
        args.append(key)
        args.append(dumps(value))
    return args
