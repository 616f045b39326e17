"""Live reload: read the deployment file again, diff it against the running one, touch only
what changed (`SIGHUP`, or `POST /api/admin/reload` with the admin token).

A file with problems changes nothing: every problem is logged as `avhub check` prints it
and returned. Otherwise `plan_reload` compares the two configs and `apply_plan` carries
the plan out: removed rooms tell their panels (`closing`) and disconnect them; added
rooms start; in a room that stays, removed devices stop, added ones start and changed
ones restart, and its panels stay connected and get a fresh snapshot with the same
`epoch` and `seq` (DESIGN.md §3). Rooms and devices that did not change are not touched:
same connections, state, `epoch`, `seq` and panels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers import DRIVERS
from drivers.base import Driver
from drivers.config import DeviceConfig
from drivers.service import DriverService
from hub.automation.models import ROOM_DEVICE
from hub.config import Config, ConfigFileError, HubSettings, RoomConfig, load_config
from hub.guard import exposure_warnings
from hub.heap import Heap

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.simulate import Simulators

log = logging.getLogger("avhub.reload")

RESTART_ONLY = (
    "listen",
    "store",
    "cluster",
    "replay_size",
    "replay_max_age",
    "log_level",
    "timezone",
)
"""Hub settings a running hub cannot change; a reload notes them for the next start."""


@dataclass(frozen=True, slots=True)
class RoomPlan:
    """What changes in a room that stays."""

    renamed: bool = False
    access: bool = False
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    automation: bool = False
    """Macros, schedules or triggers changed: the `room` device takes them (`_change_room`)."""

    @property
    def redraw(self) -> bool:
        """True when the room's panels need a new snapshot (device list or name changed)."""
        return bool(self.renamed or self.added or self.removed or self.restarted or self.automation)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a reload changes; empty when the file says what runs already."""

    rooms_added: tuple[str, ...] = ()
    rooms_removed: tuple[str, ...] = ()
    rooms_changed: Mapping[str, RoomPlan] = field(default_factory=dict)
    admin_token: bool = False
    services: tuple[str, ...] = ()
    """Driver kinds whose `hub.drivers.<kind>` settings changed (their service restarts)."""
    restart_needed: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The reload answer's `result`: rooms and devices (`room/device`) by what happened."""

        def devices(attr: str) -> list[str]:
            return [f"{r}/{d}" for r, p in self.rooms_changed.items() for d in getattr(p, attr)]

        return {
            "rooms": {
                "added": list(self.rooms_added),
                "removed": list(self.rooms_removed),
                "changed": list(self.rooms_changed),
            },
            "devices": {
                "added": devices("added"),
                "removed": devices("removed"),
                "restarted": devices("restarted"),
            },
            "automation_replaced": [r for r, p in self.rooms_changed.items() if p.automation],
            "services_restarted": list(self.services),
            "restart_needed": [f"hub.{name}" for name in self.restart_needed],
        }


def plan_reload(old: Config, new: Config, started: HubSettings | None = None) -> Plan:
    """Compare the running deployment with the new one; `started`: the hub settings the
    hub started with (default `old.hub`), which its restart-only settings still are."""
    started = started or old.hub
    admin = old.hub.admin_token != new.hub.admin_token
    changed = {}
    for room_id, room in new.rooms.items():
        before = old.rooms.get(room_id)
        if before is not None:
            plan = _room_plan(before, room)
            if plan != RoomPlan():
                changed[room_id] = plan
    return Plan(
        rooms_added=tuple(r for r in new.rooms if r not in old.rooms),
        rooms_removed=tuple(r for r in old.rooms if r not in new.rooms),
        rooms_changed=changed,
        admin_token=admin,
        services=tuple(
            name
            for name in DRIVERS
            if old.hub.driver_settings(name) != new.hub.driver_settings(name)
        ),
        restart_needed=tuple(
            name for name in RESTART_ONLY if getattr(started, name) != getattr(new.hub, name)
        ),
    )


