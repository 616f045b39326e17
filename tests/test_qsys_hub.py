"""Q-SYS end to end: simulator → driver → hub → a real Socket.IO panel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.config import Config, load_config, load_config_text
from hub.simulate import Simulators
from simulators.qsys import QsysKnobs, QsysSimulator
from tests.conftest import until
from tests.panel import Panel

REPO = Path(__file__).resolve().parent.parent

DEVICE = """\
rooms:
  boardroom:
    devices:
      core:
        driver: qsys
        transport: tcp://127.0.0.1:{port}
        autopoll_rate: 50ms
        poll_interval: 60s
        timeout: 500ms
        reconnect_min: 50ms
        reconnect_max: 200ms
        controls:
          program: {{level: MainGain, mute: MainMute}}
          mic1: {{component: "Mic 1", level: gain, mute: mute}}
"""


class Site:
    """A running hub with panels; stopped with everything it started."""

    def __init__(self) -> None:
        self.hubs: list[Hub] = []
        self.panels: list[Panel] = []
        self.sims: list[QsysSimulator] = []
        self.simulators = Simulators()

    async def sim(self, **knobs: Any) -> QsysSimulator:
        sim = QsysSimulator(QsysKnobs.model_validate(knobs))
        await sim.start()
        self.sims.append(sim)
        return sim

    async def hub(self, config: Config) -> Hub:
        hub = Hub(config)
        self.hubs.append(hub)
        await hub.start("127.0.0.1", 0)
        return hub

    async def panel(self, hub: Hub, room: str = "boardroom") -> Panel:
        assert hub.address is not None
        panel = Panel(f"http://{hub.address[0]}:{hub.address[1]}", room)
        self.panels.append(panel)
        await panel.connect()
        await until(lambda: panel.in_sync, message="panel snapshot")
        return panel


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    yield s
    for panel in s.panels:
        await panel.disconnect()
    for hub in s.hubs:
        await hub.stop()
    for sim in s.sims:
        await sim.stop()
    await s.simulators.stop()


def levels(panel: Panel, device: str = "core") -> Callable[[], dict[str, float]]:
    return lambda: panel.state(device).get("levels") or {}


async def core_site(site: Site, **knobs: Any) -> tuple[QsysSimulator, Hub, Panel]:
    sim = await site.sim(**knobs)
    hub = await site.hub(load_config_text(DEVICE.format(port=sim.port)))
    panel = await site.panel(hub)
    await until(lambda: panel.state("core")["online"], message="core online")
    assert levels(panel)() == {"program": -12.0, "mic1": 0.0}
    return sim, hub, panel


async def test_front_panel_change_reaches_the_panel_as_a_change_event(site: Site) -> None:
    sim, _, panel = await core_site(site)
    sim.set_component_control("Mic 1", "gain", -14.5)
    await until(lambda: levels(panel)().get("mic1") == -14.5)
    change = [c for c in panel.received if "levels" in c["state"]][-1]
    assert change["device"] == "core" and change["state"]["levels"]["mic1"] == -14.5
    assert sim.received["Control.Get"] == sim.received["Component.Get"] == 0  # pushed


async def test_change_group_is_recreated_after_the_core_comes_back(site: Site) -> None:
    sim, hub, panel = await core_site(site)
    port = sim.port
    await sim.stop()  # the Core reboots: the connection and its change group are gone
    await asyncio.sleep(0.2)
    await sim.start("127.0.0.1", port)
    driver = hub.drivers["boardroom"]["core"]
    await until(lambda: sim.change_groups == 1 and driver.online, timeout=5)
    sim.set_control("MainMute", True)
    await until(lambda: panel.state("core")["mutes"]["program"] is True)
    assert sim.connections == 2


async def test_slider_storm_is_coalesced_and_ends_at_the_last_value(site: Site) -> None:
    sim, hub, panel = await core_site(site, reply_delay=0.02)
    sets = sim.received["Control.Set"]
    values = [round(-60 + i * 0.5, 2) for i in range(100)]
    acks = []
    for value in values:  # 100 moves within a second, as a finger on a fader
        acks.append(
            asyncio.create_task(panel.command("core", "set_level", control="program", level=value))
        )
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*acks)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    received = sim.received["Control.Set"] - sets
    assert received <= 40, received  # paced by the Core's answers, coalesced in the queue
    assert sim.value("MainGain") == values[-1]
    room_state = hub.rooms["boardroom"].snapshot()["devices"]["core"]["state"]
    assert room_state["levels"]["program"] == values[-1]
    await until(lambda: levels(panel)().get("program") == values[-1])


async def test_simulate_builds_the_core_from_the_device_config(site: Site) -> None:
    text = DEVICE.format(port=1710).replace(
        "        controls:\n", "        user: tech\n        password: '1234'\n        controls:\n"
    )
    config = await site.simulators.start_for(load_config_text(text))
    sim = site.simulators.running[0]
    assert isinstance(sim, QsysSimulator) and sim.knobs.password == "1234"
    hub = await site.hub(config)
    panel = await site.panel(hub)
    await until(lambda: levels(panel)() == {"program": 0.0, "mic1": 0.0})
    ack = await panel.command("core", "set_mute", control="mic1", mute=True)
    assert ack == {"ok": True, "result": None}
    assert sim.value("mute", "Mic 1") is True


async def test_demo_building_has_a_working_qsys_core(site: Site) -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    cores = [
        (room_id, device_id)
        for room_id, room in config.rooms.items()
        for device_id, device in room.devices.items()
        if device.driver == "qsys"
    ]
    assert cores
    hub = await site.hub(await site.simulators.start_for(config))
    room_id, device_id = cores[0]
    panel = await site.panel(hub, room_id)
    await until(lambda: panel.state(device_id).get("levels"), timeout=5)
    assert set(panel.state(device_id)["mutes"]) == set(panel.state(device_id)["levels"])
    ack = await panel.command(device_id, "recall_preset", preset="meeting")
    assert ack["ok"], ack
