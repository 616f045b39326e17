"""Live reload (hub/reload.py): only what changed is touched; a file with problems changes nothing.

Each test runs a hub from a deployment file against PJLink simulators on loopback, with
test panels (tests/panel.py) connected, rewrites the file and reloads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import yaml

from drivers.base import Driver
from hub.app import Hub
from hub.reload import Reloader
from simulators.pjlink import PjlinkSimulator
from tests.helpers import pjlink_at, until
from tests.panel import Panel

ADMIN = "admin-secret"
GONE = (
    socketio.exceptions.ConnectionError,
    socketio.exceptions.BadNamespaceError,
    socketio.exceptions.TimeoutError,
)
Rooms = dict[str, dict[str, int]]  # room id -> device id -> simulator port


def deployment(
    rooms: Rooms, tokens: dict[str, str] | None = None, slow: str = ""
) -> dict[str, Any]:
    """A deployment: PJLink devices aimed at simulator ports; `slow` devices poll at 0.3 s."""

    def device(device_id: str, port: int) -> dict[str, Any]:
        return pjlink_at(port, **({"poll_interval": 0.3} if device_id == slow else {}))

    site: dict[str, Any] = {}
    for room_id, devices in rooms.items():
        room: dict[str, Any] = {"name": f"Room {room_id}"}
        if tokens and room_id in tokens:
            room["panel_tokens"] = [tokens[room_id]]
        room["devices"] = {d: device(d, port) for d, port in devices.items()}
        site[room_id] = room
    return {"hub": {"admin_token": ADMIN}, "rooms": site}


def with_macros(config: dict[str, Any], room: str, macros: dict[str, Any]) -> dict[str, Any]:
    """`config` with `macros` in `room`."""
    config["rooms"][room]["macros"] = macros
    return config


def hold(label: str) -> dict[str, Any]:
    """A macro that waits a minute."""
    return {"hold": {"label": label, "steps": [{"wait": 60}]}}


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


class Site:
    """A hub running from a file, its simulators and panels; `reload(rooms)` rewrites the file."""

    def __init__(self, hub: Hub, path: Path, sims: list[PjlinkSimulator]) -> None:
        self.hub = hub
        self.path = path
        self.sims = sims
        self.reloader = Reloader(hub, path)
        hub.reloader = self.reloader

    def port(self, i: int) -> int:
        return self.sims[i].port

    async def reload(self, rooms: Rooms, **kw: Any) -> Any:
        return await self.reload_config(deployment(rooms, **kw))

    async def reload_config(self, config: dict[str, Any]) -> Any:
        """Write `config` to the file and reload it."""
        write(self.path, config)
        return await self.reloader.reload()

    def driver(self, room: str, device: str) -> Driver[Any]:
        return self.hub.rooms[room].drivers[device]

    async def online(self) -> None:
        drivers = self.hub.all_drivers()
        await until(lambda: all(d.online for d in drivers), message="devices online")


@pytest.fixture
async def site(
    hub_factory: Callable[..., Awaitable[Hub]],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    tmp_path: Path,
) -> AsyncIterator[Site]:
    sims = [await pjlink_sims() for _ in range(4)]
    rooms = {"lobby": {"proj": sims[0].port}, "hall": {"left": sims[1].port}}
    path = tmp_path / "site.yaml"
    write(path, deployment(rooms))
    hub = await hub_factory(deployment(rooms))
    site = Site(hub, path, sims)
    await site.online()
    yield site


async def connected(panels: Callable[..., Panel], hub: Hub, room: str, **kw: Any) -> Panel:
    panel = panels(hub, room, **kw)
    await panel.connect()
    await until(lambda: panel.in_sync, message=f"panel of {room} in sync")
    return panel


async def untouched(panel: Panel, received: int, snapshots: int = 1) -> None:
    """The panel saw nothing since: no event, no new snapshot, same connection. Checked after
    a round trip on its connection, whose answer comes after whatever the hub sent before."""
    assert panel.sio.connected
    assert await panel.call("sync", {"epoch": panel.epoch, "seq": panel.seq}) == {"changes": []}
    assert (len(panel.received), panel.snapshots, panel.connects) == (received, snapshots, 1)


async def quiet(site: Site) -> None:
    """Let the devices' first polls settle, so a panel's later events come from the test."""
    await until(
        lambda: all("pjlink_class" in d.state for d in site.hub.all_drivers()),
        message="first polls done",
    )


# ---- devices --------------------------------------------------------------------------------


async def test_an_added_device_starts_and_the_rooms_panels_redraw_in_place(
    site: Site, panels: Any
) -> None:
    await quiet(site)
    hub = site.hub
    lobby, hall = await connected(panels, hub, "lobby"), await connected(panels, hub, "hall")
    proj, left = site.driver("lobby", "proj"), site.driver("hall", "left")
    epoch, seq = hub.rooms["lobby"].store.epoch, hub.rooms["lobby"].store.seq
    hall_events, proj_connections = len(hall.received), site.sims[0].connections

    outcome = await site.reload(
        {"lobby": {"proj": site.port(0), "extra": site.port(2)}, "hall": {"left": site.port(1)}}
    )

    assert outcome.ok and outcome.answer()["result"]["devices"]["added"] == ["lobby/extra"]
    assert site.driver("lobby", "proj") is proj and site.driver("hall", "left") is left
    await until(lambda: "extra" in lobby.devices, message="the panel's new device list")
    assert lobby.snapshots == 2 and lobby.connects == 1 and lobby.sio.connected
    assert (lobby.snapshot or {})["epoch"] == epoch and (lobby.snapshot or {})["seq"] == seq
    extra = site.driver("lobby", "extra")
    await until(lambda: extra.online, message="the added device online")
    store = hub.rooms["lobby"].store  # the added device's first polls still land
    await until(
        lambda: lobby.in_sync and lobby.devices["extra"]["state"] == store.devices["extra"].state
    )
    assert lobby.violations == []
    assert "extra" in [d.device_id for d in hub.services["pjlink"].drivers]
    await untouched(hall, hall_events)
    assert site.sims[0].connections == proj_connections  # the unchanged device kept its link
    assert hub.rooms["hall"].store.seq == hall.seq


async def test_a_removed_device_stops_and_leaves_the_panel(site: Site, panels: Any) -> None:
    await site.reload({"lobby": {"proj": site.port(0), "gone": site.port(2)}, "hall": {}})
    await site.online()
    await quiet(site)
    lobby = await connected(panels, site.hub, "lobby")
    gone = site.driver("lobby", "gone")

    outcome = await site.reload({"lobby": {"proj": site.port(0)}, "hall": {}})

    assert outcome.answer()["result"]["devices"]["removed"] == ["lobby/gone"]
    await until(lambda: "gone" not in lobby.devices, message="the device leaves the panel")
    assert lobby.sio.connected and lobby.connects == 1
    assert gone.conn_state.value == "closed"
    await until(lambda: not site.sims[2].sessions, message="its connection closed")
    assert gone not in site.hub.services["pjlink"].drivers
    ack = await lobby.command("gone", "power_on")
    assert ack["error"]["code"] == "unknown_device"
    # A panel that was away across the reload resumes into a snapshot, not a replay.
    resumed = panels(site.hub, "lobby")
    assert lobby.snapshot is not None
    resumed.epoch, resumed.seq = lobby.epoch, lobby.snapshot["seq"]  # as of the reload
    resumed.devices = {"gone": {"state": {}}}
    await resumed.connect()
    await until(lambda: resumed.snapshots == 1, message="a snapshot for the resume")
    assert "gone" not in resumed.devices


async def test_a_changed_device_restarts_alone(site: Site, panels: Any) -> None:
    await site.reload({"lobby": {"proj": site.port(0), "other": site.port(2)}, "hall": {}})
    await site.online()
    await quiet(site)
    lobby = await connected(panels, site.hub, "lobby")
    proj, other = site.driver("lobby", "proj"), site.driver("lobby", "other")
    epoch = site.hub.rooms["lobby"].store.epoch

    outcome = await site.reload(
        {"lobby": {"proj": site.port(3), "other": site.port(2)}, "hall": {}}
    )

    assert outcome.answer()["result"]["devices"] == {
        "added": [],
        "removed": [],
        "restarted": ["lobby/proj"],
    }
    assert site.driver("lobby", "other") is other
    restarted = site.driver("lobby", "proj")
    assert restarted is not proj and proj.conn_state.value == "closed"
    await until(lambda: restarted.online and site.sims[3].connections >= 1)
    await until(lambda: lobby.state("proj").get("online") is True and lobby.in_sync)
    assert site.hub.rooms["lobby"].store.epoch == epoch
    assert lobby.connects == 1 and lobby.violations == []
    store = site.hub.rooms["lobby"].store  # the restarted device's first polls still land
    await until(
        lambda: lobby.in_sync and lobby.devices["proj"]["state"] == store.devices["proj"].state
    )


async def test_a_reload_that_changes_nothing_touches_nothing(site: Site, panels: Any) -> None:
    await quiet(site)
    lobby = await connected(panels, site.hub, "lobby")
    drivers = site.hub.all_drivers()
    events = len(lobby.received)
    outcome = await site.reload({"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}})
    assert outcome.answer()["result"]["rooms"] == {"added": [], "removed": [], "changed": []}
    assert site.hub.all_drivers() == drivers
    await untouched(lobby, events)


async def test_changed_macros_are_taken_in_place_and_a_running_one_goes_on(
    site: Site, panels: Any
) -> None:
    """Macros, schedules and triggers follow the file: a room that gains macros gains the
    `room` device; one that keeps them keeps it, and the macro running on it goes on as it
    was started; the room's panels redraw in place, others see nothing; a room that loses
    its macros loses the device (and what ran on it)."""
    await quiet(site)
    rooms: Rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    first = await site.reload_config(with_macros(deployment(rooms), "lobby", hold("Hold")))
    assert first.answer()["result"]["automation_replaced"] == ["lobby"]
    lobby = await connected(panels, site.hub, "lobby")
    hall = await connected(panels, site.hub, "hall")
    hall_events = len(hall.received)
    assert lobby.actions("room")["hold"]["title"] == "Hold"
    room = site.hub.rooms["lobby"]
    epoch, device = room.store.epoch, room.automation
    running = asyncio.create_task(lobby.command("room", "hold"))
    await until(lambda: lobby.state("room").get("running") == "hold")

    relabelled = with_macros(deployment(rooms), "lobby", hold("Wait a minute"))
    relabelled["rooms"]["lobby"]["name"] = "Front lobby"
    outcome = await site.reload_config(relabelled)

    assert outcome.answer()["result"]["automation_replaced"] == ["lobby"]
    assert room.automation is device and not running.done()
    await until(lambda: lobby.snapshots == 2 and lobby.in_sync)
    assert lobby.actions("room")["hold"]["title"] == "Wait a minute"
    assert lobby.devices["room"]["name"] == "Front lobby"
    assert lobby.state("room").get("running") == "hold"  # still: the reload did not stop it
    assert (await lobby.command("room", "cancel"))["result"]["cancelled"] == "hold"
    ack = await running
    assert ack["ok"] is False and ack["error"]["code"] == "cancelled"
    await until(lambda: (lobby.state("room").get("last_run") or {}).get("macro") == "hold")
    assert room.store.epoch == epoch and lobby.connects == 1 and lobby.violations == []
    await untouched(hall, hall_events)

    outcome = await site.reload(rooms)  # no macros: no room device
    assert outcome.answer()["result"]["automation_replaced"] == ["lobby"]
    await until(lambda: lobby.snapshots == 3 and lobby.in_sync)
    assert "room" not in lobby.devices and room.automation is None
    assert (await lobby.command("room", "hold"))["error"]["code"] == "unknown_device"


async def test_a_reload_keeps_unchanged_schedules_and_triggers_and_arms_new_ones(
    site: Site, panels: Any
) -> None:
    """A schedule or trigger the file keeps keeps its timer and what it has seen; a new
    trigger whose condition holds already does not fire at the reload; the state's history
    (`last_run`) stays."""
    await quiet(site)
    rooms: Rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    config = with_macros(deployment(rooms), "lobby", {"note": {"steps": [{"wait": 0}]}})
    daily = {"at": "07:00", "run": "note"}
    config["rooms"]["lobby"]["schedules"] = [daily]
    await site.reload_config(config)
    lobby = await connected(panels, site.hub, "lobby")
    room = site.hub.rooms["lobby"]
    assert room.automation is not None
    [timer] = room.automation.schedules
    assert (await lobby.command("room", "note"))["ok"] is True
    await until(lambda: (lobby.state("room").get("last_run") or {}).get("macro") == "note")
    before = lobby.state("room")["last_run"]

    evening = {"at": "19:00", "run": "note"}
    config["rooms"]["lobby"]["schedules"] = [daily, evening]
    online = {"when": "proj.online == true", "run": "note"}
    config["rooms"]["lobby"]["triggers"] = [online]  # holds already
    outcome = await site.reload_config(config)

    assert outcome.answer()["result"]["automation_replaced"] == ["lobby"]
    first, second = room.automation.schedules
    assert first is timer and first.due is not None and second.due is not None
    assert [w.holding for w in room.automation.triggers] == [True]
    await until(lambda: lobby.snapshots == 2 and lobby.in_sync)
    await asyncio.sleep(0.05)  # a fired trigger would start `note` within a loop turn
    assert lobby.state("room")["last_run"] == before
    assert lobby.state("room")["last_trigger"] is None
    assert lobby.state("room")["next_schedule"]["macro"] == "note"


async def test_a_redraw_sends_only_the_schemas_new_to_the_rooms_panels(
    site: Site, panels: Any
) -> None:
    """The panels of a room hold every schema its devices used before a reload: the redraw's
    snapshot carries the added ones alone, and schemas no device names leave the table."""
    await quiet(site)
    rooms: Rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    lobby = await connected(panels, site.hub, "lobby")
    store = site.hub.rooms["lobby"].store
    projector = set(store.devices["proj"].actions.values())
    assert set(lobby.schemas) == projector

    await site.reload_config(with_macros(deployment(rooms), "lobby", hold("Hold")))
    await until(lambda: lobby.snapshots == 2 and lobby.in_sync)
    macros = set(store.devices["room"].actions.values())
    assert set((lobby.snapshot or {})["schemas"]) == macros - projector != set()
    assert lobby.actions("room")["hold"]["title"] == "Hold" and lobby.actions("proj")

    # Macros changed in place: the description change before the redraw carried the new
    # schema, so the redraw's snapshot has none to send.
    await site.reload_config(with_macros(deployment(rooms), "lobby", hold("Wait")))
    await until(lambda: lobby.snapshots == 3 and lobby.in_sync)
    assert store.devices["room"].actions["hold"] in lobby.schemas
    assert (lobby.snapshot or {})["schemas"] == {}
    assert lobby.actions("room")["hold"]["title"] == "Wait"

    await site.reload(rooms)  # no macros: their schemas leave the room's table
    await until(lambda: lobby.snapshots == 4 and lobby.in_sync)
    assert (lobby.snapshot or {})["schemas"] == {} and set(store.schemas) == projector
    fresh = await connected(panels, site.hub, "lobby", keep_schemas=False)
    assert set((fresh.snapshot or {})["schemas"]) == projector and fresh.actions("proj")


# ---- rooms ------------------------------------------------------------------------------------


async def test_an_added_room_opens_and_a_removed_one_sends_its_panels_away(
    site: Site, panels: Any
) -> None:
    await quiet(site)
    hub = site.hub
    lobby = await connected(panels, hub, "lobby")
    events = len(lobby.received)
    refused = panels(hub, "annex")
    with pytest.raises(Exception):  # noqa: B017 - python-socketio's ConnectionError
        await refused.connect(timeout=2)

    await site.reload(
        {
            "lobby": {"proj": site.port(0)},
            "hall": {"left": site.port(1)},
            "annex": {"a": site.port(2)},
        }
    )
    annex = await connected(panels, hub, "annex")
    assert set(annex.devices) == {"a"}
    await until(lambda: hub.rooms["annex"].drivers["a"].online, message="the new room's device")

    hall = hub.rooms["hall"]
    hall_panel = await connected(panels, hub, "hall")
    outcome = await site.reload({"lobby": {"proj": site.port(0)}, "annex": {"a": site.port(2)}})

    assert outcome.answer()["result"]["rooms"]["removed"] == ["hall"]
    await until(
        lambda: not hall_panel.sio.connected, message="the removed room's panel is sent away"
    )
    assert [c["code"] for c in hall_panel.closing] == ["room_removed"]
    assert "hall" not in hub.rooms and hall.drivers["left"].conn_state.value == "closed"
    again = panels(hub, "hall")
    with pytest.raises(Exception):  # noqa: B017
        await again.connect(timeout=2)
    await untouched(lobby, events)
    assert annex.sio.connected
    async with aiohttp.ClientSession() as http:
        url = f"http://{hub.address[0]}:{hub.address[1]}/api/rooms"  # type: ignore[index]
        async with http.get(url) as response:
            listed = [r["id"] for r in (await response.json())["rooms"]]
    assert listed == ["lobby", "annex"]


async def test_a_room_whose_tokens_change_keeps_only_panels_that_still_hold_one(
    site: Site, panels: Any
) -> None:
    rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    await site.reload(rooms, tokens={"lobby": "old"})
    old = await connected(panels, site.hub, "lobby", token="old")
    admin = await connected(panels, site.hub, "lobby", token=ADMIN)
    await site.reload(rooms, tokens={"lobby": "new"})
    await until(lambda: not old.sio.connected, message="the panel with the withdrawn token leaves")
    assert [c["code"] for c in old.closing] == ["unauthorized"]
    assert admin.sio.connected and admin.closing == []
    await connected(panels, site.hub, "lobby", token="new")


# ---- a file with problems ---------------------------------------------------------------------


async def test_a_file_with_problems_changes_nothing(
    site: Site, panels: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await quiet(site)
    hub = site.hub
    lobby = await connected(panels, hub, "lobby")
    events = len(lobby.received)
    before = (dict(hub.rooms), hub.all_drivers(), hub.config)
    epochs = {r: room.store.epoch for r, room in hub.rooms.items()}
    broken = deployment({"lobby": {}, "annex": {"a": site.port(2)}})
    broken["hub"] = {"admin_tokn": ADMIN}
    broken["rooms"]["annex"]["name"] = 5
    broken["rooms"]["annex"]["devices"]["a"]["poll_interval"] = "often"
    write(site.path, broken)
    caplog.set_level(logging.INFO, "avhub")

    assert hub.address is not None
    async with aiohttp.ClientSession(f"http://{hub.address[0]}:{hub.address[1]}") as http:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with http.post("/api/admin/reload", headers=headers) as response:
            status, body = response.status, await response.json()

    assert status == 422 and body["ok"] is False
    assert body["error"]["code"] == "invalid_config"
    problems = body["error"]["problems"]
    assert problems and all(p.startswith(f"{site.path}:") for p in problems)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(p in logged for p in problems)
    assert (dict(hub.rooms), hub.all_drivers(), hub.config) == before
    assert {r: room.store.epoch for r, room in hub.rooms.items()} == epochs
    await untouched(lobby, events)
    assert hub.metrics.reloads.counts["invalid"] == 1


# ---- the admin route ----------------------------------------------------------------------------


async def test_the_reload_route_takes_the_admin_token_only(site: Site) -> None:
    rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    await site.reload(rooms, tokens={"lobby": "panel-token"})
    assert site.hub.address is not None
    base = f"http://{site.hub.address[0]}:{site.hub.address[1]}"
    async with aiohttp.ClientSession(base) as http:
        for token, status in ((None, 401), ("panel-token", 401), ("wrong", 401), (ADMIN, 200)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.post("/api/admin/reload", headers=headers) as response:
                body = await response.json()
                assert response.status == status, body
                if status != 200:
                    assert body["error"]["code"] == "unauthorized"
    assert site.hub.metrics.reloads.counts["ok"] == 2


# ---- a reload in the middle of everything ------------------------------------------------------


async def test_reloads_while_commands_and_a_panel_storm_are_in_flight(
    site: Site, panels: Any
) -> None:
    """Panels connect, resume and leave and commands run while devices and rooms come and go:
    every command is answered in a documented shape and every panel ends in the hub's state."""
    hub = site.hub
    assert hub.address is not None
    base = f"http://{hub.address[0]}:{hub.address[1]}"
    layouts: list[Rooms] = [
        {"lobby": {"proj": site.port(0), "extra": site.port(2)}, "hall": {"left": site.port(1)}},
        {"lobby": {"proj": site.port(0)}, "annex": {"a": site.port(3)}},
        {"lobby": {"proj": site.port(3), "extra": site.port(2)}, "hall": {"left": site.port(1)}},
        {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}},
    ]
    stop = asyncio.Event()
    acks: list[Any] = []
    rng = random.Random(13)
    storm: list[Panel] = []

    async def churn_panels() -> None:
        while not stop.is_set():
            room = rng.choice(["lobby", "hall", "annex"])
            panel = panels(hub, room)
            storm.append(panel)
            try:
                await panel.connect(timeout=3)
                acks.append(await panel.command("proj", "power_on", timeout=5))
                if rng.random() < 0.5:
                    await panel.disconnect()
                    await panel.connect(timeout=3)  # resumes
            except GONE:  # a room that is gone refuses; a panel sent away has no namespace
                pass
            await asyncio.sleep(0)

    async def http_commands() -> None:
        async with aiohttp.ClientSession(base) as http:
            while not stop.is_set():
                room, device = rng.choice([("lobby", "proj"), ("lobby", "extra"), ("hall", "left")])
                path = f"/api/rooms/{room}/devices/{device}/set_audio_mute"
                async with http.post(
                    path,
                    data=json.dumps({"mute": rng.random() < 0.5}),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    acks.append(await response.json())

    workers = [asyncio.create_task(churn_panels()) for _ in range(6)]
    workers += [asyncio.create_task(http_commands()) for _ in range(2)]
    try:
        for layout in layouts * 2:
            answered = len(acks)  # commands are answered between any two reloads
            await until(lambda: len(acks) >= answered + 3, timeout=15, message="3 more answers")  # noqa: B023
            outcome = await site.reload(layout)
            assert outcome.ok, outcome.answer()
    finally:
        stop.set()
        await asyncio.gather(*workers)

    codes = {
        "ok",
        "unknown_room",
        "unknown_device",
        "device_offline",
        "busy",
        "timeout",
        "device_error",
    }
    for ack in acks:
        assert ack["ok"] is True or ack["error"]["code"] in codes, ack
    await site.online()
    survivors = [p for p in storm if p.sio.connected]
    assert survivors, "no panel stayed connected"
    for panel in survivors:
        room = hub.rooms[panel.namespace.removeprefix("/rooms/")]
        await until(lambda p=panel, r=room: p.in_sync and p.seq == r.store.seq, timeout=10)
        assert panel.violations == []
        assert {d: e["state"] for d, e in panel.devices.items()} == {
            d: e.state for d, e in room.store.devices.items()
        }
    assert set(hub.sio.namespace_handlers) == {"/rooms/lobby", "/rooms/hall"}
    assert {d.device_id for d in hub.services["pjlink"].drivers} == {"proj", "left"}


async def test_driver_services_follow_their_devices_and_settings(site: Site) -> None:
    """The PJLink notification service: stopped when its last device goes, started again for
    the next one, restarted when `hub.drivers.pjlink` changes."""
    assert "pjlink" in site.hub.services
    outcome = await site.reload({"lobby": {}, "hall": {}})
    assert outcome.ok and "pjlink" not in site.hub.services
    await site.reload({"lobby": {"proj": site.port(0)}, "hall": {}})
    first = site.hub.services["pjlink"]
    assert [d.device_id for d in first.drivers] == ["proj"]
    quiet_pjlink = deployment({"lobby": {"proj": site.port(0)}, "hall": {}})
    quiet_pjlink["hub"]["drivers"] = {"pjlink": {"notify": "off"}}
    outcome = await site.reload_config(quiet_pjlink)
    assert outcome.answer()["result"]["services_restarted"] == ["pjlink"]
    second = site.hub.services["pjlink"]
    assert second is not first and second.settings.notify == "off"
    assert [d.device_id for d in second.drivers] == ["proj"]
    assert site.driver("lobby", "proj") is first.drivers[0]  # the device itself untouched


async def test_settings_a_running_hub_cannot_change_wait_for_a_restart(site: Site) -> None:
    drivers = site.hub.all_drivers()
    config = deployment({"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}})
    config["hub"] |= {"replay_size": 5, "listen": "127.0.0.1:9"}
    outcome = await site.reload_config(config)
    assert outcome.answer()["result"]["restart_needed"] == ["hub.listen", "hub.replay_size"]
    assert site.hub.all_drivers() == drivers
    assert site.hub.address is not None and site.hub.address[1] != 9
    # Measured against what the hub runs, not against the file it read last: the same
    # file again still needs the restart, and a room it adds keeps the running ring size.
    config["rooms"]["annex"] = {"devices": {}}
    outcome = await site.reload_config(config)
    assert outcome.answer()["result"]["restart_needed"] == ["hub.listen", "hub.replay_size"]
    assert site.hub.rooms["annex"].store._ring.size == site.hub.rooms["lobby"].store._ring.size
    assert site.hub.rooms["lobby"].store._ring.size != 5
    # ... and the values it runs, put back, need none.
    outcome = await site.reload({"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}})
    assert outcome.answer()["result"]["restart_needed"] == []


async def test_a_reload_does_not_run_triggers_on_what_it_restarts_or_rearms(site: Site) -> None:
    """A trigger runs on a change it sees: a device restarted by a reload keeps showing its
    state until read again (it did not change), and triggers a reload gives a room start
    from what they find."""
    await quiet(site)
    rooms: Rooms = {"lobby": {"proj": site.port(0)}, "hall": {"left": site.port(1)}}
    runs: list[str] = []
    store = site.hub.rooms["lobby"].store
    store.subscribe(
        lambda c: (
            runs.append(c.state["running"])
            if c.device == "room" and c.state.get("running")
            else None
        )
    )
    config = with_macros(deployment(rooms), "lobby", {"note": {"steps": [{"wait": 0}]}})
    config["rooms"]["lobby"]["triggers"] = [{"when": "proj.power == on", "run": "note"}]
    await site.reload_config(config)
    site.sims[0].press_power(True)  # a change the trigger sees
    await until(lambda: runs == ["note"], message="the trigger ran")
    await until(lambda: store.devices["proj"].state.get("power") == "on")

    config["rooms"]["lobby"]["devices"]["proj"]["poll_interval"] = 0.7  # restarts it
    outcome = await site.reload_config(config)
    assert outcome.answer()["result"]["devices"]["restarted"] == ["lobby/proj"]
    state = store.devices["proj"].state
    assert (state["online"], state["offline_reason"], state["power"]) == (False, "starting", "on")
    await until(lambda: site.driver("lobby", "proj").online, message="back")
    await site.reload_config(deployment(rooms))  # no macros: the room device goes
    await site.reload_config(config)  # and comes back, its trigger holding already
    driver = site.driver("lobby", "proj")
    polled = driver.stats.requests
    await until(lambda: driver.stats.requests > polled + 3, message="polled again")
    assert runs == ["note"]
