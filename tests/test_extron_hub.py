"""Extron switcher end to end: simulator → driver → hub → Socket.IO panel, and `--simulate`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.config import load_config, simulator_options
from hub.simulate import Simulators
from simulators.extron_sis import ExtronSimulator
from tests.helpers import SimulatorStarter, hub_config, until
from tests.panel import Panel

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"


def studio_config(port: int, password: str) -> dict[str, Any]:
    matrix = {
        "driver": "extron_sis",
        "transport": f"tcp://127.0.0.1:{port}",
        "password": password,
        "poll_interval": 60,
        "prompt_wait": 0.05,
        "volume": True,
        "audio_mute": True,
    }
    return {"rooms": {"studio": {"devices": {"matrix": matrix}}}}


@pytest.fixture
async def switcher(simulators: SimulatorStarter) -> ExtronSimulator:
    return await simulators(ExtronSimulator, inputs=8, outputs=4, password="sis")


@pytest.fixture
def studio(
    switcher: ExtronSimulator, hub_factory: Callable[..., Awaitable[Hub]]
) -> Callable[..., Awaitable[Hub]]:
    """Start a hub whose studio room has the switcher, configured with `password`."""

    async def start(password: str = "sis") -> Hub:
        return await hub_factory(studio_config(switcher.port, password))

    return start


async def caught_up(hub: Hub, panels: Callable[..., Panel]) -> Panel:
    panel: Panel = panels(hub, "studio")
    await panel.connect()
    await until(lambda: panel.in_sync and panel.state("matrix").get("online") is True)
    await until(lambda: len(panel.state("matrix").get("mutes") or {}) == 4)
    return panel


async def test_front_panel_tie_reaches_a_panel_as_a_change(
    switcher: ExtronSimulator,
    studio: Callable[..., Awaitable[Hub]],
    panels: Callable[..., Panel],
) -> None:
    hub = await studio()
    panel = await caught_up(hub, panels)
    assert panel.state("matrix")["routes"] == {"1": 1, "2": 2, "3": 3, "4": 4}
    seen = len(panel.received)
    switcher.press_tie(6, 3)  # no poll for 60 s: only the verbose-mode push can bring it
    await until(lambda: panel.state("matrix")["routes"]["3"] == 6)
    changes = [c for c in panel.received[seen:] if c["device"] == "matrix"]
    assert any(c["state"].get("routes", {}).get("3") == 6 for c in changes)
    switcher.set_volume(2, 44)
    await until(lambda: panel.state("matrix")["levels"]["2"] == -20)
    assert panel.violations == [] and panel.deliveries.errors == []


async def test_panel_commands_and_their_errors(
    switcher: ExtronSimulator,
    studio: Callable[..., Awaitable[Hub]],
    panels: Callable[..., Panel],
) -> None:
    hub = await studio()
    panel = await caught_up(hub, panels)
    actions = panel.snapshot["devices"]["matrix"]["actions"] if panel.snapshot else {}
    assert {"route", "set_level", "set_mute", "recall_preset"} <= set(actions)
    assert panel.state("matrix")["unavailable_actions"] == ["set_video_mute"]  # video_mute off
    ack = await panel.command("matrix", "route", input=5, output=1)
    assert ack == {"ok": True, "result": None}
    assert panel.state("matrix")["routes"]["1"] == 5  # the change came before the ack
    assert switcher.video_ties[1] == 5
    ack = await panel.command("matrix", "set_mute", control="2", mute=True)
    assert ack["ok"] and switcher.audio_mutes[2]
    ack = await panel.command("matrix", "recall_preset", preset=4)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_args"
    assert "E11" in ack["error"]["message"]
    ack = await panel.command("matrix", "set_video_mute", mute=True)
    assert ack["error"]["code"] == "unknown_action"


async def test_wrong_password_shows_as_auth_failed_on_the_panel(
    studio: Callable[..., Awaitable[Hub]], panels: Callable[..., Panel]
) -> None:
    hub = await studio(password="nope")
    panel: Panel = panels(hub, "studio")
    await panel.connect()
    await until(lambda: panel.in_sync and panel.state("matrix")["offline_reason"] == "auth_failed")
    assert panel.state("matrix")["online"] is False


def test_simulate_gives_the_switcher_the_device_password_and_size() -> None:
    config = hub_config(studio_config(23, "sis"))
    device = config.rooms["studio"].devices["matrix"]
    options = simulator_options(device)
    assert options["password"] == "sis"
    assert options["volume"] is True and options["video_mute"] is False
    sized = device.model_copy(update={"inputs": 12, "outputs": 6})
    assert {"inputs": 12, "outputs": 6}.items() <= simulator_options(sized).items()


async def test_demo_switcher_runs_under_simulate() -> None:
    config = load_config(DEMO, {})
    switchers = {
        f"{room_id}/{device_id}": device
        for room_id, room in config.rooms.items()
        for device_id, device in room.devices.items()
        if device.driver == "extron_sis"
    }
    assert switchers, "the demo building has an Extron switcher"
    sims = Simulators()
    try:
        simulated = await sims.start_for(config)
        hub = Hub(simulated)
        await hub.start("127.0.0.1", 0)
        try:
            drivers = [hub.rooms[key.split("/")[0]].drivers[key.split("/")[1]] for key in switchers]
            await until(lambda: all(d.online and "routes" in d.state for d in drivers), timeout=10)
            for key, driver in zip(switchers, drivers, strict=True):
                size = driver.state["size"]
                assert len(driver.state["routes"]) == size["outputs"]
                if switchers[key].transport.scheme == "serial":  # served on a pty
                    assert driver.config.transport.path.startswith("/dev/pts/")
                else:
                    assert driver.state.get("login") == "administrator"
            assert any(s.transport.scheme == "serial" for s in switchers.values())
        finally:
            await hub.stop()
    finally:
        await sims.stop()
