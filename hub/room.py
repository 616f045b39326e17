"""A room: its devices' drivers, its state store, who may enter, and its commands.

Front doors (the Socket.IO namespace, the HTTP API) are thin: they authenticate
through `authorized`, read state through `store` and run commands through `command`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any, Protocol

from drivers import DRIVERS
from drivers.base import Driver
from drivers.config import DeviceConfig
from drivers.errors import LINK_KEYS
from drivers.transport import TransportFactory, create_transport
from hub.automation.clock import Clock, SystemClock
from hub.automation.device import DRIVER as ROOM_DRIVER
from hub.automation.device import RoomDevice
from hub.automation.models import ROOM_DEVICE
from hub.commands import Device, Reply, Target, result_code, run_command
from hub.config import RoomConfig
from hub.guard import token_bytes
from hub.store import RoomStore


@dataclass(slots=True)
class RoomCounters:
    """What a room counts for `/metrics`."""

    commands: Counter[str] = field(default_factory=Counter)
    """Commands (panels and HTTP) by result: `ok` or the error code."""
    panels: int = 0
    """Panels connected now."""
    joined: int = 0
    """Panels that have connected, ever."""
    left: int = 0
    """Panels that have disconnected, ever."""
    resumed: int = 0
    """Panels that reconnected and were replayed only what they missed."""
    snapshots: int = 0
    """Panels sent a whole snapshot on connect."""
    resumes: Counter[str] = field(default_factory=Counter)
    """Panels catching up (connect with `resume`, or `sync`) by how: `replay` or `snapshot`."""
    changes: int = 0
    """Changes published to the room's panels."""


