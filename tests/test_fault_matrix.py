"""Every driver against its simulator under every fault that applies to it.

For each (driver, fault): the driver goes offline with the offline_reason that fault
means (or, for device errors, stays online and says what the device said), comes
back when the fault clears, ends with the simulator's state (changed behind its back
while it was offline), leaves no task behind, and reconnects no faster than its
backoff allows, counted at the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.base import Driver
from drivers.errors import ErrorCode
from drivers.sony_adcp.codec import POWER_STATES as ADCP_POWER
from simulators.base import AuthKnobs, Simulator
from tests.conftest import until
from tests.rig import Rig, RigStarter, error_of
from tests.test_epson_escvp_driver import EpsonRig
from tests.test_extron_driver import ExtronRig
from tests.test_generic_driver import GenericRig
from tests.test_mdc_driver import MdcRig
from tests.test_pjlink_driver import PjlinkRig
from tests.test_qsys_driver import QsysRig
from tests.test_sony_adcp_driver import AdcpRig
from tests.test_tesira_driver import TesiraRig
from tests.test_visca_driver import ViscaRig

RECONNECT_MIN, RECONNECT_MAX, JITTER = 0.05, 0.2, 0.2
FAULT_TIME = 0.5  # how long each fault lasts once the driver is offline
# Short timings so every fault shows within a second; polls keep every driver asking.
SETTINGS: dict[str, Any] = {
    "poll_interval": 0.1,
    "timeout": 0.3,
    "connect_timeout": 0.3,
    "retries": 0,
    "offline_after": 2,
    "reconnect_min": RECONNECT_MIN,
    "reconnect_max": RECONNECT_MAX,
}


@dataclass(frozen=True)
class Subject:
    """A driver's rig, a front-panel change, and how to tell the driver caught up."""

    rig: type[Rig[Any, Any]]
    change: Callable[[Any], object]
    synced: Callable[[Any, Any], bool]
    command: tuple[str, dict[str, Any]]  # an action the device answers
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def udp(self) -> bool:
        return self.rig is ViscaRig


def _ties(ties: dict[int, int]) -> dict[str, int]:
    return {str(output): tied for output, tied in ties.items()}


SUBJECTS = {
    "pjlink": Subject(
        PjlinkRig,
        lambda sim: sim.press_power(True),
        lambda driver, sim: sim.power in ("on", "off") and driver.state.get("power") == sim.power,
        ("power_off", {}),
    ),
    "extron_sis": Subject(
        ExtronRig,
        lambda sim: sim.press_tie(5, 2),
        lambda driver, sim: (
            driver.state.get("video_routes") == _ties(sim.video_ties)
            and driver.state.get("audio_routes") == _ties(sim.audio_ties)
        ),
        ("route", {"input": 3, "output": "1"}),
    ),
    "tesira": Subject(
        TesiraRig,
        lambda sim: sim.set_level("Level1", 1, -30.0),
        lambda driver, sim: driver.state.get("levels", {}).get("program") == sim.level("Level1", 1),
        ("set_level", {"control": "program", "level": -10}),
    ),
    "qsys": Subject(
        QsysRig,
        lambda sim: sim.set_control("MainGain", -30.0),
        lambda driver, sim: driver.state.get("levels", {}).get("program") == sim.value("MainGain"),
        ("set_level", {"control": "program", "level": -10}),
    ),
    "samsung_mdc": Subject(
        MdcRig,
        lambda sim: sim.set_volume(50),
        lambda driver, sim: driver.state.get("levels", {}).get("volume") == sim.volume,
        ("power_on", {}),
    ),
    "visca": Subject(
        ViscaRig,
        lambda sim: sim.set_power(False),
        lambda driver, sim: driver.state.get("power") == sim.power,
        ("stop", {}),
        {"completion_timeout": 0.3},
    ),
    "sony_adcp": Subject(
        AdcpRig,
        lambda sim: sim.press_power(True),
        lambda driver, sim: (
            sim.power in ("on", "standby") and driver.state.get("power") == ADCP_POWER[sim.power]
        ),
        ("power_on", {}),
    ),
    "epson_escvp": Subject(
        EpsonRig,
        lambda sim: sim.press_power(True),
        lambda driver, sim: sim.power in ("on", "off") and driver.state.get("power") == sim.power,
        ("power_on", {}),
    ),
    "generic": Subject(
        GenericRig,
        lambda sim: sim.set_state("level", 20),
        lambda driver, sim: driver.state.get("levels", {}).get("main") == sim.state["level"],
        ("set_level", {"level": 30}),
    ),
}


@dataclass(frozen=True)
class Fault:
    """Knobs that make a fault, and the offline_reason a driver should give (TCP, UDP)."""

    knobs: dict[str, Any]
    reason: str
    udp_reason: str | None  # None: the fault does not apply to UDP
    auth: bool = False  # only for protocols with authentication
    drop: bool = False  # break live connections too (the knob acts on new ones)