def _room_plan(old: RoomConfig, new: RoomConfig) -> RoomPlan:
    automation = (old.macros, old.schedules, old.triggers) != (
        new.macros,
        new.schedules,
        new.triggers,
    )
    return RoomPlan(
        renamed=old.name != new.name,
        automation=automation,
        access=old.panel_tokens != new.panel_tokens,
        added=tuple(d for d in new.devices if d not in old.devices),
        removed=tuple(d for d in old.devices if d not in new.devices),
        restarted=tuple(
            d
            for d, device in new.devices.items()
            if d in old.devices and _settings(old.devices[d]) != _settings(device)
        ),
    )


def _settings(device: DeviceConfig) -> dict[str, Any]:
    """What the driver runs on: everything but the `simulator:` block (only --simulate reads it)."""
    return device.model_dump(exclude={"simulator"})


async def apply_plan(hub: Hub, new: Config, plan: Plan) -> None:
    """Carry out `plan`, taking the hub from its config to `new`."""
    hub.config = new  # allowed_origins and metrics_token are read from here at each request
    for room_id in plan.rooms_removed:
        log.info("reload: room %s removed", room_id, extra={"room": room_id})
        await hub.close_room(room_id, f"room {room_id!r} was removed from the deployment")
    for room_id, room_plan in plan.rooms_changed.items():
        await _change_room(hub, room_id, new.rooms[room_id], room_plan)
    if plan.admin_token:
        for room_id, room in hub.rooms.items():
            if room_id not in plan.rooms_changed:
                room.set_access(room.config.panel_tokens, new.hub.admin_token)
                await hub.namespaces[room_id].revoke()
    for room_id in plan.rooms_added:
        log.info("reload: room %s added", room_id, extra={"room": room_id})
        await hub.open_room(room_id, new.rooms[room_id]).start()
    await _sync_services(hub, new.hub, plan.services)


async def _change_room(hub: Hub, room_id: str, config: RoomConfig, plan: RoomPlan) -> None:
    """Devices out, in and restarted; access and name; then one snapshot to the panels."""
    room = hub.rooms[room_id]
    # A room that keeps macros keeps its `room` device, which takes the new ones in place
    # (a running macro goes on); one that gains or loses its macros gains or loses it.
    in_place = room.automation is not None and bool(config.macros)
    rebuild = plan.automation and not in_place
    if rebuild:
        await room.retire_automation()
    # From here to redraw() nothing awaits: the snapshot shows exactly the new device list.
    # A restarted device of the same driver keeps showing what it last said until it is
    # read again: the device did not change because its settings did (nor do triggers
    # see it change).
    known = {
        d: dict(room.drivers[d].state)
        for d in plan.restarted
        if room.drivers[d].config.driver == config.devices[d].driver
    }
    stopping = [(d, room.remove_device(d)) for d in (*plan.removed, *plan.restarted)]
    starting = [
        (d, room.add_device(d, config.devices[d], known.get(d)))
        for d in (*plan.added, *plan.restarted)
    ]
    automation = room.replace_automation(config) if rebuild else None
    if plan.automation and in_place:
        assert room.automation is not None
        room.automation.reconfigure(config)
    room.config = config
    room.set_access(config.panel_tokens, hub.config.hub.admin_token)
    if plan.renamed:
        room.name = config.name
        room.store.rename(config.name)
        if room.automation is not None:  # the `room` device bears the room's name
            room.store.rename_device(ROOM_DEVICE, config.name)
    namespace = hub.namespaces[room_id]
    if plan.redraw:
        namespace.redraw()
    for what, devices in (
        ("removed", plan.removed),
        ("added", plan.added),
        ("restarted", plan.restarted),
    ):
        for device_id in devices:
            log.info(
                "reload: device %s/%s %s",
                room_id,
                device_id,
                what,
                extra={"room": room_id, "device": device_id},
            )
    await asyncio.gather(*(room.stop_device(d, driver) for d, driver in stopping))
    for device_id, driver in starting:
        await room.start_device(device_id, driver)
    if automation is not None:
        await room.start_device(ROOM_DEVICE, automation)
    await namespace.revoke()


