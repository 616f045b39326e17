"""What a `Room` asks of the cluster: run its devices where they are owned, route commands.

Every device a room runs (each driver, and the `room` device of its macros, schedules
and triggers) is `Owned`: exactly one hub holds its lease and runs it, so a schedule or
trigger fires once and a macro runs on one hub. A command for a device owned elsewhere,
also a macro's command step, goes to the owner (hub/cluster/commands.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from drivers.errors import ErrorCode
from hub.automation.device import RoomDevice
from hub.cluster.store import RedisStore
from hub.commands import DetailedError, Device, Reply, Target, run_command

if TYPE_CHECKING:
    from hub.cluster.node import ClusterNode
    from hub.room import Room

log = logging.getLogger("avhub.cluster")


class OwnedDevice:
    """A room's device as an `Owned`: started from its room's last state when owned here."""

    def __init__(self, store: RedisStore, device_id: str, device: Device) -> None:
        self.store = store
        self.device_id = device_id
        self.device = device

    async def take(self) -> None:
        # Start from the state the previous owner left, so only real differences commit.
        state = self.device.state
        state.clear()
        state.update(self.store.state_of(self.device_id))
        await self.device.start()

    async def drop(self) -> None:
        await self.device.stop()

    def republish(self) -> None:
        self.store.commit(self.device_id, dict(self.device.state))

    def busy(self) -> bool:
        """True while the `room` device runs a macro: it is handed over when the run ends."""
        return isinstance(self.device, RoomDevice) and self.device.running is not None


class ClusterPlacement:
    """The `Placement` of rooms whose store is Redis (hub/room.py)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.rooms: dict[str, Room] = {}
        node.commands.run_here = self._run_here
        node.reset_listeners.append(self._republish)

    def adopt(self, room: Room) -> None:
        """Commands forwarded to this hub for the room's devices find them from now on."""
        self.rooms[room.id] = room

    async def release(self, room: Room) -> None:
        """Forget the room (its devices are stopped and their leases freed already)."""
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
        if self.node.stores.get(room.id) is room.store:
            del self.node.stores[room.id]

    async def run(self, room: Room, device_id: str, device: Device) -> None:
        """The device (also one added at run time) runs where its lease is held."""
        store = room.store
        assert isinstance(store, RedisStore)
        self.node.ownership.add(room.id, device_id, OwnedDevice(store, device_id, device))

    async def halt(self, room: Room, device_id: str) -> None:
        """A device leaves: stopped if it runs here, its lease freed."""
        await self.node.ownership.remove(room.id, device_id)

    async def command(self, room: Room, data: Any, where: str) -> Reply:
        """Run a command here when this hub owns the device, else on its owner."""
        device = data.get("device") if isinstance(data, dict) else None
        if (
            not isinstance(device, str)
            or device not in room.devices
            or self.node.ownership.owns(room.id, device)
        ):
            return await run_command(room.devices, data, where)
        return await self.node.commands.forward(room.id, device, data, where)

    def reach(self, room: Room) -> Mapping[str, Target]:
        """The room's drivers as its macros command them: each on the hub that owns it."""
        return _Reach(self, room)

    async def _run_here(self, room_id: str, data: Any, where: str) -> Reply | None:
        room = self.rooms.get(room_id)
        if room is None:
            return None
        return await run_command(room.devices, data, where)

    def _republish(self, store: RedisStore) -> None:
        self.node.ownership.republish(store.room_id)


class _Reach(Mapping[str, Target]):
    """`Room.drivers` seen through the placement (what a cluster's macros command)."""

    def __init__(self, placement: ClusterPlacement, room: Room) -> None:
        self.placement = placement
        self.room = room

    def __getitem__(self, device_id: str) -> Target:
        if device_id not in self.room.drivers:
            raise KeyError(device_id)
        return _Routed(self.placement, self.room, device_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.room.drivers)

    def __len__(self) -> int:
        return len(self.room.drivers)


class _Routed:
    """One driver of a room, run on the hub that owns it; its reply raised back as an error."""

    def __init__(self, placement: ClusterPlacement, room: Room, device_id: str) -> None:
        self.placement = placement
        self.room = room
        self.device_id = device_id

    async def execute(self, action: str, raw_args: object = None) -> Any:
        data = {"device": self.device_id, "action": action, "args": raw_args}
        reply = await self.placement.command(self.room, data, f"{self.room.id}/room")
        if reply["ok"]:
            return reply.get("result")
        details = dict(reply["error"])
        code, message = ErrorCode(details.pop("code")), str(details.pop("message"))
        raise DetailedError(code, message, details)