class Placement(Protocol):
    """Where a room's devices run when several hubs share the building (hub/cluster)."""

    def adopt(self, room: Room) -> None:
        """The room is open: its devices and commands go through the placement."""

    async def release(self, room: Room) -> None:
        """Forget the room (its devices were stopped first)."""

    async def run(self, room: Room, device_id: str, device: Device) -> None:
        """Run the device on the hub that owns it (here once this hub takes it)."""

    async def halt(self, room: Room, device_id: str) -> None:
        """The device leaves: stopped if it runs here, free for no hub to take."""

    async def command(self, room: Room, data: Any, where: str) -> Reply:
        """Run a command on the hub that owns its device."""

    def reach(self, room: Room) -> Mapping[str, Target]:
        """The room's drivers as a macro commands them: each on the hub that owns it."""


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
        placement: Placement | None = None,
        clock: Clock | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self.id = room_id
        self.placement = placement
        self.name = config.name
        self.config = config
        self.store = store
        self.counters = RoomCounters()
        self.set_access(config.panel_tokens, admin_token)
        self.drivers: dict[str, Driver[Any]] = {}
        self._sinks: dict[str, _Sink] = {}
        self._transport_factory = transport_factory
        self.devices: dict[str, Device] = {}
        """Every device commands can reach: the drivers, and the `room` device if any."""
        for device_id, device in config.devices.items():
            self.add_device(device_id, device)
        self._clock = clock or SystemClock()
        self._zone = zone
        self.automation: RoomDevice | None = None
        self._make_automation(config)

    def _make_automation(self, config: RoomConfig) -> None:
        """The `room` device of `config`'s macros (none without), entered in the store."""
        self.automation = None
        if not config.macros:
            return
        devices = self.drivers if self.placement is None else self.placement.reach(self)
        self.automation = RoomDevice(
            self.id,
            config,
            self.store,
            devices,
            clock=self._clock,
            zone=self._zone,
        )
        self.store.add_device(
            ROOM_DEVICE,
            config.name,
            ROOM_DRIVER,
            self.automation.state,
            self.automation.describe_actions(),
        )
        self.devices[ROOM_DEVICE] = self.automation

    async def retire_automation(self) -> None:
        """Stop the `room` device before a reload replaces it: its macro cancelled, timers off."""
        if self.automation is not None:
            await self.stop_device(ROOM_DEVICE, self.automation)

    def replace_automation(self, config: RoomConfig) -> RoomDevice | None:
        """Swap in the `room` device of `config` (after `retire_automation`); the caller starts it."""
        if self.automation is not None:
            self.store.remove_device(ROOM_DEVICE)
            self.devices.pop(ROOM_DEVICE, None)
        self._make_automation(config)
        return self.automation

    def set_access(self, panel_tokens: Iterable[str], admin_token: str | None) -> None:
        """Who may enter: the panel tokens (none: anyone) and the admin token."""
        panel_tokens = list(panel_tokens)
        self.open_room = not panel_tokens
        self._tokens = [t.encode() for t in (*panel_tokens, admin_token) if t]

    def add_device(
        self, device_id: str, device: DeviceConfig, known: Mapping[str, Any] | None = None
    ) -> Driver[Any]:
        """Build a device's driver and enter it in the store; `start()` it if the room runs.

        `known`: the state the device had under its previous settings (a reload restarts
        it), shown until it is read again, as an offline device keeps its last state.
        """
        sink = _Sink(self.store, device_id)
        driver = DRIVERS[device.driver].driver(
            device_id,
            device,
            sink,
            label=f"{self.id}/{device_id}",
            transport_factory=self._transport_factory,
        )
        if known:
            driver.state.update({k: v for k, v in known.items() if k not in LINK_KEYS})
        self.store.add_device(
            device_id,
            device.name or device_id,
            device.driver,
            driver.state,
            driver.describe_actions(),
        )
        driver.actions_sink = sink.describe  # see Driver.publish_actions
        self.drivers[device_id] = driver
        self.devices[device_id] = driver
        self._sinks[device_id] = sink
        return driver

    def remove_device(self, device_id: str) -> Driver[Any]:
        """Take a device out of the room and the store; its late changes go nowhere.

        The caller stops the returned driver.
        """
        self._sinks.pop(device_id).live = False
        self.store.remove_device(device_id)
        self.devices.pop(device_id, None)
        return self.drivers.pop(device_id)

    def authorized(self, token: object) -> bool:
        """True when the room is open or `token` is one of its tokens (or the admin token)."""
        if self.open_room:
            return True
        given = token_bytes(token) if isinstance(token, str) else None
        return given is not None and any(hmac.compare_digest(given, t) for t in self._tokens)

    async def command(self, data: Any, where: str) -> Reply:
        """Run one `{device, action, args}` command; the ack, counted by result."""
        if self.placement is not None:
            reply = await self.placement.command(self, data, where)
        else:
            reply = await run_command(self.devices, data, where)
        result = result_code(reply)
        self.counters.commands[result] += 1
        device = data.get("device") if isinstance(data, dict) else None
        driver = self.drivers.get(device) if isinstance(device, str) else None
        if driver is not None:
            driver.stats.command(result)
        return reply

    def online(self) -> int:
        """How many of the room's devices are online."""
        return sum(1 for d in self.drivers if self.device_online(d))

    def device_online(self, device_id: str) -> bool:
        """Whether the driver `device_id` is online (with a placement: as its owner says)."""
        if self.placement is not None:  # drivers run on their owners: read the store
            return self.store.devices[device_id].state.get("online") is True
        return self.drivers[device_id].online

    async def start(self) -> None:
        """Open the store, then start every device (or hand each to the placement)."""
        await self.store.open()
        if self.placement is not None:
            self.placement.adopt(self)
        for device_id, device in self.devices.items():
            await self.start_device(device_id, device)

    async def stop(self) -> None:
        """Stop automation and every device (closing its connection), then close the store."""
        if self.automation is not None:
            await self.stop_device(ROOM_DEVICE, self.automation)
        await asyncio.gather(*(self.stop_device(d, driver) for d, driver in self.drivers.items()))
        if self.placement is not None:
            await self.placement.release(self)
        await self.store.close()

    async def start_device(self, device_id: str, device: Device) -> None:
        """Start one of the room's devices: here, or on the hub the placement gives it to."""
        if self.placement is not None:
            await self.placement.run(self, device_id, device)
        else:
            await device.start()

    async def stop_device(self, device_id: str, device: Device) -> None:
        """Stop a device started with `start_device` (also one a reload took out)."""
        if self.placement is not None:
            await self.placement.halt(self, device_id)
        else:
            await device.stop()


def drivers_of(rooms: Iterable[Room]) -> list[Driver[Any]]:
    """Every driver of `rooms`, in deployment order."""
    return [d for room in rooms for d in room.drivers.values()]


class _Sink:
    """Where a driver's changes (and new action schemas) go: its room's store, while live."""

    __slots__ = ("device_id", "live", "store")

    def __init__(self, store: RoomStore, device_id: str) -> None:
        self.store = store
        self.device_id = device_id
        self.live = True  # False once the device left the room (a reload removed or replaced it)

    def __call__(self, changes: dict[str, Any]) -> None:
        if self.live:
            self.store.commit(self.device_id, changes)

    def describe(self, actions: dict[str, dict[str, Any]]) -> None:
        """A driver's new action schemas: a description change in the store, while live."""
        if self.live:
            self.store.describe(self.device_id, actions)