async def _sync_services(hub: Hub, settings: HubSettings, restart: tuple[str, ...]) -> None:
    """Each driver kind's service follows its devices: attach added, detach removed, start a
    service for a kind that gained its first device, stop one that lost its last; restart
    those whose settings changed."""
    wanted: dict[str, list[Driver[Any]]] = {}
    for driver in hub.all_drivers():
        if DRIVERS[driver.config.driver].service is not None:
            wanted.setdefault(driver.config.driver, []).append(driver)
    for name, service in list(hub.services.items()):
        if name in restart or name not in wanted:
            await service.stop()
            del hub.services[name]
            continue
        for driver in [d for d in service.drivers if d not in wanted[name]]:
            service.detach(driver)
        for driver in wanted[name]:
            if driver not in service.drivers:
                service.attach(driver)
    for name, drivers in wanted.items():
        if name in hub.services:
            continue
        make = DRIVERS[name].service
        assert make is not None
        started: DriverService[Any] = make(settings.driver_settings(name))
        for driver in drivers:
            started.attach(driver)
        hub.services[name] = started
        if hub.address is not None:
            await started.start(hub.host)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did, or why it changed nothing."""

    plan: Plan | None = None
    problems: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None

    def answer(self) -> dict[str, Any]:
        """The reply body of `POST /api/admin/reload`."""
        if self.plan is not None:
            return {"ok": True, "result": self.plan.summary()}
        if self.problems:
            count = len(self.problems)
            return {
                "ok": False,
                "error": {
                    "code": "invalid_config",
                    "message": f"the file has {count} problem{'s' if count > 1 else ''}; "
                    "nothing was changed",
                    "problems": list(self.problems),
                },
            }
        return {"ok": False, "error": {"code": "internal", "message": self.error or "failed"}}


class Reloader:
    """Reloads one hub from its deployment file, one reload at a time.

    With `simulators` (`avhub run --simulate`), devices that are new or changed get a
    simulator of their own before the hub sees them, and removed ones lose theirs. With
    `heap` (`avhub run`), the frozen heap is thawed while the reload applies, so what it
    removes can be collected, and settled again after (hub/heap.py).
    """

    def __init__(
        self,
        hub: Hub,
        path: str | Path,
        simulators: Simulators | None = None,
        heap: Heap | None = None,
    ) -> None:
        self.hub = hub
        self.path = Path(path)
        self.simulators = simulators
        self.heap = heap
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[ReloadOutcome]] = set()

    def soon(self) -> None:
        """Reload in the background (the SIGHUP handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="avhub-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> ReloadOutcome:
        """Read, check and apply the file; see the module docstring."""
        async with self._lock:
            outcome = await self._reload()
        counts = self.hub.metrics.reloads.counts
        counts["ok" if outcome.ok else "invalid" if outcome.problems else "failed"] += 1
        return outcome

    async def _reload(self) -> ReloadOutcome:
        log.info("reloading %s", self.path)
        try:
            config = load_config(self.path)
        except ConfigFileError as err:
            for problem in err.problems:
                log.error("%s", problem)
            log.error("reload refused: %s has problems; nothing was changed", self.path)
            return ReloadOutcome(problems=tuple(str(p) for p in err.problems))
        for warning in exposure_warnings(config, self.hub.host):
            log.warning("%s", warning)
        if self.heap is not None:
            self.heap.thaw()
        try:
            if self.simulators is not None:
                config = await self.simulators.start_for(config)
            plan = plan_reload(self.hub.config, config, self.hub.started)
            await apply_plan(self.hub, config, plan)
            if self.simulators is not None:
                self.simulators.aim_at(self.hub.services)
        except Exception as err:
            log.exception("reload of %s failed part way", self.path)
            return ReloadOutcome(error=f"reload failed: {type(err).__name__}: {err}")
        finally:
            if self.heap is not None:
                self.heap.settle()
        for name in plan.restart_needed:
            log.warning(
                "reload: hub.%s in the file is not what runs; it takes effect when the hub restarts",
                name,
            )
        summary = plan.summary()
        log.info(
            "reloaded %s: rooms %s; devices %s",
            self.path,
            ", ".join(f"{len(v)} {k}" for k, v in summary["rooms"].items()),
            ", ".join(f"{len(v)} {k}" for k, v in summary["devices"].items()),
        )
        return ReloadOutcome(plan=plan)
