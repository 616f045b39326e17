"""Macros, schedules and triggers in a cluster: the `room` device runs on exactly one hub.

In-process hubs share one ManualClock (schedules fire when the test says); the trigger
test runs real `avhub run` processes and kills the room device's owner.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.app import Hub
from hub.automation.clock import ManualClock
from hub.cluster.ownership import assign
from hub.cluster.scripts import RoomKeys
from hub.store import Change
from simulators.pjlink import PjlinkSimulator
from tests.cluster import (
    HubStarter,
    RedisServer,
    cluster_config,
    hub_processes,
    node_ids,
    node_pair,
    owners,
    redis_server,
)
from tests.helpers import hub_config, until
from tests.panel import Panel

__all__ = ["hub_processes", "redis_server"]  # fixtures

LAB = RoomKeys.of("lab")
DEVICES = ("proj0", "room")
TOOK = re.compile(r"owns \d+ devices \(took [1-9]")
NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC).timestamp()
MARK = {"mark": {"steps": [{"wait": 0}]}}
SCHEDULED = {"macros": MARK, "schedules": [{"at": "12:00", "run": "mark"}]}
TRIGGERED = {"macros": MARK, "triggers": [{"when": "proj0.power == on", "run": "mark"}]}
MACRO = {
    "macros": {
        "on": {
            "steps": [
                {"device": "proj0", "action": "power_on"},
                {"wait_until": "proj0.power == on", "timeout": 30},
            ]
        },
        "slow": {"steps": [{"wait": "1h"}]},
    }
}


class ClockedHubs:
    """In-process hubs on one ManualClock; every one still running is stopped after the test."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.running: list[Hub] = []

    async def start(self, config: dict[str, Any]) -> Hub:
        hub = Hub(hub_config(config), clock=self.clock)
        self.running.append(hub)
        await hub.start("127.0.0.1", 0)
        return hub

    async def stop(self, hub: Hub) -> None:
        self.running.remove(hub)
        await hub.stop()


@pytest.fixture
async def clocked() -> AsyncIterator[ClockedHubs]:
    hubs = ClockedHubs(ManualClock(NOON - 60))
    yield hubs
    for hub in list(hubs.running):
        await hubs.stop(hub)


def owns(hub: Hub, device: str) -> bool:
    assert hub.cluster is not None
    return hub.cluster.ownership.owns("lab", device)


def planned(nodes: list[str]) -> dict[str, str]:
    """Device → the node the plan gives it, for the room's two devices on `nodes`."""
    plan = assign([LAB.lease(d) for d in DEVICES], nodes)
    return {d: plan[LAB.lease(d)] for d in DEVICES}


def settled(hubs: list[Hub], devices: tuple[str, ...] = DEVICES) -> bool:
    """Every hub sees every other, and each of `devices` is held by the hub the plan names."""
    nodes = sorted(hub.cluster.node_id for hub in hubs if hub.cluster is not None)
    if any(hub.cluster is None or hub.cluster.ownership.live != nodes for hub in hubs):
        return False
    plan = planned(nodes)
    return all(
        [hub for hub in hubs if owns(hub, d)]
        == [hub for hub in hubs if hub.cluster is not None and hub.cluster.node_id == plan[d]]
        for d in devices
    )


def room_owner(hubs: list[Hub]) -> Hub:
    (owner,) = [hub for hub in hubs if owns(hub, "room")]
    return owner


class Runs:
    """Macro starts the `room` device committed, as a hub's mirror of the room receives them."""

    def __init__(self, hub: Hub) -> None:
        self.seen: list[tuple[str, str]] = []
        hub.rooms["lab"].store.subscribe(self._change)

    def _change(self, change: Change) -> None:
        if change.device == "room" and change.state.get("running"):
            self.seen.append((change.state["running"], change.state["by"]))


def fired(caplog: pytest.LogCaptureFixture, what: str) -> int:
    return sum(r.getMessage().startswith(what) for r in caplog.records)


async def test_a_schedule_fires_once_on_three_hubs_and_on_the_next_owner_after_its_owner_left(
    redis_server: RedisServer,
    pjlink_sims: Any,
    clocked: ClockedHubs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="avhub.automation")
    sim: PjlinkSimulator = await pjlink_sims(power="on")
    config = cluster_config(redis_server.url, [sim.port], ttl=1, room=SCHEDULED, timezone="UTC")
    hubs = [await clocked.start(config) for _ in range(3)]
    await until(lambda: settled(hubs), timeout=10, message="one owner per device")
    owner = room_owner(hubs)
    watcher = next(hub for hub in hubs if hub is not owner)
    runs = Runs(watcher)
    room = watcher.rooms["lab"].store.devices["room"].state
    await until(lambda: room.get("next_schedule") is not None, message="the schedule armed")
    assert clocked.clock.pending() == [NOON]  # one timer in the cluster, not one per hub

    await clocked.clock.advance(60)
    await until(lambda: (room.get("last_run") or {}).get("ok"), message="the run to end")
    assert runs.seen == [("mark", "schedule")]
    assert fired(caplog, "schedule: mark at") == 1
    assert room["last_schedule"]["ok"] is True

    await clocked.stop(owner)  # its lease is handed back: another hub arms the schedule
    hubs.remove(owner)
    await until(lambda: settled(hubs), timeout=10, message="the room device taken over")
    await until(lambda: clocked.clock.pending() == [NOON + 86400], message="armed for tomorrow")
    await clocked.clock.advance(86400)
    await until(lambda: len(runs.seen) == 2, message="the second day's run")
    assert runs.seen == [("mark", "schedule")] * 2
    assert fired(caplog, "schedule: mark at") == 2


