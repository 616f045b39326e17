"""Extron switcher on its RS-232 port: a real pseudo-terminal pair at 9600 baud."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import until
from tests.rig import RigStarter
from tests.test_extron_driver import ExtronRig

pytestmark = pytest.mark.usefixtures("no_loop_errors")


class UnpluggedRig(ExtronRig):
    """The switcher with no port open yet: each test opens its pty its own way."""

    async def start(self) -> None:
        pass


@pytest.fixture
async def rig(rigs: RigStarter) -> UnpluggedRig:
    # The password guards Telnet only; RS-232 has neither banner nor login.
    return await rigs(UnpluggedRig, password="telnet-only")


async def test_switcher_over_a_pty_at_9600_baud(rig: UnpluggedRig) -> None:
    path = await rig.sim.start_pty(baudrate=9600)
    assert re.fullmatch(r"/dev/pts/\d+", path)
    driver = await rig.driver(transport=f"serial://{path}?baudrate=9600", connect_timeout=1)
    await rig.wait_ready(driver)
    assert rig.sim.verbose_modes() == [3]  # verbose 1 is the RS-232 default; 3 is set
    assert driver.state["firmware"] == "1.23" and "login" not in driver.state
    assert driver.state["routes"] == {"1": 1, "2": 2, "3": 3, "4": 4}
    await driver.execute("route", {"input": 7, "output": 3, "kind": "audio"})
    assert rig.sim.audio_ties[3] == 7 and driver.state["audio_routes"]["3"] == 7
    await driver.execute("set_level", {"control": "1", "level": -30})
    assert rig.sim.volumes[1] == 34
    rig.sim.press_tie(5, 2)
    await until(lambda: driver.state["routes"]["2"] == 5)
    assert rig.sim.connections == 1  # one open of the port, one session


async def test_pulled_port_goes_offline_and_comes_back_verbose_again(
    rig: UnpluggedRig, tmp_path: Path
) -> None:
    link = tmp_path / "ttyUSB0"
    await rig.sim.start_pty(link=link, baudrate=9600)
    driver = await rig.driver(transport=f"serial://{link}?baudrate=9600", connect_timeout=1)
    await rig.wait_ready(driver)
    rig.sim.close_pty()  # the USB adapter is pulled
    await until(lambda: not driver.online, timeout=3, message="offline")
    assert driver.state["offline_reason"] == "port_gone"

    rig.sim.press_tie(6, 4)  # changed on the front panel while unplugged
    await rig.sim.start_pty(link=link, baudrate=9600)  # plugged back in
    await until(lambda: driver.online, timeout=3, message="back online")
    await until(lambda: driver.state["routes"]["4"] == 6, message="fresh state")
    await until(lambda: rig.sim.verbose_modes() == [3], message="verbose mode set again")
    rig.sim.press_tie(8, 1)  # pushes work again
    await until(lambda: driver.state["routes"]["1"] == 8)
    assert rig.values("online") == [True, False, True]


async def test_wrong_baud_rate_gets_no_answer(rig: UnpluggedRig) -> None:
    path = await rig.sim.start_pty(baudrate=9600)
    driver = await rig.driver(
        transport=f"serial://{path}?baudrate=19200", connect_timeout=0.3, offline_after=1
    )
    await until(lambda: driver.state["offline_reason"] == "timeout", timeout=3)
    assert not driver.online
