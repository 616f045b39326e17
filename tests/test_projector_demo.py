"""The demo building's Sony and Epson projectors, end to end: demo.yaml under `--simulate`'s
generic simulator start-up, a hub, and a Socket.IO panel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.app import Hub
from hub.config import Config
from hub.simulate import Simulators
from simulators.sony_adcp import SonyAdcpSimulator
from tests.helpers import fast_config, load_demo, until
from tests.panel import Panel

DEMO = load_demo()
PROJECTORS = [
    (room_id, device_id)
    for room_id, room in DEMO.rooms.items()
    for device_id, device in room.devices.items()
    if device.driver in ("sony_adcp", "epson_escvp")
]


def test_demo_has_a_sony_on_the_lan_and_an_epson_on_rs232() -> None:
    kinds = {
        (DEMO.rooms[room].devices[device].driver, DEMO.rooms[room].devices[device].transport.scheme)
        for room, device in PROJECTORS
    }
    assert kinds == {("sony_adcp", "tcp"), ("epson_escvp", "serial")}


def only(room_id: str, device_id: str) -> Config:
    """The demo cut down to one projector (no macros, which name the others), polled fast."""
    room = DEMO.rooms[room_id]
    devices = {device_id: room.devices[device_id]}
    room = room.model_copy(
        update={"devices": devices, "macros": {}, "schedules": [], "triggers": []}
    )
    return fast_config(DEMO.model_copy(update={"rooms": {room_id: room}}))


@pytest.fixture(params=PROJECTORS, ids=[f"{room}/{device}" for room, device in PROJECTORS])
async def demo_projector(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Panel, str, Simulators]]:
    room_id, device_id = request.param
    sims = Simulators()
    hub = Hub(await sims.start_for(only(room_id, device_id)))
    host, port = await hub.start("127.0.0.1", 0)
    panel = Panel(f"http://{host}:{port}", room_id)
    try:
        await panel.connect()
        yield panel, device_id, sims
    finally:
        await panel.disconnect()
        await hub.stop()
        await sims.stop()


async def test_demo_projector_is_controllable_from_a_panel(
    demo_projector: tuple[Panel, str, Simulators],
) -> None:
    panel, projector, sims = demo_projector
    await until(
        lambda: panel.in_sync and panel.state(projector).get("online") is True,
        message="projector online",
    )
    sim = sims.running[0]
    if isinstance(sim, SonyAdcpSimulator):  # logged in with the demo's password
        assert sim.knobs.password == "Projector"
    inputs = panel.state(projector)["inputs"]
    assert set(panel.devices[projector]["actions"]) >= {
        "power_on",
        "power_off",
        "select_input",
        "set_video_mute",
    }
    assert (await panel.command(projector, "power_on"))["ok"] is True
    await until(lambda: panel.state(projector).get("power") == "on", message="on")
    assert (await panel.command(projector, "select_input", input=inputs[-1]))["ok"] is True
    assert (await panel.command(projector, "set_video_mute", mute=True))["ok"] is True
    await until(lambda: panel.state(projector).get("video_mute") is True)
    state = panel.state(projector)
    assert state["input"] == inputs[-1] and isinstance(state["lamp_hours"], int)
    assert (await panel.command(projector, "power_off"))["ok"] is True
    await until(lambda: panel.state(projector).get("power") in ("cooling", "off"))