async def test_a_macro_started_through_a_hub_that_owns_nothing_runs_once_on_its_owner(
    redis_server: RedisServer, pjlink_sims: Any, clocked: ClockedHubs
) -> None:
    sim: PjlinkSimulator = await pjlink_sims(power="off")
    config = cluster_config(redis_server.url, [sim.port], ttl=1, room=MACRO)
    hubs = [await clocked.start(config) for _ in range(3)]
    await until(lambda: settled(hubs), timeout=10, message="one owner per device")
    # Two devices on three hubs: the room device, the projector and the panel's hub differ.
    (idle,) = [hub for hub in hubs if not owns(hub, "proj0") and not owns(hub, "room")]
    runs = Runs(idle)
    assert idle.address is not None
    panel = Panel(f"http://127.0.0.1:{idle.address[1]}", "lab")
    await panel.connect()
    try:
        await until(lambda: panel.in_sync, message="panel in sync")
        ack = await panel.command("room", "on", timeout=30)
    finally:
        await panel.disconnect()
    assert ack["ok"] is True, ack
    steps = ack["result"]["steps"]
    assert [(s["step"], s["ok"]) for s in steps] == [("1", True), ("2", True)]
    assert sim.power == "on"
    assert runs.seen == [("on", "command")]  # one run, committed by the room device's owner
    state = idle.rooms["lab"].store.devices["room"].state
    await until(lambda: state.get("last_run") is not None, message="the run recorded")
    assert state["last_run"]["ok"] is True and state["running"] is None


async def test_a_room_device_running_a_macro_moves_to_a_joining_hub_when_the_macro_ends(
    redis_server: RedisServer, pjlink_sims: Any, clocked: ClockedHubs
) -> None:
    sim: PjlinkSimulator = await pjlink_sims(power="on")
    keys = [LAB.lease(d) for d in DEVICES]
    first_id, second_id = node_pair(keys, LAB.lease("room"), 1)

    def config(node_id: str) -> dict[str, Any]:
        return cluster_config(redis_server.url, [sim.port], ttl=1, room=MACRO, node_id=node_id)

    first = await clocked.start(config(first_id))
    await until(lambda: settled([first]), timeout=10, message="the first hub owns both")
    assert first.address is not None
    panel = Panel(f"http://127.0.0.1:{first.address[1]}", "lab")
    await panel.connect()
    try:
        await until(lambda: panel.in_sync, message="panel in sync")
        run = asyncio.create_task(panel.command("room", "slow", timeout=30))
        state = first.rooms["lab"].store.devices["room"].state
        await until(lambda: state.get("running") == "slow", message="the macro running")
        second = await clocked.start(config(second_id))  # the plan gives it the room device
        assert first.cluster is not None
        await until(lambda: len(first.cluster.ownership.live) == 2, message="both hubs live")
        await until(lambda: settled([first, second], ("proj0",)), message="proj0 stays")
        assert owns(first, "room") and not run.done()  # not handed over mid-run
        await clocked.clock.advance(3600)
        ack = await run
    finally:
        await panel.disconnect()
    assert ack["ok"] is True, ack  # it ran to its end, not cancelled by the move
    await until(lambda: owns(second, "room"), timeout=5, message="the move once idle")
    assert not owns(first, "room")


async def test_a_trigger_fires_once_on_three_hubs_and_not_again_when_its_owner_dies(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    sim: PjlinkSimulator = await pjlink_sims(power="off")
    config = cluster_config(redis_server.url, [sim.port], room=TRIGGERED)
    hubs = await hub_processes(config, 3)
    redis = redis_server.client()
    nodes = await node_ids(hubs)

    async def owned() -> bool:  # as planned: no hand-over is still to come
        return await owners(redis, "lab", list(DEVICES)) == planned(sorted(nodes))

    await until(owned, timeout=15, message="both devices owned as planned")
    line = re.compile(r"trigger: proj0\.power == on held; running mark")

    def fires() -> int:
        return sum(len(line.findall(hub.log())) for hub in hubs)

    async def last_trigger(hub: Any) -> Any:
        return (await hub.snapshot("lab"))["devices"]["room"]["state"]["last_trigger"]

    sim.press_power(True)
    await until(lambda: fires() == 1, timeout=10, message="the trigger to fire")
    first = hubs[0]
    await until(lambda: last_trigger(first), timeout=10, message="the run recorded")
    before = await last_trigger(first)
    assert before["ok"] is True

    (holder,) = (await owners(redis, "lab", ["room"])).values()
    dying = nodes[str(holder)]
    survivors = [hub for hub in hubs if hub is not dying]
    took = {hub.name: len(TOOK.findall(hub.log())) for hub in survivors}
    await dying.kill()  # the condition still holds when another hub takes the room over

    async def taken_over() -> bool:  # and nothing else to move between the survivors
        left = sorted(node for node in nodes if node != holder)
        return await owners(redis, "lab", list(DEVICES)) == planned(left)

    await until(taken_over, timeout=15, message="the room device taken over")
    (new_holder,) = (await owners(redis, "lab", ["room"])).values()
    heir = nodes[str(new_holder)]
    await until(
        lambda: len(TOOK.findall(heir.log())) > took[heir.name],
        timeout=5,
        message="the heir to start it",
    )
    await heir.health()  # a round trip: anything the takeover queued has run
    assert fires() == 1
    assert await last_trigger(survivors[0]) == before

    sim.press_power(False)  # the next time it comes true, the new owner fires it

    async def off() -> bool:
        snapshot = await survivors[0].snapshot("lab")
        return bool(snapshot["devices"]["proj0"]["state"].get("power") == "off")

    await until(off, timeout=10, message="power off seen")
    sim.press_power(True)
    await until(lambda: fires() == 2, timeout=10, message="the trigger to fire again")
    assert len(line.findall(heir.log())) == 1
    await redis.aclose()
