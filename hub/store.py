"""Room state stores: device state, numbered changes and a bounded replay ring per room.

`RoomStore` is the interface a room owns its state through; `MemoryStore` keeps it in
this process (`hub.store: memory`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change of one device's state, numbered within its room."""

    epoch: str
    seq: int
    device: str
    state: Mapping[str, Any]
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """The `change` event payload (DESIGN.md §3)."""
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "device": self.device,
            "state": dict(self.state),
            "ts": self.ts,
        }


# Socket.IO's packet encoding: `json.dumps(data, separators=(",", ":"))`, defaults otherwise.
dumps = json.JSONEncoder(separators=(",", ":")).encode
_texts: dict[str, str] = {}  # equal encoded action schemas share one string


@dataclass(slots=True)
class DeviceEntry:
    """What the room knows of one device."""

    name: str
    driver: str
    state: dict[str, Any]
    actions: dict[str, Any]
    head: str | None = None  # encoded `{"name":…,"driver":…,"state":` of the snapshot entry
    tail: str | None = None  # encoded `,"actions":{…}}`, shared by devices of one driver

    def encode(self) -> str:
        """This device's snapshot entry as compact JSON; the state is encoded afresh."""
        if self.head is None or self.tail is None:
            self.head = f'{{"name":{dumps(self.name)},"driver":{dumps(self.driver)},"state":'
            tail = f',"actions":{dumps(self.actions)}}}'
            self.tail = _texts.setdefault(tail, tail)
        return self.head + dumps(self.state) + self.tail


Subscriber = Callable[[Change], None]


class RoomStore(Protocol):
    """What a room needs of its state store; the namespace and HTTP read it through the room.

    Contract: `commit` numbers a change with the room's next `seq` and every subscriber
    gets every change exactly once, in `seq` order. `since`, `snapshot` and
    `snapshot_json` answer from the state as of the last change subscribers were given,
    so a panel joined in the same loop turn continues exactly where its answer ends.
    Once the store is open, adding or removing a device or renaming the room (a reload)
    keeps `epoch` and `seq`, but `since` answers None for any `seq` up to that point:
    replayed changes cannot tell a panel that the device list changed, a snapshot does.
    """

    room_id: str
    name: str
    devices: dict[str, DeviceEntry]

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
        actions: dict[str, Any],
    ) -> None: ...

    def remove_device(self, device_id: str) -> None: ...

    def rename(self, name: str) -> None: ...

    def commit(self, device_id: str, changes: Mapping[str, Any]) -> Change | None: ...

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]: ...

    def since(self, epoch: object, seq: object) -> list[Change] | None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def snapshot_json(self) -> str: ...

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
        self.max_age = max_age
        self._ring: deque[Change] = deque(maxlen=ring_size)
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
        actions: dict[str, Any],
    ) -> None:
        """Register a device before any change of it is committed."""
        if device_id in self.devices:
            raise ValueError(f"device {device_id!r} already in room {self.room_id!r}")
        self.devices[device_id] = DeviceEntry(name, driver, dict(state), actions)
        self._relayout()

    def remove_device(self, device_id: str) -> None:
        """Forget a device (its state and name); a later commit for it is an error."""
        del self.devices[device_id]
        self._relayout()

    def rename(self, name: str) -> None:
        """The room's display name (the snapshot's `room.name`)."""
        self.name = name
        self._relayout()

    def _relayout(self) -> None:
        if self._opened:
            self._layout = self.seq

    def commit(self, device_id: str, changes: Mapping[str, Any]) -> Change:
        """Number and apply a change, keep it for replay, notify subscribers in order."""
        entry = self.devices[device_id]
        self.seq += 1
        change = Change(self.epoch, self.seq, device_id, dict(changes), self._clock())
        entry.state.update(change.state)
        self._ring.append(change)
        self._prune(change.ts)
        for subscriber in tuple(self._subscribers):
            subscriber(change)
        return change

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
        if not self._ring or self._ring[0].seq > seq + 1:
            return None
        skip = seq + 1 - self._ring[0].seq
        return [self._ring[i] for i in range(skip, len(self._ring))]

    def snapshot(self) -> dict[str, Any]:
        """The `snapshot` event payload (DESIGN.md §3)."""
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "room": {"id": self.room_id, "name": self.name},
            "devices": {
                device_id: {
                    "name": entry.name,
                    "driver": entry.driver,
                    "state": dict(entry.state),
                    "actions": entry.actions,
                }
                for device_id, entry in self.devices.items()
            },
        }

    def snapshot_json(self) -> str:
        """`snapshot()` encoded as Socket.IO encodes it, without building it first.

        Equal to `dumps(self.snapshot())`, byte for byte; each device's name, driver
        and action schemas are encoded once, its state at every call.
        """
        devices = ",".join(f"{dumps(d)}:{entry.encode()}" for d, entry in self.devices.items())
        room = dumps({"id": self.room_id, "name": self.name})
        return f'{{"epoch":{dumps(self.epoch)},"seq":{self.seq},"room":{room},"devices":{{{devices}}}}}'

    async def open(self) -> None:
        """Nothing to connect to: the state lives in this process."""
        self._opened = True

    async def close(self) -> None:
        self._subscribers.clear()

    def _prune(self, now: float) -> None:
        ring, horizon = self._ring, now - self.max_age
        while ring and ring[0].ts < horizon:
            ring.popleft()
