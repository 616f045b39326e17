"""Room state stores: device state, numbered changes and a bounded replay ring per room.

`RoomStore` is the interface a room owns its state through; `MemoryStore` keeps it in
this process (`hub.store: memory`). Devices' action schemas live in the room's
`SchemaTable` (hub/schemas.py): a device's `actions` maps each action name to a schema id.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hub.encoding import dumps as dumps
from hub.schemas import Schema, SchemaTable


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change of one device, numbered within its room.

    A description change (`MemoryStore.describe`) also carries the device's new
    `actions` (name → schema id) and every schema they name.
    """

    epoch: str
    seq: int
    device: str
    state: Mapping[str, Any]
    ts: float
    actions: Mapping[str, str] | None = None
    schemas: Mapping[str, Schema] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `change` event payload (DESIGN.md §3)."""
        data = {
            "epoch": self.epoch,
            "seq": self.seq,
            "device": self.device,
            "state": dict(self.state),
            "ts": self.ts,
        }
        if self.actions is not None:
            data["actions"] = dict(self.actions)
            data["schemas"] = dict(self.schemas or {})
        return data


_texts: dict[str, str] = {}  # equal encoded action schemas share one string


@dataclass(slots=True)
class DeviceEntry:
    """What the room knows of one device."""

    name: str
    driver: str
    state: dict[str, Any]
    actions: dict[str, str]  # action name → schema id in the room's SchemaTable
    head: str | None = None  # encoded `{"name":…,"driver":…,"state":` of the snapshot entry
    tail: str | None = None  # encoded `,"actions":{…}}`, shared by devices with equal actions
    text: str | None = None  # the whole entry as last encoded; None once state or actions change

    def encode(self) -> str:
        """This device's snapshot entry as compact JSON, encoded again only after a change."""
        if self.text is not None:
            return self.text
        if self.head is None or self.tail is None:
            self.head = f'{{"name":{dumps(self.name)},"driver":{dumps(self.driver)},"state":'
            tail = f',"actions":{dumps(self.actions)}}}'
            self.tail = _texts.setdefault(tail, tail)
        self.text = self.head + dumps(self.state) + self.tail
        return self.text


