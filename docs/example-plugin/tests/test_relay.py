"""The relay box driver against its simulator, over real loopback sockets (avhub's test kit)."""

from __future__ import annotations

from relay_plugin.driver import RelayDriver
from relay_plugin.simulator import RelaySimulator

from drivers.errors import ErrorCode
from hub.testkit import Rig, error_of, until


class RelayRig(Rig[RelaySimulator, RelayDriver]):
    simulator_class = RelaySimulator
    driver_class = RelayDriver
    settings = {"poll_interval": 0.2, "timeout": 0.5, "reconnect_min": 0.05}

    async def wait_ready(self, driver: RelayDriver) -> None:
        await until(lambda: driver.online and "relays" in driver.state)


async def test_power_and_relays() -> None:
    async with RelayRig(relays=2) as rig:
        driver = await rig.online(relays=2)
        assert driver.state["power"] == "off"
        assert driver.state["relays"] == {"1": False, "2": False}
        await driver.execute("power_on")
        await driver.execute("set_relay", {"relay": 2, "closed": True})
        assert driver.state["power"] == "on" and rig.sim.power
        assert driver.state["relays"] == {"1": False, "2": True} and rig.sim.closed == {2}


async def test_the_box_refuses_relays_while_off() -> None:
    async with RelayRig() as rig:
        driver = await rig.online()
        err = await error_of(driver.execute("set_relay", {"relay": 1, "closed": True}))
        assert err.code is ErrorCode.DEVICE_ERROR and "power it on first" in str(err)
        assert rig.sim.closed == set()


async def test_a_front_panel_change_is_pushed() -> None:
    async with RelayRig() as rig:
        driver = await rig.online(poll_interval=60)  # no poll will see it: the push must
        rig.sim.press_power()
        await until(lambda: driver.state["power"] == "on")


async def test_offline_while_the_box_does_not_answer() -> None:
    async with RelayRig() as rig:
        driver = await rig.online(offline_after=1, retries=0)
        rig.sim.knobs.stall = True
        await until(lambda: driver.state["online"] is False)
        rig.sim.knobs.stall = False
        await until(lambda: driver.state["online"] is True)
