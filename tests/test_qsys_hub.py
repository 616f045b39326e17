"""Q-SYS end to end: simulator → driver → hub → a real Socket.IO panel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import Config, load_config
from hub.simulate import Simulators
from simulators.qsys import QsysSimulator
from tests.helpers import SimulatorStarter, hub_config, until
from tests.panel import Panel


def boardroom(port: int, **settings: Any) -> dict[str, Any]:
    """A room with a Q-SYS Core at `port`; `settings` add to the device's."""
    core = {
        "driver": "qsys",
        "transport": f"tcp://127.0.0.1:{port}",
        "autopoll_rate": 0.05,
        "poll_interval": 60,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        **settings,
        "controls": {
            "program": {"level": "MainGain", "mute": "MainMute"},
            "mic1": {"component": "Mic 1", "level": "gain", "mute": "mute"},
        },
    }
    return {"rooms": {"boardroom": {"devices": {"core": core}}}}


@pytest.fixture
def sims(simulators: SimulatorStarter) -> Callable[..., Awaitable[QsysSimulator]]:
    """Start Q-SYS simulators on loopback; stops them after the test."""
    return partial(simulators, QsysSimulator)


@pytest.fixture
async def simulated() -> AsyncIterator[Callable[..., Awaitable[tuple[Simulators, Hub]]]]:
    """`--simulate` in a test: simulators for every device of a config, and a hub on them."""
    started: list[tuple[Simulators, Hub]] = []

    async def start(config: Config) -> tuple[Simulators, Hub]:
        simulators = Simulators()
        hub = Hub(await simulators.start_for(config))
        started.append((simulators, hub))
        await hub.start("127.0.0.1", 0)
        return simulators, hub

    yield start
    for simulators, hub in started:
        await hub.stop()
        await simulators.stop()


def levels(panel: Panel, device: str = "core") -> Callable[[], dict[str, float]]:
    return lambda: panel.state(device).get("levels") or {}


async def connected(panel: Panel, device: str) -> Panel:
    await panel.connect()
    await until(lambda: panel.in_sync and panel.state(device)["online"], message="online")
    return panel


@pytest.fixture
async def core(
    sims: Any, hub_factory: Any, panels: Any
) -> Callable[..., Awaitable[tuple[QsysSimulator, Hub, Panel]]]:
    """A simulated Core, a hub driving it and a panel in its room, everything in sync."""

    async def start(**knobs: Any) -> tuple[QsysSimulator, Hub, Panel]:
        sim = await sims(**knobs)
        hub = await hub_factory(boardroom(sim.port))
        panel = await connected(panels(hub, "boardroom"), "core")
        assert levels(panel)() == {"program": -12.0, "mic1": 0.0}
        return sim, hub, panel

    return start


async def test_front_panel_change_reaches_the_panel_as_a_change_event(core: Any) -> None:
    sim, _, panel = await core()
    sim.set_component_control("Mic 1", "gain", -14.5)
    await until(lambda: levels(panel)().get("mic1") == -14.5)
    change = [c for c in panel.received if "levels" in c["state"]][-1]
    assert change["device"] == "core" and change["state"]["levels"]["mic1"] == -14.5
    assert sim.received["Control.Get"] == sim.received["Component.Get"] == 0  # pushed


async def test_change_group_is_recreated_after_the_core_comes_back(core: Any) -> None:
    sim, hub, panel = await core()
    port = sim.port
    driver = hub.rooms["boardroom"].drivers["core"]
    await sim.stop()  # the Core reboots: the connection and its change group are gone
    await until(lambda: not driver.online, message="core offline")
    await sim.start("127.0.0.1", port)
    await until(lambda: sim.change_groups == 1 and driver.online, timeout=5)
    sim.set_control("MainMute", True)
    await until(lambda: panel.state("core")["mutes"]["program"] is True)
    assert sim.connections == 2


async def test_slider_storm_is_coalesced_and_ends_at_the_last_value(core: Any) -> None:
    sim, hub, panel = await core(reply_delay=0.02)
    sets = sim.received["Control.Set"]
    values = [round(-60 + i * 0.5, 2) for i in range(100)]
    acks = []
    started = time.monotonic()
    for value in values:  # 100 moves within a second, as a finger on a fader
        acks.append(
            asyncio.create_task(panel.command("core", "set_level", control="program", level=value))
        )
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*acks)
    took = time.monotonic() - started
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    received = sim.received["Control.Set"] - sets
    # Paced by the Core's answers (20 ms each), coalesced in the queue.
    assert received <= took / 0.02 + 2, (received, took)
    assert sim.value("MainGain") == values[-1]
    room_state = hub.rooms["boardroom"].store.snapshot()["devices"]["core"]["state"]
    assert room_state["levels"]["program"] == values[-1]
    await until(lambda: levels(panel)().get("program") == values[-1])


async def test_simulate_builds_the_core_from_the_device_config(simulated: Any, panels: Any) -> None:
    config = hub_config(boardroom(1710, user="tech", password="1234"))
    simulators, hub = await simulated(config)
    [sim] = simulators.running
    assert isinstance(sim, QsysSimulator) and sim.knobs.password == "1234"
    panel = await connected(panels(hub, "boardroom"), "core")
    assert levels(panel)() == {"program": 0.0, "mic1": 0.0}
    ack = await panel.command("core", "set_mute", control="mic1", mute=True)
    assert ack == {"ok": True, "result": None}
    assert sim.value("mute", "Mic 1") is True


async def test_demo_building_has_a_working_qsys_core(simulated: Any, panels: Any) -> None:
    config = load_config(demo_config_path())
    cores = [
        (room_id, device_id)
        for room_id, room in config.rooms.items()
        for device_id, device in room.devices.items()
        if device.driver == "qsys"
    ]
    assert cores
    _, hub = await simulated(config)
    room_id, device_id = cores[0]
    panel = await connected(panels(hub, room_id), device_id)
    assert set(panel.state(device_id)["mutes"]) == set(panel.state(device_id)["levels"])
    ack = await panel.command(device_id, "recall_preset", preset="lecture")
    assert ack["ok"], ack
