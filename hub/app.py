"""The hub: rooms and their front doors built from a config, served on aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from drivers import DRIVERS
from drivers.base import Driver
from drivers.errors import AvhubError, ErrorCode
from drivers.service import DriverService
from drivers.transport import TransportFactory, create_transport
from hub.automation.clock import Clock, SystemClock, zone
from hub.cluster.node import ClusterNode
from hub.cluster.placement import ClusterPlacement
from hub.cluster.store import RedisStore
from hub.config import Config, HubSettings, RoomConfig
from hub.door import DoorSite, Panels
from hub.fanout import Packet, direct_transports
from hub.guard import origin_guard, socketio_origins
from hub.http import api_errors, setup_routes
from hub.logs import counted
from hub.metrics import HubMetrics
from hub.namespace import RoomNamespace
from hub.room import Room, drivers_of
from hub.store import MemoryStore, RoomStore

if TYPE_CHECKING:
    from hub.heap import Heap
    from hub.reload import Reloader

log = logging.getLogger("avhub.hub")

# Seconds that open requests get on stop. Panel websockets never end by themselves (the
# Engine.IO server waits for the client), so without a short grace a stop takes a minute.
SHUTDOWN_GRACE = 0.5


def memory_store(room_id: str, room: RoomConfig, settings: HubSettings) -> RoomStore:
    """The in-process store (`hub.store: memory`)."""
    return MemoryStore(
        room_id, room.name, ring_size=settings.replay_size, max_age=settings.replay_max_age
    )


class Hub:
    """Everything one hub process runs: rooms, driver services, Socket.IO and HTTP."""

    def __init__(
        self,
        config: Config,
        *,
        transport_factory: TransportFactory = create_transport,
        clock: Clock | None = None,
    ) -> None:
        settings = config.hub
        self.config = config
        self.started = settings
        """The hub settings it started with: what runs of those a reload cannot change
        (`hub.reload.RESTART_ONLY`) until the next start, rooms added later included."""
        self.cluster: ClusterNode | None = None
        self.placement: ClusterPlacement | None = None
        if settings.store != "memory":  # scale-out: hub/cluster
            self.cluster = ClusterNode(
                settings.store,
                settings.cluster,
                replay_size=settings.replay_size,
                replay_max_age=settings.replay_max_age,
            )
            self.placement = ClusterPlacement(self.cluster)
            self.cluster.status_listeners.append(self._tell_store_status)
            self.cluster.reset_listeners.append(self._resend_snapshots)
        self.clock = clock or SystemClock()  # what schedules, triggers and macro waits go by
        self.transport_factory = transport_factory
        # Browsers must come from the hub's own origin or one of hub.allowed_origins.
        self._socketio_origins = socketio_origins(lambda: self.config.hub)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=self._socketio_origins,
            serializer=Packet,
        )
        # python-socketio accepts the namespaces it has a handler for plus this list, which
        # its constructor turns from empty into ["/"]: rooms' namespaces only, as handlers
        # (`open_room` registers one, `close_room` takes it away).
        self.sio.namespaces = []
        self.rooms: dict[str, Room] = {}
        self.namespaces: dict[str, RoomNamespace] = {}
        for room_id, room_cfg in config.rooms.items():
            self.open_room(room_id, room_cfg)
        self.services = _services(settings, self.all_drivers())
        self.metrics = HubMetrics(self)
        self.reloader: Reloader | None = None  # set when the hub runs from a file
        self.heap: Heap | None = None  # set by `avhub run` (hub/heap.py)
        self.app = web.Application(middlewares=[origin_guard(lambda: self.config.hub), api_errors])
        self.sio.attach(self.app)
        setup_routes(self.app, self)
        self._runner: web.AppRunner | None = None
        self._panels = Panels(self.sio, self._socketio_origins)  # WebSockets the door serves
        self.address: tuple[str, int] | None = None
        self.host = settings.host  # where driver services listen (the hub's host)

    def open_room(self, room_id: str, config: RoomConfig) -> Room:
        """A room and its namespace, accepting panels from now on (started by the caller)."""
        room = Room(
            room_id,
            config,
            self._new_store(room_id, config),
            admin_token=self.config.hub.admin_token,
            transport_factory=self.transport_factory,
            placement=self.placement,
            clock=self.clock,
            zone=zone(self.started.timezone),
        )
        namespace = RoomNamespace(room)
        self.sio.register_namespace(namespace)
        namespace.attach(self.sio)
        self.rooms[room_id] = room
        self.namespaces[room_id] = namespace
        return room

    async def close_room(self, room_id: str, message: str) -> None:
        """Take a room out: panels told (`closing`, `room_removed`) and disconnected, devices
        stopped, its namespace refused from now on. The caller detaches driver services."""
        room = self.rooms.pop(room_id)
        namespace = self.namespaces.pop(room_id)
        namespace.removed = True
        await namespace.send_off("room_removed", message)
        await room.stop()
        await namespace.close()
        if self.sio.namespace_handlers.get(namespace.namespace) is namespace:
            del self.sio.namespace_handlers[namespace.namespace]

    def all_drivers(self) -> list[Driver[Any]]:
        return drivers_of(self.rooms.values())

    # ---- the store (hub.store) ------------------------------------------------------

    def _new_store(self, room_id: str, room: RoomConfig) -> RoomStore:
        if self.cluster is None:
            return memory_store(room_id, room, self.started)
        return self.cluster.store(room_id, room.name)

    def store_health(self) -> dict[str, Any]:
        """`/healthz` fields of a Redis store: `store` (ok or store_unavailable), node, owned."""
        if self.cluster is None:
            return {}
        return {
            "store": "ok" if self.cluster.available else ErrorCode.STORE_UNAVAILABLE.value,
            "node": self.cluster.node_id,
            "owned": len(self.cluster.ownership.owned()),
        }

    def _tell_store_status(self, available: bool) -> None:
        """Panels get a `store` event when Redis goes away and when it is back."""
        status: dict[str, Any] = {"available": available}
        if not available:
            status["code"] = ErrorCode.STORE_UNAVAILABLE.value
        for namespace in self.namespaces.values():
            if namespace.fanout is not None:
                namespace.fanout.broadcast("store", status)

    def _resend_snapshots(self, store: RedisStore) -> None:
        """The room's continuity ended in Redis: its panels load the new epoch's snapshot."""
        namespace = self.namespaces.get(store.room_id)
        if namespace is not None:
            namespace.send_snapshot()

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        """Serve HTTP/Socket.IO, start every room and driver service; returns the bound address."""
        host = host if host is not None else self.config.hub.host
        port = port if port is not None else self.config.hub.port
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = DoorSite(self._runner, host, port, self._panels)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise AvhubError(cannot_listen(host, port, err)) from err
        bound = self._runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        self.host = host
        if self.cluster is not None:
            await self.cluster.start(self.address)
        for room in self.rooms.values():
            await room.start()
        if self.cluster is not None:
            self.cluster.run_ownership()
        for service in self.services.values():
            await service.start(host)
        log.info(
            "hub listening on http://%s:%d (%s, %s)",
            *self.address,
            counted(len(self.rooms), "room"),
            counted(len(self.all_drivers()), "device"),
        )
        return self.address

    async def stop(self) -> None:
        """Stop services and drivers (closing device connections), panels and the web server."""
        step = _StopSteps()
        for service in self.services.values():
            await service.stop()
        step.done("driver services")
        if self._runner is not None:  # first take no new panels: reconnecting ones would wait
            for site in list(self._runner.sites):
                await site.stop()
            step.done("listening sockets")
        if self.cluster is not None:  # every lease handed back at once, before the rooms stop
            await self.cluster.stop_ownership()
            step.done("cluster leases")
        await asyncio.gather(*(room.stop() for room in self.rooms.values()))
        step.done("rooms and their drivers")
        if self.cluster is not None:
            await self.cluster.stop()
            step.done("cluster connections")
        for namespace in self.namespaces.values():
            await namespace.close()
        # Say goodbye (an Engine.IO CLOSE) and hang up on every panel rather than let the
        # grace run out: they reconnect to the next hub at once.
        if self.sio.eio.sockets:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_GRACE):
                    await self.sio.eio.disconnect()
        for transport in list(direct_transports(self.sio).values()):
            transport.close()
        await self._panels.close()
        step.done("panels")
        if self._runner is not None:
            await self.sio.shutdown()  # ends Engine.IO's service task, else it outlives the hub
            await self._runner.cleanup()
            self._runner = None
            step.done("web server")
        await asyncio.sleep(0)  # let closed transports run their connection_lost callbacks
        log.info("stopped in %.2f s", step.total())


class _StopSteps:
    """Times the steps of a shutdown: one that takes long is named in the log, and a
    shutdown still going after `STUCK` seconds logs what every task is waiting on."""

    SLOW = 1.0  # seconds
    STUCK = 8.0

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._began = self._last = self._loop.time()
        self._done: list[str] = []
        self._watch = self._loop.call_later(self.STUCK, self._stuck)

    def done(self, what: str) -> None:
        now = self._loop.time()
        if now - self._last > self.SLOW:
            log.warning("stopping: %s took %.1f s", what, now - self._last)
        self._last = now
        self._done.append(what)

    def total(self) -> float:
        self._watch.cancel()
        return self._loop.time() - self._began

    def _stuck(self) -> None:
        waiting = [f"  {task.get_name()}: {_awaiting(task)}" for task in asyncio.all_tasks()]
        log.error(
            "still stopping after %.0f s (done: %s); tasks:\n%s",
            self.STUCK,
            ", ".join(self._done) or "nothing yet",
            "\n".join(sorted(waiting)),
        )


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task waits: its chain of awaiting coroutines, outermost first."""
    where: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(where) < 12:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            where.append(type(awaited).__name__)
            break
        where.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " > ".join(where)


def cannot_listen(host: str, port: int, err: OSError) -> str:
    """Why the hub cannot take HOST:PORT, in a line (asyncio's message names the socket
    address tuple and repeats itself)."""
    why = os.strerror(err.errno).lower() if err.errno else str(err)
    hint = ""
    if err.errno == errno.EADDRINUSE:
        hint = (
            "; another program (or hub) listens there: choose another with --listen or hub.listen"
        )
    elif err.errno == errno.EACCES:
        hint = "; ports below 1024 need privileges: choose another with --listen or hub.listen"
    return f"cannot listen on {host}:{port}: {why}{hint}"


def _services(settings: HubSettings, drivers: list[Driver[Any]]) -> dict[str, DriverService[Any]]:
    """One service per driver kind that declares one and has devices here, with its devices."""
    services: dict[str, DriverService[Any]] = {}
    for driver in drivers:
        name = driver.config.driver
        make = DRIVERS[name].service
        if make is None:
            continue
        if name not in services:
            services[name] = make(settings.driver_settings(name))
        services[name].attach(driver)
    return services
