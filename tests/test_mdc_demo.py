"""The demo building's Samsung displays, end to end: simulator, hub, a Socket.IO panel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import Config, load_config
from hub.simulate import Simulators
from tests.helpers import until
from tests.panel import Panel

DEMO = load_config(demo_config_path())
DISPLAYS = [
    (room_id, device_id, str(device.transport).split(":", 1)[0])
    for room_id, room in DEMO.rooms.items()
    for device_id, device in room.devices.items()
    if device.driver == "samsung_mdc"
]


def test_demo_has_displays_on_lan_and_rs232() -> None:
    assert {scheme for _, _, scheme in DISPLAYS} == {"tcp", "serial"}


def only(config: Config, room_id: str, device_id: str) -> Config:
    """The config cut down to one display, which boots at once."""
    room = config.rooms[room_id]
    device = room.devices[device_id]
    fast = device.model_copy(
        update={"warmup": 0.0, "simulator": {**(device.simulator or {}), "boot_delay": 0}}
    )
    room = room.model_copy(update={"devices": {device_id: fast}})
    return config.model_copy(update={"rooms": {room_id: room}})


@pytest.fixture(params=DISPLAYS, ids=[f"{room}/{device}" for room, device, _ in DISPLAYS])
async def demo(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Panel, str, list[str]]]:
    room_id, device_id, _ = request.param
    sims = Simulators()
    hub = Hub(await sims.start_for(only(DEMO, room_id, device_id)))
    host, port = await hub.start("127.0.0.1", 0)
    panel = Panel(f"http://{host}:{port}", room_id)
    inputs = list(DEMO.rooms[room_id].devices[device_id].inputs.values())  # type: ignore[attr-defined]
    try:
        await panel.connect()
        yield panel, device_id, inputs
    finally:
        await panel.disconnect()
        await hub.stop()
        await sims.stop()


async def test_demo_display_is_controllable_from_a_panel(
    demo: tuple[Panel, str, list[str]],
) -> None:
    panel, display, inputs = demo
    await until(lambda: panel.state(display).get("online") is True, message="display online")
    assert panel.devices[display]["driver"] == "samsung_mdc"
    assert panel.state(display)["inputs"] == inputs
    ack = await panel.command(display, "select_input", input=inputs[-1])  # display is off
    assert ack["ok"] is False and ack["error"]["code"] == "device_error"
    assert (await panel.command(display, "power_on"))["ok"] is True
    assert (await panel.command(display, "select_input", input=inputs[-1]))["ok"] is True
    assert (await panel.command(display, "set_level", control="volume", level=35))["ok"] is True
    await until(lambda: panel.state(display).get("levels") == {"volume": 35})
    state = panel.state(display)
    assert state["power"] == "on" and state["input"] == inputs[-1]
