"""Tesira through a whole hub: pushed changes reach panels, slider storms stay cheap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from hub.app import Hub
from simulators.tesira import TesiraSimulator
from tests.helpers import SimulatorStarter, until
from tests.panel import Panel


def hall(port: int) -> dict[str, Any]:
    dsp = {
        "driver": "tesira",
        "transport": f"tcp://127.0.0.1:{port}",
        "poll_interval": 60,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "controls": {
            "program": {"tag": "Level1", "channel": 1},
            "mic1": {"tag": "Level1", "channel": 2},
            "gate": {"tag": "Mute1", "type": "mute"},
        },
    }
    return {"rooms": {"hall": {"devices": {"dsp": dsp}}}}


@dataclass
class Site:
    sim: TesiraSimulator
    hub: Hub
    panel: Panel

    def level(self, control: str) -> Any:
        return self.panel.state("dsp")["levels"][control]


@pytest.fixture
async def site(hub_factory: Any, panels: Any, simulators: SimulatorStarter) -> Site:
    blocks = {"Level1": {"channels": 2}, "Mute1": {"type": "mute"}}
    sim = await simulators(TesiraSimulator, blocks=blocks)
    hub = await hub_factory(hall(sim.port))
    panel = panels(hub, "hall")
    await panel.connect()
    await until(lambda: panel.in_sync and panel.state("dsp")["online"], message="dsp online")
    await until(lambda: sim.subscriptions() == 5, message="subscribed")
    return Site(sim, hub, panel)


async def test_front_panel_changes_reach_the_panel_as_change_events(site: Site) -> None:
    snapshot = site.panel.snapshot
    assert snapshot is not None
    actions = snapshot["devices"]["dsp"]["actions"]
    assert {"set_level", "set_mute", "step_level"} <= set(actions)
    await until(lambda: site.level("program") == 0.0)
    site.sim.set_level("Level1", 1, -24)
    site.sim.set_mute("Mute1", 1, True)
    await until(lambda: site.level("program") == -24.0)
    await until(lambda: site.panel.state("dsp")["mutes"]["gate"] is True)
    pushed = [c for c in site.panel.received if c["device"] == "dsp" and "levels" in c["state"]]
    assert pushed[-1]["state"]["levels"]["program"] == -24.0


async def test_panel_commands_and_errors(site: Site) -> None:
    ack = await site.panel.command("dsp", "set_level", control="mic1", level=-6)
    assert ack == {"ok": True, "result": None}
    assert site.sim.level("Level1", 2) == -6.0
    await until(lambda: site.level("mic1") == -6.0)
    ack = await site.panel.command("dsp", "set_level", control="mic1", level=99)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_args"
    assert "Value out of range" in ack["error"]["message"]


async def test_slider_storm_is_coalesced_and_ends_on_the_last_value(site: Site) -> None:
    site.sim.knobs.reply_delay = 0.002
    before = site.sim.received["Level1 set level"]
    values = [round(-60 + i * 0.5, 1) for i in range(100)]
    acks = []
    for value in values:  # 100 moves within one second, like a finger on a fader
        acks.append(
            asyncio.create_task(
                site.panel.command("dsp", "set_level", control="program", level=value)
            )
        )
        await asyncio.sleep(0.009)
    results = await asyncio.gather(*acks)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    sets = site.sim.received["Level1 set level"] - before
    assert sets <= 40, sets  # paced by command_delay (20 ms default) and coalesced
    assert site.sim.level("Level1", 1) == values[-1]
    assert site.hub.rooms["hall"].drivers["dsp"].state["levels"]["program"] == values[-1]
    await until(lambda: site.level("program") == values[-1])