FAULTS = {
    "refuse": Fault({"refuse": True}, "refused", "refused", drop=True),
    "stall": Fault({"stall": True}, "timeout", "timeout"),
    "drop": Fault({"drop_after": 0}, "closed", "timeout"),
    "mid_reply": Fault({"drop_after": 0, "drop_mode": "mid_reply"}, "closed", "timeout"),
    "garbage": Fault({"garbage_every": 1, "garbage_mode": "replace"}, "timeout", "timeout"),
    "trickle": Fault({"trickle_bytes": 1, "trickle_interval": 0.2}, "timeout", None),
    "fail_auth": Fault({"fail_auth": True}, "auth_failed", None, auth=True, drop=True),
}


def cases() -> list[Any]:
    out = []
    for name, subject in SUBJECTS.items():
        has_auth = issubclass(subject.rig.simulator_class.knobs_model, AuthKnobs)
        for fault_name, fault in FAULTS.items():
            if (fault.auth and not has_auth) or (subject.udp and fault.udp_reason is None):
                continue
            out.append(pytest.param(name, fault_name, id=f"{name}-{fault_name}"))
    return out


def max_attempts(seconds: float, auth: bool) -> int:
    """The most connection attempts capped exponential backoff allows in `seconds`."""
    delay, spent, attempts = (RECONNECT_MAX if auth else RECONNECT_MIN), 0.0, 1
    while spent + delay * (1 - JITTER) <= seconds:
        spent += delay * (1 - JITTER)
        attempts += 1
        delay = min(delay * 2, RECONNECT_MAX)
    return attempts + 1  # one already under way when the fault began


def attempts(sim: Simulator[Any]) -> int:
    return sim.connections + sim.refused


async def started(rigs: RigStarter, name: str) -> tuple[Subject, Rig[Any, Any], Driver[Any]]:
    """The subject `name`, its rig, and a driver that is online and in step."""
    subject = SUBJECTS[name]
    rig = await rigs(subject.rig)
    driver = await rig.online(**{**SETTINGS, **subject.settings})
    await until(lambda: subject.synced(driver, rig.sim), message="driver in step")
    return subject, rig, driver


async def recovered(subject: Subject, driver: Driver[Any], sim: Any, tasks: int) -> None:
    """Online again, in step with the device, and no more tasks than before the fault."""
    await until(lambda: driver.online, message="online again")
    await until(lambda: subject.synced(driver, sim), message="driver state is the device's")
    await until(lambda: len(asyncio.all_tasks()) <= tasks, message="no task left behind")


@pytest.mark.parametrize(("name", "fault_name"), cases())
async def test_driver_goes_offline_for_the_fault_and_recovers(
    rigs: RigStarter, name: str, fault_name: str
) -> None:
    fault = FAULTS[fault_name]
    subject, rig, driver = await started(rigs, name)
    sim = rig.sim
    tasks = len(asyncio.all_tasks())
    loop = asyncio.get_running_loop()
    for knob, value in fault.knobs.items():
        setattr(sim.knobs, knob, value)
    if fault.drop:
        sim.drop_sessions()
    begun, tried = loop.time(), attempts(sim)
    await until(lambda: not driver.online, message=f"offline under {fault_name}")
    reason = fault.udp_reason if subject.udp else fault.reason
    assert driver.state["offline_reason"] == reason
    subject.change(sim)  # behind the driver's back
    await asyncio.sleep(FAULT_TIME)  # let it retry for a while: the backoff is measured
    if not subject.udp and fault_name != "refuse":  # refused connects never reach it
        made, window = attempts(sim) - tried, loop.time() - begun
        assert 1 <= made <= max_attempts(window, fault.auth), (made, window)
    for knob in fault.knobs:
        setattr(sim.knobs, knob, type(sim.knobs).model_fields[knob].get_default())
    await recovered(subject, driver, sim, tasks)


@pytest.mark.parametrize("name", list(SUBJECTS))
async def test_reboot_takes_the_driver_offline_and_back_with_the_start_state(
    rigs: RigStarter, name: str
) -> None:
    subject, rig, driver = await started(rigs, name)
    sim = rig.sim
    tasks = len(asyncio.all_tasks())
    subject.change(sim)
    await until(lambda: subject.synced(driver, sim), message="change seen")
    rebooting = asyncio.create_task(sim.reboot(downtime=0.6))
    await until(lambda: not driver.online, message="offline while rebooting")
    assert driver.state["offline_reason"] in ("refused", "closed")
    await rebooting
    assert sim.reboots == 1
    await recovered(subject, driver, sim, tasks)  # in step: it read the start state back


@pytest.mark.parametrize("name", list(SUBJECTS))
async def test_device_errors_fail_commands_and_the_driver_stays_online(
    rigs: RigStarter, name: str
) -> None:
    subject, rig, driver = await started(rigs, name)
    action, args = subject.command
    rig.sim.knobs.device_error_rate = 1.0
    err = await error_of(driver.execute(action, args))
    assert err.code in (ErrorCode.DEVICE_ERROR, ErrorCode.BUSY)
    assert driver.online and rig.sim.device_errors_sent >= 1
    rig.sim.knobs.device_error_rate = 0.0
    await driver.execute(action, args)
    assert driver.online