class _Ring:
    """The replay ring: the last `size` changes, oldest first, kept column by column.

    A change is its seq and time (in arrays), its device and its state as interned
    compact JSON (a third of its dict): 32 bytes, where an object per change with its
    own number and time took 136. A hub keeps several per device from the start, for
    `max_age`. The few description changes keep their actions and schemas by seq.
    """

    __slots__ = ("_described", "_devices", "_seqs", "_states", "_times", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._seqs = array("q")
        self._times = array("d")
        self._devices: list[str] = []
        self._states: list[str] = []
        self._described: dict[int, tuple[Mapping[str, str], Mapping[str, Schema] | None]] = {}

    def __len__(self) -> int:
        return len(self._seqs)

    def append(self, change: Change, state: str) -> None:
        """Keep `change`, its state encoded as `state`; the oldest goes when the ring is full."""
        if self.size <= 0:
            return
        self._drop(len(self._seqs) + 1 - self.size)
        self._seqs.append(change.seq)
        self._times.append(change.ts)
        self._devices.append(change.device)
        self._states.append(state)
        if change.actions is not None:
            self._described[change.seq] = (change.actions, change.schemas)

    def first(self) -> int | None:
        """The seq of the oldest change kept, or None when empty."""
        return self._seqs[0] if self._seqs else None

    def prune(self, horizon: float) -> None:
        """Forget the oldest changes made before `horizon`, up to the first one that is not."""
        times, count = self._times, 0
        while count < len(times) and times[count] < horizon:
            count += 1
        self._drop(count)

    def changes(self, epoch: str, start: int) -> list[Change]:
        """The changes from index `start` on, as they were committed."""
        described = self._described
        out = []
        for i in range(start, len(self._seqs)):
            seq = self._seqs[i]
            actions, schemas = described.get(seq, (None, None)) if described else (None, None)
            state = json.loads(self._states[i])
            out.append(
                Change(epoch, seq, self._devices[i], state, self._times[i], actions, schemas)
            )
        return out

    def clear(self) -> None:
        self._drop(len(self._seqs))

    def _drop(self, count: int) -> None:
        if count <= 0:
            return
        if self._described:
            for seq in self._seqs[:count]:
                self._described.pop(seq, None)
        del self._seqs[:count], self._times[:count], self._devices[:count], self._states[:count]


Subscriber = Callable[[Change], None]


class RoomStore(Protocol):
    """What a room needs of its state store; the namespace and HTTP read it through the room.

    Contract: `commit` (and `describe`) numbers a change with the room's next `seq` and
    every subscriber gets every change exactly once, in `seq` order. `since`, `snapshot`
    and `snapshot_json` answer from the state as of the last change subscribers were
    given, so a panel joined in the same loop turn continues exactly where its answer
    ends. Once the store is open, adding or removing a device or renaming the room (a
    reload) keeps `epoch` and `seq`, but `since` answers None for any `seq` up to that
    point: replayed changes cannot tell a panel that the device list changed, a
    snapshot does.

    Action schemas (hub/schemas.py): `add_device` and `describe` take a device's actions
    as name → JSON Schema and keep each distinct schema once in `schemas` (the room's
    `SchemaTable`); the device's entry keeps name → schema id. `remove_device` and
    `describe` drop the schemas no device names any more. `snapshot(held)` and
    `snapshot_json(held)` carry every schema of the table but those whose ids are in
    `held` (the ones a panel says it has). `describe` commits a numbered change whose
    `actions` and `schemas` (`Change`) give the device's new actions whole; it answers
    None (and numbers nothing) when the ids are the ones the device has. A store that
    carries changes between processes keeps those two fields with the change, so a
    replayed description change is whole.
    """

    room_id: str
    name: str
    devices: dict[str, DeviceEntry]
    schemas: SchemaTable

    @property
    def epoch(self) -> str: ...

    @property
    def seq(self) -> int: ...

    def add_device(
        self,
        device_id: str,
        name: str,
        driver: str,
        state: Mapping[str, Any],
        actions: Mapping[str, Schema],
    ) -> None: ...

    def remove_device(self, device_id: str) -> None: ...

    def rename(self, name: str) -> None: ...

    def rename_device(self, device_id: str, name: str) -> None: ...

    def commit(self, device_id: str, changes: Mapping[str, Any]) -> Change | None: ...

    def describe(self, device_id: str, actions: Mapping[str, Schema]) -> Change | None: ...

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]: ...

    def since(self, epoch: object, seq: object) -> list[Change] | None: ...

    def catch_up(self, epoch: object, seq: object) -> Awaitable[None] | None:
        """None, or what to await before `since` when this hub has not applied `seq` yet.

        A store shared by several hubs (hub/cluster) may be behind a panel that resumes
        here after seeing `seq` on another hub; an in-process store never is.
        """

    def snapshot(self, held: Collection[str] = ()) -> dict[str, Any]: ...

    def snapshot_json(self, held: Collection[str] = ()) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """One room's state in this process: `epoch`/`seq`, the replay ring, ordered subscribers.

    `commit` is synchronous: the change is numbered, applied, kept in the ring and
    handed to every subscriber before it returns, so every subscriber sees every
    change exactly once and in `seq` order.
    """

    def __init__(
        self,
        room_id: str,
        name: str,
        *,
        ring_size: int = 1000,
        max_age: float = 600.0,
        epoch: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.room_id = room_id
        self.name = name
        self.epoch = epoch or secrets.token_hex(8)
        self.seq = 0
        self.devices: dict[str, DeviceEntry] = {}
        self.schemas = SchemaTable()
        self.max_age = max_age
        self._ring = _Ring(ring_size)
        self._subscribers: list[Subscriber] = []
        self._clock = clock
        self._opened = False
        self._layout: int | None = None  # seq of the last device-list change while open

    def add_device(
        self,
        device_id: str,
        name: str,
        driver: str,
        state: Mapping[str, Any],
        actions: Mapping[str, Schema],
    ) -> None:
        """Register a device (and its action schemas) before any change of it is committed.

        A `state` dict is kept, not copied: the room passes its driver's, which holds
        the same values (the driver commits each change it makes to it at once).
        """
        if device_id in self.devices:
            raise ValueError(f"device {device_id!r} already in room {self.room_id!r}")
        refs = self.schemas.intern(actions)
        kept = state if isinstance(state, dict) else dict(state)
        self.devices[device_id] = DeviceEntry(name, driver, kept, refs)
        self._relayout()

    def remove_device(self, device_id: str) -> None:
        """Forget a device (its state, name and the schemas only it used); a later commit
        for it is an error."""
        del self.devices[device_id]
        self._forget_unused_schemas()
        self._relayout()

    def rename(self, name: str) -> None:
        """The room's display name (the snapshot's `room.name`)."""
        self.name = name
        self._relayout()

    def rename_device(self, device_id: str, name: str) -> None:
        """A device's display name (the `room` device's is the room's), as `rename` does."""
        entry = self.devices[device_id]
        entry.name, entry.head, entry.text = name, None, None
        self._relayout()

    def _relayout(self) -> None:
        if self._opened:
            self._layout = self.seq

    def commit(self, device_id: str, changes: Mapping[str, Any]) -> Change:
        """Number and apply a change, keep it for replay, notify subscribers in order."""
        entry = self.devices[device_id]
        state = dict(changes)
        encoded = dumps(state)  # first, so that a value that is not JSON changes nothing
        self.seq += 1
        change = Change(self.epoch, self.seq, device_id, state, self._clock())
        entry.state.update(state)
        entry.text = None
        self._publish(change, encoded)
        return change

    def describe(self, device_id: str, actions: Mapping[str, Schema]) -> Change | None:
        """New action schemas for a device: a numbered change carrying them; None if the same.

        The change holds the device's whole `actions` (name → id) and every schema they
        name, so a panel applies it without knowing which schemas it had before.
        """
        entry = self.devices[device_id]
        refs = self.schemas.intern(actions)
        if refs == entry.actions:
            return None
        entry.actions, entry.tail, entry.text = refs, None, None
        self._forget_unused_schemas()
        self.seq += 1
        schemas = self.schemas.subset(only=refs.values())
        change = Change(self.epoch, self.seq, device_id, {}, self._clock(), refs, schemas)
        self._publish(change)
        return change

    def _forget_unused_schemas(self) -> None:
        self.schemas.keep({r for e in self.devices.values() for r in e.actions.values()})

    def _publish(self, change: Change, encoded: str | None = None) -> None:
        """Keep `change` for replay and hand it to every subscriber, in order."""
        self._keep(change, encoded)
        self._prune(change.ts)
        for subscriber in tuple(self._subscribers):
            subscriber(change)

    def _keep(self, change: Change, encoded: str | None = None) -> None:
        """Add `change` to the replay ring; `encoded` is its state as `dumps` encodes it."""
        # Interned, because devices alike report alike (`{"power":"on"}`): one copy.
        state = sys.intern(dumps(change.state) if encoded is None else encoded)
        self._ring.append(change, state)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every later change; returns the unsubscribe function."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def since(self, epoch: object, seq: object) -> list[Change] | None:
        """Every change after `seq` of `epoch`, or None when the ring cannot give them all."""
        if epoch != self.epoch or not isinstance(seq, int) or isinstance(seq, bool):
            return None
        if self._layout is not None and seq <= self._layout:
            return None
        if seq == self.seq:
            return []
        if seq < 0 or seq > self.seq:
            return None
        self._prune(self._clock())
        first = self._ring.first()
        if first is None or first > seq + 1:
            return None
        return self._ring.changes(self.epoch, seq + 1 - first)

    def catch_up(self, epoch: object, seq: object) -> Awaitable[None] | None:
        """Never behind: every change is applied as it is committed."""
        return None

    def snapshot(self, held: Collection[str] = ()) -> dict[str, Any]:
        """The `snapshot` event payload (DESIGN.md §3), without the schemas in `held`."""
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "room": {"id": self.room_id, "name": self.name},
            "schemas": self.schemas.subset(held),
            "devices": {
                device_id: {
                    "name": entry.name,
                    "driver": entry.driver,
                    "state": dict(entry.state),
                    "actions": dict(entry.actions),
                }
                for device_id, entry in self.devices.items()
            },
        }

    def snapshot_json(self, held: Collection[str] = ()) -> str:
        """`snapshot(held)` encoded as Socket.IO encodes it, without building it first.

        Equal to `dumps(self.snapshot(held))`, byte for byte; each schema and each
        device's name, driver and actions are encoded once, its state after each change
        of it (at the next snapshot).
        """
        devices = ",".join(f"{dumps(d)}:{entry.encode()}" for d, entry in self.devices.items())
        room = dumps({"id": self.room_id, "name": self.name})
        schemas = self.schemas.encode(held)
        return (
            f'{{"epoch":{dumps(self.epoch)},"seq":{self.seq},"room":{room},'
            f'"schemas":{schemas},"devices":{{{devices}}}}}'
        )

    async def open(self) -> None:
        """Nothing to connect to: the state lives in this process."""
        self._opened = True

    async def close(self) -> None:
        self._subscribers.clear()

    def _prune(self, now: float) -> None:
        self._ring.prune(now - self.max_age)
