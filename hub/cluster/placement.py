"""What a `Room` asks of the cluster: run its devices where they are owned, route commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from drivers.base import Driver
from hub.cluster.store import RedisStore
from hub.commands import Reply, run_command

if TYPE_CHECKING:
    from hub.cluster.node import ClusterNode
    from hub.room import Room

log = logging.getLogger("avhub.cluster")


class OwnedDriver:
    """A driver as an `Owned` device: started with its room's last state when this hub owns it."""

    def __init__(self, store: RedisStore, driver: Driver[Any]) -> None:
        self.store = store
        self.driver = driver

    async def take(self) -> None:
        # Start from the state the previous owner left, so only real differences commit.
        state = self.driver.state
        state.clear()
        state.update(self.store.state_of(self.driver.device_id))
        await self.driver.start()

    async def drop(self) -> None:
        await self.driver.stop()

    def republish(self) -> None:
        self.store.commit(self.driver.device_id, dict(self.driver.state))


class ClusterPlacement:
    """The `Placement` of rooms whose store is Redis (hub/room.py)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.rooms: dict[str, Room] = {}
        node.commands.run_here = self._run_here
        node.reset_listeners.append(self._republish)

    async def adopt(self, room: Room) -> None:
        """The room's devices start when (and while) this hub holds their leases."""
        self.rooms[room.id] = room
        for device_id in room.drivers:
            self.add_device(room, device_id)

    async def release(self, room: Room) -> None:
        """Stop the room's devices owned here, hand their leases back, forget the room."""
        for device_id in room.drivers:
            await self.remove_device(room, device_id)
        self.rooms.pop(room.id, None)
        if self.node.stores.get(room.id) is room.store:
            del self.node.stores[room.id]

    def add_device(self, room: Room, device_id: str) -> None:
        """A driver of the room (also one added at run time) runs where its lease is held."""
        store = room.store
        assert isinstance(store, RedisStore)
        self.node.ownership.add(room.id, device_id, OwnedDriver(store, room.drivers[device_id]))

    async def remove_device(self, room: Room, device_id: str) -> None:
        """A device leaves: stopped if it runs here, its lease freed."""
        await self.node.ownership.remove(room.id, device_id)

    async def command(self, room: Room, data: Any, where: str) -> Reply:
        """Run a command here when this hub owns the device, else on its owner."""
        device = data.get("device") if isinstance(data, dict) else None
        if (
            not isinstance(device, str)
            or device not in room.drivers
            or self.node.ownership.owns(room.id, device)
        ):
            return await run_command(room.drivers, data, where)
        return await self.node.commands.forward(room.id, device, data, where)

    async def _run_here(self, room_id: str, data: Any, where: str) -> Reply | None:
        room = self.rooms.get(room_id)
        if room is None:
            return None
        return await run_command(room.drivers, data, where)

    def _republish(self, store: RedisStore) -> None:
        self.node.ownership.republish(store.room_id)
