"""Serial VISCA (FF-terminated, camera address, no header) over a real pty pair, and via a gateway."""

from __future__ import annotations

from drivers.errors import ErrorCode
from drivers.visca.config import ViscaConfig
from drivers.visca.driver import ViscaDriver
from simulators.visca import ViscaSimulator
from tests.helpers import until
from tests.rig import PtyRig, RigStarter, error_of
from tests.test_visca_driver import ViscaRig


class ViscaPtyRig(PtyRig[ViscaSimulator, ViscaDriver], ViscaRig):
    """The camera on a pseudo-terminal at 9600 baud; the driver on `serial://` to it."""

    query = "?baudrate=9600&bytesize=8&parity=N&stopbits=1"


class GatewayRig(ViscaRig):
    """The camera behind a serial-to-IP gateway: raw VISCA on TCP, `socket://`."""

    def transport(self) -> str:
        return f"socket://127.0.0.1:{self.sim.port}"


async def test_visca_over_a_pty(rigs: RigStarter) -> None:
    """Acceptance 2: every action over a real pty, camera address 3."""
    rig = await rigs(ViscaPtyRig, address=3, power="off")
    sim = rig.sim
    driver = await rig.online(address=3)
    assert sim.received["if_clear"] == 1  # login cleared the camera's buffers
    err = await error_of(driver.execute("zoom", {"speed": 3}))  # standby: 6y 41
    assert err.code is ErrorCode.BUSY
    await driver.execute("power_on")
    assert sim.power == "on" and driver.state["power"] == "on"
    await driver.execute("pan_tilt", {"pan": 30, "tilt": -30})  # clamped to 24 / 20
    assert sim.drive_speeds == (24, -20)
    await until(lambda: sim.pan > 100)
    await driver.execute("zoom", {"speed": 5})
    await until(lambda: sim.zoom > 500)
    await driver.execute("stop")
    assert not sim.moving
    assert (driver.state["pan"], driver.state["tilt"]) == (sim.pan, sim.tilt)
    assert driver.state["zoom_position"] == sim.zoom
    await driver.execute("store_preset", {"preset": 5})
    stored = sim.preset(5)
    await driver.execute("recall_preset", {"preset": 0})  # never stored: home
    assert (sim.pan, sim.tilt, sim.zoom) == (0, 0, 0)
    await driver.execute("recall_preset", {"preset": 5})
    assert (sim.pan, sim.tilt, sim.zoom) == stored and driver.state["preset"] == 5
    await driver.execute("power_off")
    assert sim.power == "off" and driver.state["power"] == "off"
    assert sim.connections == 1  # one open of the port throughout


async def test_camera_at_another_address_never_answers(rigs: RigStarter) -> None:
    rig = await rigs(ViscaPtyRig, address=1)
    driver = await rig.driver(address=2, timeout=0.1, retries=0, offline_after=2)
    await until(lambda: driver.state["offline_reason"] == "timeout", message="timeouts")
    assert not driver.online and rig.sim.received["if_clear"] == 0


async def test_camera_behind_a_serial_gateway(rigs: RigStarter) -> None:
    config = ViscaConfig(driver="visca", transport="socket://10.0.0.9:4001", address=2)
    options = ViscaSimulator.options_for(config)  # what `--simulate` gives the camera
    assert options["listen"] == "tcp" and options["address"] == 2
    rig = await rigs(GatewayRig, **options)
    assert rig.sim.url.startswith("tcp://")
    driver = await rig.online(address=2)
    await driver.execute("zoom", {"speed": -2})
    assert rig.sim.received["zoom"] == 1
    await driver.execute("stop")
    assert not rig.sim.moving


async def test_junk_packets_before_replies_are_skipped(rigs: RigStarter) -> None:
    """Line noise that ends in FF is a packet of its own: the driver drops it, keeps the reply."""
    rig = await rigs(ViscaPtyRig, power="off", garbage_every=1, garbage_mode="line", seed=1)
    driver = await rig.online()
    await driver.execute("power_on")
    assert rig.sim.power == "on" and driver.state["power"] == "on"
