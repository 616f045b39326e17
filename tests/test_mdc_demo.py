"""The demo building's Samsung display, end to end: simulator, hub, a Socket.IO panel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import Config, load_config
from hub.simulate import Simulators
from tests.conftest import until
from tests.panel import Panel


def display_room(config: Config) -> tuple[str, str]:
    """The (room, device) of the demo's Samsung display."""
    for room_id, room in config.rooms.items():
        for device_id, device in room.devices.items():
            if device.driver == "samsung_mdc":
                return room_id, device_id
    raise AssertionError("config/demo.yaml has no samsung_mdc display")


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Panel, str]]:
    config = load_config(demo_config_path())
    room_id, device_id = display_room(config)
    room = config.rooms[room_id]
    device = room.devices[device_id]
    fast = device.model_copy(
        update={"warmup": 0.0, "simulator": {**(device.simulator or {}), "boot_delay": 0}}
    )
    room = room.model_copy(update={"devices": {device_id: fast}})
    config = config.model_copy(update={"rooms": {room_id: room}})
    sims = Simulators()
    hub = Hub(await sims.start_for(config))
    host, port = await hub.start("127.0.0.1", 0)
    panel = Panel(f"http://{host}:{port}", room_id)
    try:
        await panel.connect()
        yield panel, device_id
    finally:
        await panel.disconnect()
        await hub.stop()
        await sims.stop()


async def test_demo_display_is_controllable_from_a_panel(demo: tuple[Panel, str]) -> None:
    panel, display = demo
    await until(lambda: panel.state(display).get("online") is True, message="display online")
    assert panel.devices[display]["driver"] == "samsung_mdc"
    state = panel.state(display)
    assert state["inputs"] == ["Table HDMI", "Room PC", "Wireless"]
    ack = await panel.command(display, "select_input", input="Wireless")  # display is off
    assert ack["ok"] is False and ack["error"]["code"] == "device_error"
    assert (await panel.command(display, "power_on"))["ok"] is True
    assert (await panel.command(display, "select_input", input="Wireless"))["ok"] is True
    assert (await panel.command(display, "set_level", control="volume", level=35))["ok"] is True
    await until(lambda: panel.state(display).get("levels") == {"volume": 35})
    state = panel.state(display)
    assert state["power"] == "on" and state["input"] == "Wireless"
