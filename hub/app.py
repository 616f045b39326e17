"""The hub: builds rooms, drivers and namespaces from a config, serves them on aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio
from aiohttp import web

from drivers import DRIVERS
from drivers.base import Driver
from drivers.errors import ConfigError
from drivers.pjlink.driver import PjlinkDriver
from drivers.transport import TransportFactory, create_transport
from hub.config import Config
from hub.http import setup_routes
from hub.notifications import PjlinkNotifications
from hub.rooms import RoomNamespace, direct_transports
from hub.store import RoomState

log = logging.getLogger("avhub.hub")

# Seconds that open requests get on stop. Panel websockets never end by themselves (the
# Engine.IO server waits for the client), so without a short grace a stop takes a minute.
SHUTDOWN_GRACE = 0.5


class Hub:
    """Everything one hub process runs: state store, drivers, Socket.IO rooms, web app."""

    def __init__(
        self, config: Config, *, transport_factory: TransportFactory = create_transport
    ) -> None:
        if config.hub.store != "memory":
            raise ConfigError(
                "hub.store: sharing state between hubs over Redis is not available in this "
                "version of avhub; use `store: memory`"
            )
        self.config = config
        self.rooms: dict[str, RoomState] = {}
        self.drivers: dict[str, dict[str, Driver[Any]]] = {}
        self.namespaces: dict[str, RoomNamespace] = {}
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", namespaces=[f"/rooms/{r}" for r in config.rooms]
        )
        self.app = web.Application()
        self.sio.attach(self.app)
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None
        settings = config.hub
        for room_id, room_cfg in config.rooms.items():
            room = RoomState(
                room_id,
                room_cfg.name or room_id,
                ring_size=settings.replay_size,
                max_age=settings.replay_max_age,
            )
            drivers: dict[str, Driver[Any]] = {}
            for device_id, dev_cfg in room_cfg.devices.items():
                driver = DRIVERS[dev_cfg.driver].driver(
                    device_id,
                    dev_cfg,
                    _committer(room, device_id),
                    label=f"{room_id}/{device_id}",
                    transport_factory=transport_factory,
                )
                room.add_device(
                    device_id,
                    dev_cfg.name or device_id,
                    dev_cfg.driver,
                    driver.state,
                    driver.describe_actions(),
                )
                drivers[device_id] = driver
            namespace = RoomNamespace(room, drivers, room_cfg.panel_tokens, settings.admin_token)
            self.sio.register_namespace(namespace)
            namespace.attach(self.sio)
            self.rooms[room_id] = room
            self.drivers[room_id] = drivers
            self.namespaces[room_id] = namespace
        self.pjlink_notifications = PjlinkNotifications(
            d for d in self.all_drivers() if isinstance(d, PjlinkDriver)
        )
        setup_routes(self.app, self)

    def all_drivers(self) -> list[Driver[Any]]:
        return [d for room in self.drivers.values() for d in room.values()]

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        """Serve HTTP/Socket.IO and start every driver; returns the bound address."""
        host = host if host is not None else self.config.hub.host
        port = port if port is not None else self.config.hub.port
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        for driver in self.all_drivers():
            await driver.start()
        notify = self.config.hub.pjlink_notify_address(host)
        if notify is not None:
            await self.pjlink_notifications.start(*notify)
        log.info(
            "hub listening on http://%s:%d (%d rooms, %d devices)",
            *self.address,
            len(self.rooms),
            len(self.all_drivers()),
        )
        return self.address

    async def stop(self) -> None:
        """Stop drivers (closing device connections), panels and the web server."""
        self.pjlink_notifications.close()
        if self._runner is not None:  # first take no new panels: reconnecting ones would wait
            for site in list(self._runner.sites):
                await site.stop()
        await asyncio.gather(*(d.stop() for d in self.all_drivers()))
        for namespace in self.namespaces.values():
            if namespace.fanout is not None:
                await namespace.fanout.close()
        # Say goodbye (an Engine.IO CLOSE) and hang up on every panel rather than let the
        # grace run out: they reconnect to the next hub at once.
        if self.sio.eio.sockets:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_GRACE):
                    await self.sio.eio.disconnect()
        for transport in list(direct_transports(self.sio).values()):
            transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.sleep(0)  # let closed transports run their connection_lost callbacks


def _committer(room: RoomState, device_id: str) -> Any:
    def commit(changes: dict[str, Any]) -> None:
        room.commit(device_id, changes)

    return commit
