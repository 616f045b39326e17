"""Samsung MDC driver against the MDC simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.samsung_mdc.config import SamsungMdcConfig
from drivers.samsung_mdc.driver import SamsungMdcDriver
from simulators.samsung_mdc import SamsungMdcSimulator
from tests.helpers import seconds_until, until
from tests.rig import PtyRig, Rig, RigStarter, error_of

DISPLAY_ID = 1


class MdcRig(Rig[SamsungMdcSimulator, SamsungMdcDriver]):
    """A simulated display on TCP, drivers aimed at it, and every change they published."""

    simulator_class = SamsungMdcSimulator
    knobs = {"display_id": DISPLAY_ID}
    driver_class = SamsungMdcDriver
    device_id = "display"
    settings = {
        "display_id": DISPLAY_ID,
        "poll_interval": 0.2,
        "timeout": 0.3,
        "connect_timeout": 0.3,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "warmup": 0,
        "transition_poll": 0.05,
    }

    async def wait_ready(self, driver: SamsungMdcDriver) -> None:
        await until(lambda: driver.online and "model" in driver.state, message="driver online")


class MdcPtyRig(PtyRig[SamsungMdcSimulator, SamsungMdcDriver], MdcRig):
    """The same display on its RS-232 port: a real pseudo-terminal."""


@pytest.fixture(params=["tcp", "pty"])
def link(request: pytest.FixtureRequest) -> str:
    """How the display is reached: TCP 1515, or RS-232 as a real pseudo-terminal."""
    return str(request.param)


TCP_ONLY = pytest.mark.parametrize("link", ["tcp"])


@pytest.fixture
def rig_factory(link: str, tmp_path: Path, rigs: RigStarter) -> Callable[..., Awaitable[MdcRig]]:
    if link == "tcp":
        return partial(rigs, MdcRig)
    ports = count()  # each pty behind a link that stays valid while the port is unplugged
    return partial(rigs, lambda **knobs: MdcPtyRig(tmp_path / f"ttyMDC{next(ports)}", **knobs))


async def test_reports_identity_and_status(rig_factory: Any) -> None:
    rig = await rig_factory(volume=33, mute=True, input="DisplayPort 1", model_name="QM55B")
    driver = await rig.online()
    state = driver.state
    assert state["online"] is True and state["offline_reason"] is None
    assert (state["model"], state["serial_number"]) == ("QM55B", "SIMMDC00001")
    assert state["software_version"] == "S-SIM-1000.0"
    assert state["power"] == "off" and state["input"] == "DisplayPort 1"
    assert state["levels"] == {"volume": 33}
    assert state["mutes"] == {"volume": True} and state["audio_mute"] is True
    assert "HDMI 1" in state["inputs"]
    assert rig.sim.bad_checksums == 0 and rig.sim.ignored == 0


async def test_every_action_changes_the_display(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(inputs={"HDMI 1": "Laptop", "0x25": "Wall plate", "PC": "PC"})
    assert driver.state["inputs"] == ["Laptop", "Wall plate", "PC"]
    await driver.execute("power_on")
    assert driver.state["power"] == "on" and rig.sim.power
    await driver.execute("select_input", {"input": "wall plate"})
    assert driver.state["input"] == "Wall plate" and rig.sim.input == "DisplayPort 1"
    await driver.execute("select_input", {"input": "HDMI 2"})  # an MDC name works too
    assert driver.state["input"] == "HDMI 2" and rig.sim.input == "HDMI 2"
    await driver.execute("select_input", {"input": "0x21"})
    assert driver.state["input"] == "Laptop"
    await driver.execute("set_level", {"control": "volume", "level": 42.4})
    assert driver.state["levels"] == {"volume": 42} and rig.sim.volume == 42
    await driver.execute("set_volume", {"level": 60})
    assert driver.state["levels"] == {"volume": 60} and rig.sim.volume == 60
    await driver.execute("volume_up")
    assert driver.state["levels"] == {"volume": 61} and rig.sim.volume == 61
    await driver.execute("volume_down")
    assert driver.state["levels"] == {"volume": 60}
    await driver.execute("set_audio_mute", {"mute": True})
    assert driver.state["audio_mute"] is True and driver.state["mutes"] == {"volume": True}
    assert rig.sim.mute
    await driver.execute("set_mute", {"control": "volume", "mute": False})
    assert driver.state["audio_mute"] is False and not rig.sim.mute
    await driver.execute("power_off")
    assert driver.state["power"] == "off" and not rig.sim.power
    assert rig.values("power") == ["off", "on", "off"]
    assert rig.sim.bad_checksums == 0  # the display verified every request's checksum


@TCP_ONLY
async def test_front_panel_changes_arrive_by_polling(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.press_power(True)
    rig.sim.set_input("HDMI 2")
    rig.sim.set_volume(77)
    rig.sim.set_mute(True)
    await until(lambda: driver.state["levels"] == {"volume": 77})
    assert driver.state["power"] == "on" and driver.state["input"] == "HDMI 2"
    assert driver.state["audio_mute"] is True


async def test_nak_is_a_device_error_naming_the_command(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", unsupported=["serial_number"])
    driver = await rig.online()
    assert driver.state["serial_number"] is None  # a NAKed query is "not available"
    err = await error_of(driver.execute("select_input", {"input": "HDMI 4"}))  # model lacks it
    assert err.code is ErrorCode.DEVICE_ERROR
    assert "input HDMI 4" in str(err) and "NAK" in str(err)
    await driver.execute("power_off")
    err = await error_of(driver.execute("set_volume", {"level": 20}))  # sets NAK while off
    assert err.code is ErrorCode.DEVICE_ERROR and "volume 20" in str(err)
    assert driver.online and rig.values("online") == [True]  # a display that says no is online


async def test_power_on_warms_up_and_holds_commands_until_booted(rig_factory: Any) -> None:
    rig = await rig_factory(boot_delay=0.15)
    driver = await rig.online(warmup=0.15)
    await driver.execute("power_on")
    assert driver.state["power"] == "warming"  # known before the ack returned
    await driver.execute("select_input", {"input": "HDMI 2"})  # held, then accepted
    assert driver.state["power"] == "on" and rig.sim.input == "HDMI 2"
    assert rig.values("power") == ["off", "warming", "on"]


@TCP_ONLY
async def test_commands_while_booting_can_be_refused_as_busy(rig_factory: Any) -> None:
    rig = await rig_factory(boot_delay=0.4)
    driver = await rig.online(warmup=0.4, lockout="reject")
    await driver.execute("power_on")
    err = await error_of(driver.execute("set_volume", {"level": 5}))
    assert err.code is ErrorCode.BUSY and "warming" in str(err)


@TCP_ONLY
async def test_display_still_booting_naks(rig_factory: Any) -> None:
    rig = await rig_factory(boot_delay=5)
    driver = await rig.online(warmup=0)  # the driver does not wait for the boot
    await driver.execute("power_on")
    err = await error_of(driver.execute("select_input", {"input": "HDMI 2"}))
    assert err.code is ErrorCode.DEVICE_ERROR and "NAK" in str(err)


async def test_wrong_display_id_goes_offline_within_the_configured_tries(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(
        retries=1, offline_after=3, timeout=0.1, connect_timeout=0.1, poll_interval=0.05
    )
    ignored_at_offline: list[int] = []
    sink = driver._sink

    def record(changes: dict[str, Any]) -> None:
        if changes.get("online") is False:
            ignored_at_offline.append(rig.sim.ignored)
        sink(changes)

    driver._sink = record
    rig.sim.knobs.display_id = 7  # someone changed the ID in the display's menu
    await until(lambda: not driver.online, timeout=3)
    assert ignored_at_offline == [3]  # offline after exactly offline_after unanswered requests
    assert driver.state["offline_reason"] == "timeout"
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE
    assert not driver._worker.task.done()  # nothing crashed
    rig.sim.knobs.display_id = DISPLAY_ID
    await until(lambda: driver.online, timeout=3)
    assert rig.values("online") == [True, False, True]


async def test_display_that_never_answers_its_id_is_offline_not_a_crash(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.driver(display_id=9, offline_after=2, connect_timeout=0.1)
    await until(lambda: rig.sim.ignored >= 3, timeout=3)
    assert driver.online is False and driver.state["offline_reason"] == "timeout"
    assert True not in rig.values("online")
    assert not driver._worker.task.done()


@TCP_ONLY
async def test_any_display_id_reaches_the_display(rig_factory: Any) -> None:
    rig = await rig_factory(display_id=5, power="on")
    driver = await rig.online(display_id=254)
    await driver.execute("set_volume", {"level": 3})
    assert rig.sim.volume == 3


async def test_replies_with_bad_checksums_are_rejected(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory()
    driver = await rig.online(
        timeout=0.1, connect_timeout=0.1, offline_after=100, poll_interval=0.05
    )
    rig.sim.knobs.corrupt_every = 1  # every reply from now on is corrupt
    rig.sim.set_volume(77)
    replies = rig.sim.replies
    await until(lambda: rig.sim.replies >= replies + 3)
    assert driver.state["levels"] == {"volume": 10}  # never applied
    assert any("bad checksum" in r.getMessage() for r in caplog.records)
    rig.sim.knobs.corrupt_every = None
    await until(lambda: driver.state["levels"] == {"volume": 77})


async def test_a_corrupt_reply_is_retried_and_the_command_completes(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(timeout=0.1, poll_interval=60)
    rig.sim.knobs.corrupt_every = 3  # 2 would hit every retried set: login takes one
    for level in (11, 12, 13):
        await driver.execute("set_volume", {"level": level})
        assert driver.state["levels"] == {"volume": level} and rig.sim.volume == level
    assert rig.sim.received["volume"] > 3  # a set whose reply was spoiled was sent again
    assert rig.values("online") == [True]


@TCP_ONLY
async def test_tls_only_display_is_offline_with_a_clear_reason(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(tls=True)
    driver = await rig.driver(reconnect_min=0.05, reconnect_max=0.5)
    await until(lambda: driver.state["offline_reason"] == "protocol_error")
    assert not driver.online
    messages = [r.getMessage() for r in caplog.records]
    assert any("Secured Protocol" in m and "offline" in m for m in messages), messages
    connections = rig.sim.connections
    took = await seconds_until(lambda: rig.sim.connections >= connections + 2, message="2 tries")
    # Backs off hard (reconnect_max, ±20 %), like a refused login: not 0.05 s, then 0.1 s.
    assert took >= 0.5 * 0.8, took


@pytest.mark.parametrize(
    "knobs",
    [
        {"split_writes": True},
        {"coalesce_replies": 2, "coalesce_window": 0.01},
        {"garbage_every": 2},
    ],
    ids=["split", "coalesced", "garbage"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs, power="on")
    driver = await rig.online(timeout=1.0)
    await driver.execute("select_input", {"input": "PC"})
    await driver.execute("set_volume", {"level": 50})
    assert driver.state["input"] == "PC" and driver.state["levels"] == {"volume": 50}
    assert rig.values("online") == [True]
    if "garbage_every" in knobs:
        assert any("not MDC" in r.getMessage() for r in caplog.records)


@TCP_ONLY
async def test_offline_when_the_display_goes_away_and_back_with_fresh_state(
    rig_factory: Any,
) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await rig.sim.stop()
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "refused"
    assert driver.state["model"] == "SIM-QM55B"  # last known state is kept
    rig.sim.set_volume(88)
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online, timeout=3)
    await until(lambda: driver.state["levels"] == {"volume": 88})
    assert rig.values("online") == [True, False, True]


@pytest.mark.parametrize("link", ["pty"])
async def test_unplugged_serial_port_goes_offline_and_comes_back(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    port = rig.path  # the link, valid again once replugged
    rig.sim.close_pty()  # the USB adapter is pulled
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "port_gone"
    rig.sim.set_volume(55)
    await rig.sim.start_pty(link=port)  # and plugged back in
    await until(lambda: driver.state["levels"] == {"volume": 55}, timeout=3)
    assert rig.values("online") == [True, False, True]


async def test_one_connection_is_kept(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.05)
    await until(lambda: rig.sim.received["status"] >= 5)
    assert rig.sim.connections == 1 and driver.online


@TCP_ONLY
async def test_bad_arguments_never_reach_the_display(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(poll_interval=60)
    sent = sum(rig.sim.received.values())
    for action, args in [
        ("set_level", {"control": "volume", "level": 101}),
        ("set_level", {"control": "bass", "level": 5}),
        ("set_volume", {"level": -1}),
        ("set_mute", {"control": "treble", "mute": True}),
        ("set_audio_mute", {"mute": "maybe"}),
        ("select_input", {}),
    ]:
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.INVALID_ARGS, (action, args, err)
    err = await error_of(driver.execute("select_input", {"input": "SDI 9"}))
    assert err.code is ErrorCode.INVALID_ARGS and "HDMI 1" in str(err)
    assert sum(rig.sim.received.values()) == sent


def test_config_defaults_and_validation() -> None:
    config = SamsungMdcConfig.model_validate(
        {"driver": "samsung_mdc", "transport": "tcp://10.0.0.5"}
    )
    assert config.transport.port == 1515 and config.display_id == 0
    for bad in (
        {"display_id": 255},
        {"inputs": {"SDI 1": "Camera"}},
        {"inputs": {"HDMI 1": "A", "0x21": "B"}},
        {"inputs": {"HDMI 1": "Same", "HDMI 2": "same"}},
    ):
        with pytest.raises(ValueError):
            SamsungMdcConfig.model_validate(
                {"driver": "samsung_mdc", "transport": "tcp://10.0.0.5", **bad}
            )


def test_action_schemas() -> None:
    config = SamsungMdcConfig.model_validate({"driver": "samsung_mdc", "transport": "tcp://h"})
    schemas = SamsungMdcDriver("d", config, lambda c: None).describe_actions()
    assert {"power_on", "power_off", "select_input", "set_level", "set_mute"} <= set(schemas)
    assert schemas["set_level"]["properties"]["level"]["maximum"] == 100
    assert schemas["set_audio_mute"]["required"] == ["mute"]


@TCP_ONLY
async def test_stop_in_the_same_turn_as_a_state_change_does_not_hang(rig_factory: Any) -> None:
    """On Python 3.11 `asyncio.wait_for` swallows a cancel that meets a completed wait."""
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    await asyncio.sleep(0.05)  # the poll scheduler is idle, waiting to be woken
    driver.update(model="renamed")  # wakes the scheduler ...
    async with asyncio.timeout(2):
        await driver.stop()  # ... in the same loop turn as it is cancelled
