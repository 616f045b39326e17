"""The demo building's PTZ camera, end to end: demo.yaml --simulate, hub, a real panel."""

from __future__ import annotations

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import load_config
from hub.simulate import Simulators
from simulators.visca import ViscaSimulator
from tests.helpers import until
from tests.panel import Panel


async def test_demo_camera_moves_from_a_panel() -> None:
    config = load_config(demo_config_path())
    camera = config.rooms["boardroom"].devices["camera"]
    assert camera.driver == "visca" and camera.transport.scheme == "udp"
    sims = Simulators()
    config = await sims.start_for(config)
    hub = Hub(config)
    panel = Panel("", "boardroom")
    try:
        host, port = await hub.start("127.0.0.1", 0)
        panel.url = f"http://{host}:{port}"
        await panel.connect()
        await until(lambda: panel.devices and panel.state("camera").get("power") == "on")
        assert {"pan_tilt", "zoom", "stop", "recall_preset"} <= set(
            panel.devices["camera"]["actions"]
        )
        [sim] = [s for s in sims.running if isinstance(s, ViscaSimulator)]
        ack = await panel.command("camera", "pan_tilt", pan=20, tilt=10)
        assert ack == {"ok": True, "result": None}
        await until(lambda: sim.pan > 50)
        assert (await panel.command("camera", "stop"))["ok"]
        assert not sim.moving
        await until(lambda: panel.state("camera").get("pan") == sim.pan, message="pan read back")
        ack = await panel.command("camera", "recall_preset", preset=99)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_args"
    finally:
        await panel.disconnect()
        await hub.stop()
        await sims.stop()
