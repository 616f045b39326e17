"""A room: its devices' drivers, its state store, who may enter, and its commands.

Front doors (the Socket.IO namespace, the HTTP API) are thin: they authenticate
through `authorized`, read state through `store` and run commands through `command`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from drivers import DRIVERS
from drivers.base import ActionsSink, Driver, StateSink
from drivers.transport import TransportFactory, create_transport
from hub.commands import Reply, result_code, run_command
from hub.config import RoomConfig
from hub.store import RoomStore


@dataclass(slots=True)
class RoomCounters:
    """What a room counts for `/metrics`."""

    commands: Counter[str] = field(default_factory=Counter)
    """Commands (panels and HTTP) by result: `ok` or the error code."""
    panels: int = 0
    """Panels connected now."""
    resumed: int = 0
    """Panels that reconnected and were replayed only what they missed."""
    snapshots: int = 0
    """Panels sent a whole snapshot on connect."""


class Room:
    """One room of the deployment; see the module docstring."""

    def __init__(
        self,
        room_id: str,
        config: RoomConfig,
        store: RoomStore,
        *,
        admin_token: str | None = None,
        transport_factory: TransportFactory = create_transport,
    ) -> None:
        self.id = room_id
        self.name = config.name
        self.config = config
        self.store = store
        self.counters = RoomCounters()
        self.open_room = not config.panel_tokens
        self._tokens = [t.encode() for t in (*config.panel_tokens, admin_token) if t]
        self.drivers: dict[str, Driver[Any]] = {}
        for device_id, device in config.devices.items():
            driver = DRIVERS[device.driver].driver(
                device_id,
                device,
                _sink(store, device_id),
                label=f"{room_id}/{device_id}",
                transport_factory=transport_factory,
            )
            store.add_device(
                device_id,
                device.name or device_id,
                device.driver,
                driver.state,
                driver.describe_actions(),
            )
            driver.actions_sink = _describer(store, device_id)
            self.drivers[device_id] = driver

    def authorized(self, token: object) -> bool:
        """True when the room is open or `token` is one of its tokens (or the admin token)."""
        if self.open_room:
            return True
        if not isinstance(token, str):
            return False
        given = token.encode()
        return any(hmac.compare_digest(given, t) for t in self._tokens)

    async def command(self, data: Any, where: str) -> Reply:
        """Run one `{device, action, args}` command; the ack, counted by result."""
        reply = await run_command(self.drivers, data, where)
        self.counters.commands[result_code(reply)] += 1
        return reply

    def online(self) -> int:
        """How many of the room's devices are online."""
        return sum(1 for d in self.drivers.values() if d.online)

    async def start(self) -> None:
        """Open the store, then start every device."""
        await self.store.open()
        for driver in self.drivers.values():
            await driver.start()

    async def stop(self) -> None:
        """Stop every device (closing its connection), then close the store."""
        await asyncio.gather(*(d.stop() for d in self.drivers.values()))
        await self.store.close()


def drivers_of(rooms: Iterable[Room]) -> list[Driver[Any]]:
    """Every driver of `rooms`, in deployment order."""
    return [d for room in rooms for d in room.drivers.values()]


def _sink(store: RoomStore, device_id: str) -> StateSink:
    """Where a driver's changes go: committed to its room's store under its id."""

    def commit(changes: dict[str, Any]) -> None:
        store.commit(device_id, changes)

    return commit


def _describer(store: RoomStore, device_id: str) -> ActionsSink:
    """Where a driver's new action schemas go: a description change in its room's store."""

    def describe(actions: dict[str, dict[str, Any]]) -> None:
        store.describe(device_id, actions)

    return describe
