"""Epson ESC/VP21 driver against the simulator: ESC/VP.net over loopback TCP, and RS-232
over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from drivers.epson_escvp.config import EpsonEscvpConfig
from drivers.epson_escvp.driver import EpsonEscvpDriver
from drivers.errors import ErrorCode
from simulators.epson_escvp import EpsonEscvpSimulator
from tests.helpers import until
from tests.rig import (
    PtyRig,
    Rig,
    RigStarter,
    error_of,
    refused_login_backs_off,
)

pytestmark = pytest.mark.usefixtures("no_loop_errors")


class EpsonRig(Rig[EpsonEscvpSimulator, EpsonEscvpDriver]):
    """An Epson projector simulator on TCP (fast warm-up), drivers aimed at it, their changes."""

    simulator_class = EpsonEscvpSimulator
    knobs = {"warmup": 0.2, "cooldown": 0.2}
    driver_class = EpsonEscvpDriver
    device_id = "proj"
    settings = {
        "poll_interval": 0.2,
        "timeout": 0.5,
        "connect_timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "transition_poll": 0.05,
        "detail_interval": 0.2,
        "lamp_interval": 0.2,
    }

    async def wait_ready(self, driver: EpsonEscvpDriver) -> None:
        await until(
            lambda: driver.online and {"power", "errors", "lamp_hours"} <= driver.state.keys(),
            message="driver online, first polls",
        )


class EpsonPtyRig(PtyRig[EpsonEscvpSimulator, EpsonEscvpDriver], EpsonRig):
    """The same projector on its RS-232 port: a real pseudo-terminal at 9600 baud."""


@pytest.fixture(params=["tcp", "pty"])
def link(request: pytest.FixtureRequest) -> str:
    """How the projector is reached: ESC/VP.net on TCP, or RS-232 as a pseudo-terminal."""
    return str(request.param)


TCP_ONLY = pytest.mark.parametrize("link", ["tcp"])
PTY_ONLY = pytest.mark.parametrize("link", ["pty"])


@pytest.fixture
def rig_factory(link: str, tmp_path: Path, rigs: RigStarter) -> Callable[..., Awaitable[EpsonRig]]:
    if link == "tcp":
        return partial(rigs, EpsonRig)
    ports = count()  # each pty behind a link that stays valid while the port is unplugged
    return partial(rigs, lambda **knobs: EpsonPtyRig(tmp_path / f"ttyEPS{next(ports)}", **knobs))


async def test_reports_state(rig_factory: Any) -> None:
    rig = await rig_factory(lamp_hours=2345)
    driver = await rig.online()
    state = driver.state
    assert state["online"] is True and state["manufacturer"] == "Epson"
    assert state["power"] == "off" and state["power_detail"] == "standby (network on)"
    assert state["inputs"] == ["HDMI", "HDMI 2", "Computer 1", "LAN"]
    assert state["errors"] == {} and state["lamp_hours"] == 2345
    assert "input" not in state and "video_mute" not in state  # not asked while off
    assert rig.sim.connections == 1  # one connection, kept


@TCP_ONLY
@pytest.mark.parametrize("prompt", [True, False], ids=["with-prompt", "header-only"])
async def test_handshake_with_or_without_a_prompt_after_it(
    rig_factory: Any, prompt: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(handshake_prompt=prompt, power="on")
    driver = await rig.online()
    await driver.execute("select_input", {"input": "LAN"})
    await driver.execute("set_video_mute", {"mute": True})
    assert rig.sim.input == "52" and driver.state["input"] == "LAN"
    assert driver.state["video_mute"] is True
    # Every reply met the request it belongs to: the prompt after the handshake was no answer.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("avhub")] == []


@TCP_ONLY
async def test_password_in_the_handshake(rig_factory: Any) -> None:
    rig = await rig_factory(password="pass1234", power="on")
    driver = await rig.online(password="pass1234")
    await driver.execute("set_video_mute", {"mute": True})
    assert rig.sim.mute


@TCP_ONLY
async def test_wrong_password_goes_offline_auth_failed_and_backs_off(rig_factory: Any) -> None:
    rig = await rig_factory(password="right")
    driver = await rig.driver(password="wrong", reconnect_min=0.05, reconnect_max=0.3)
    await refused_login_backs_off(rig, driver)
    rig.sim.knobs.password = "wrong"
    await until(lambda: driver.online, timeout=3)


@TCP_ONLY
async def test_a_password_is_needed_and_none_is_configured(rig_factory: Any) -> None:
    rig = await rig_factory(password="secret")
    driver = await rig.driver()
    await until(lambda: driver.state["offline_reason"] == "auth_failed")


@TCP_ONLY
async def test_serial_gateway_has_no_handshake(rig_factory: Any) -> None:
    rig = await rig_factory(handshake=False, power="on")
    driver = await rig.online(transport=f"socket://127.0.0.1:{rig.sim.port}")
    assert driver.config.uses_handshake() is False
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert rig.sim.input == "A0"


async def test_power_on_answers_once_warm_and_off_cycle(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.3)
    driver = await rig.online()
    acked_at: list[str] = []
    power_on = asyncio.create_task(driver.execute("power_on"))
    power_on.add_done_callback(lambda _: acked_at.append(rig.sim.power))
    await until(lambda: driver.state["power"] == "warming")
    assert await power_on is None
    assert acked_at == ["on"]  # PWR ON has no prompt before the lamp is lit
    assert driver.state["power"] == "on"
    await driver.execute("power_off")  # its prompt comes at once
    assert driver.state["power"] == "cooling"
    await until(lambda: driver.state["power"] == "off")
    assert rig.values("power") == ["off", "warming", "on", "cooling", "off"]


async def test_commands_during_warmup_are_held_until_it_ends(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.4)
    driver = await rig.online()
    set_at: list[str] = []
    rig.sim.add_listener(lambda key, _: set_at.append(rig.sim.power) if key == "input" else None)
    power_on = asyncio.create_task(driver.execute("power_on"))
    await until(lambda: driver.state["power"] == "warming")
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert power_on.done() and driver.state["input"] == "HDMI 2" and rig.sim.input == "A0"
    assert set_at == ["on"]  # sent once the warm-up was over
    assert rig.sim.received["SOURCE"] == 2  # the set and its read-back, none while warming


async def test_commands_during_warmup_can_be_refused_as_busy(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.5)
    driver = await rig.online(lockout="reject")
    power_on = asyncio.create_task(driver.execute("power_on"))
    await until(lambda: driver.state["power"] == "warming")
    for action, args in (
        ("select_input", {"input": "HDMI"}),
        ("set_video_mute", {"mute": True}),
        ("power_off", {}),
    ):
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.BUSY and "warming" in str(err)
    await power_on
    await driver.execute("select_input", {"input": "HDMI"})


async def test_power_off_can_answer_after_the_cooldown(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", cooldown=0.3, off_prompt="after_cooldown")
    driver = await rig.online()
    acked_at: list[str] = []
    power_off = asyncio.create_task(driver.execute("power_off"))
    power_off.add_done_callback(lambda _: acked_at.append(rig.sim.power))
    await until(lambda: driver.state["power"] == "cooling")
    await power_off
    assert acked_at == ["off"] and driver.state["power"] == "off"


async def test_power_commands_wait_up_to_power_timeout(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=1.2)  # well over `timeout`, which a loaded machine needs
    driver = await rig.online(timeout=0.5, power_timeout=3, retries=0)
    await driver.execute("power_on")  # longer than `timeout`: the prompt comes after warm-up
    assert driver.state["power"] == "on" and rig.values("online") == [True]


async def test_a_warmup_longer_than_power_timeout(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=1.0)
    driver = await rig.online(power_timeout=0.3, retries=0, offline_after=5)
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.TIMEOUT
    await until(lambda: driver.state["power"] == "on", timeout=3)
    assert rig.values("online") == [True]


async def test_input_by_name_or_code_and_config_names(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", inputs=["30", "A0", "80"])
    driver = await rig.online(inputs={"30": "Lectern", "a0": "Wall plate", "80": "Stage"})
    assert driver.state["inputs"] == ["Lectern", "Wall plate", "Stage"]
    await driver.execute("select_input", {"input": "stage"})
    assert driver.state["input"] == "Stage" and rig.sim.input == "80"
    await driver.execute("select_input", {"input": "a0"})
    assert driver.state["input"] == "Wall plate"
    rig.sim.set_input("30")
    await until(lambda: driver.state["input"] == "Lectern")
    err = await error_of(driver.execute("select_input", {"input": "SDI 9"}))
    assert err.code is ErrorCode.INVALID_ARGS and "Lectern" in str(err)
    err = await error_of(driver.execute("select_input", {"input": "41"}))  # not on this model
    assert err.code is ErrorCode.DEVICE_ERROR and "ERR" in str(err)
    assert driver.online


@TCP_ONLY
async def test_source_may_take_longer_than_timeout(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", source_delay=0.4)
    driver = await rig.online(timeout=0.2, source_timeout=2)
    await driver.execute("select_input", {"input": "LAN"})
    assert driver.state["input"] == "LAN"


async def test_av_mute_is_video_and_audio_mute(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online()
    await until(lambda: driver.state.get("video_mute") is False)
    await driver.execute("set_video_mute", {"mute": True})
    assert driver.state["video_mute"] is True and driver.state["audio_mute"] is True
    assert rig.sim.mute
    rig.sim.set_mute(False)
    await until(lambda: driver.state["audio_mute"] is False)


async def test_refused_in_standby(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))
    assert err.code is ErrorCode.DEVICE_ERROR and "MUTE ON" in str(err)
    assert driver.online and not rig.sim.mute


async def test_a_refused_power_on_leaves_power_as_it_was(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.1)
    driver = await rig.online(detail_interval=60, lamp_interval=60)
    rig.sim.knobs.device_errors = 3  # PWR ON gets ERR, and so do the polls after it
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_ERROR and rig.sim.power == "off"
    assert driver.state["power"] == "off" and not driver.in_transition()
    assert driver.state["power_detail"] == "standby (network on)"
    rig.sim.knobs.device_errors = 0
    await driver.execute("power_on")
    assert driver.state["power"] == "on"


async def test_errors_abnormal_standby_and_lamp_hours(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", lamp_hours=100)
    driver = await rig.online()
    rig.sim.set_lamp_hours(150)
    await until(lambda: driver.state["lamp_hours"] == 150)
    rig.sim.set_error("01")
    await until(lambda: driver.state["errors"] == {"fan": "error"})
    rig.sim.fail("06")  # the lamp fails: abnormal standby
    await until(lambda: driver.state["power_detail"] == "abnormal standby")
    assert driver.state["power"] == "off"
    await until(lambda: driver.state["errors"] == {"lamp": "error"})


async def test_a_laser_projector_has_no_lamp_hours(rig_factory: Any) -> None:
    rig = await rig_factory(lamp=False)
    driver = await rig.online()
    assert driver.state["lamp_hours"] is None and driver.online


async def test_turning_on_at_the_projector(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=30, input="A0")
    driver = await rig.online(detail_interval=60)
    assert rig.sim.press_power(True)
    await until(lambda: driver.state["power"] == "warming")
    rig.sim.set_error("04")  # errors are read at every transition poll, not every minute
    await until(lambda: driver.state["errors"] == {"temperature": "error"})
    rig.sim.knobs.warmup = 0
    rig.sim.press_power(False)  # refused while warming
    assert rig.sim.power == "warming"


async def test_on_at_the_projector_reads_input_and_mute_at_once(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.1, input="A0")
    driver = await rig.online(poll_interval=0.1, detail_interval=60)
    assert rig.sim.press_power(True)
    await until(lambda: driver.state["power"] == "on")
    await until(  # well before the details' next read, a minute away
        lambda: driver.state.get("input") == "HDMI 2" and driver.state.get("video_mute") is False
    )


@pytest.mark.parametrize(
    "knobs",
    [
        {"split_writes": True},
        {"coalesce_replies": 3},
        {"garbage_every": 2, "garbage_mode": "line"},
        {"garbage_every": 3, "garbage_mode": "prefix"},
    ],
    ids=["split", "coalesced", "garbage-lines", "garbage-prefix"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs, lamp_hours=77)
    driver = await rig.online(timeout=1.0)
    assert driver.state["lamp_hours"] == 77
    await driver.execute("power_on")
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert driver.state["input"] == "HDMI 2"
    await driver.execute("set_video_mute", {"mute": True})
    assert driver.state["video_mute"] is True
    assert rig.values("online") == [True]  # never dropped offline
    if "garbage_every" in knobs:
        assert any("junk" in r.message or "unexpected" in r.message for r in caplog.records)


async def test_dropped_sessions_are_retried_transparently(rig_factory: Any) -> None:
    rig = await rig_factory(drop_after=4, power="on")
    driver = await rig.online(
        poll_interval=60, detail_interval=60, lamp_interval=60, source_timeout=0.5
    )
    for name in ("HDMI", "HDMI 2", "LAN", "Computer 1"):
        await driver.execute("select_input", {"input": name})
        assert driver.state["input"] == name
    assert rig.sim.connections >= 2 and rig.values("online") == [True]


@TCP_ONLY
async def test_offline_when_projector_leaves_and_back_with_fresh_state(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await rig.sim.stop()
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "refused"
    assert driver.state["inputs"]  # last known state is kept
    rig.sim.set_error("0C")
    rig.sim.knobs.warmup = 0
    rig.sim.press_power(True)
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online, timeout=3)
    await until(lambda: driver.state["errors"] == {"air_flow": "error"})
    await until(lambda: driver.state["power"] == "on")
    assert rig.values("online") == [True, False, True]


@PTY_ONLY
async def test_unplugged_serial_port_goes_offline_and_comes_back(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    port = rig.path  # the link, valid again once replugged
    rig.sim.close_pty()  # the USB adapter is pulled
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "port_gone"
    rig.sim.set_lamp_hours(999)
    await rig.sim.start_pty(link=port)  # and plugged back in
    await until(lambda: driver.state["lamp_hours"] == 999, timeout=3)
    assert rig.values("online") == [True, False, True]


@PTY_ONLY
async def test_wrong_baud_rate_gets_no_answer(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.driver(
        transport=f"serial://{rig.path}?baudrate=19200", connect_timeout=0.3, offline_after=1
    )
    await until(lambda: driver.state["offline_reason"] == "timeout", timeout=3)
    assert not driver.online


@PTY_ONLY  # on TCP: tests/test_fault_matrix.py (stall)
async def test_silent_projector_goes_offline_on_timeouts(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(timeout=0.1, connect_timeout=0.2, retries=1, offline_after=2)
    rig.sim.knobs.stall = True
    await until(lambda: not driver.online, timeout=3, message="offline")
    assert driver.state["offline_reason"] == "timeout"
    rig.sim.knobs.stall = False
    await until(lambda: driver.online, timeout=3, message="back online")


@TCP_ONLY
async def test_bad_arguments_never_reach_the_projector(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(poll_interval=60, detail_interval=60, lamp_interval=60)
    sent = sum(rig.sim.received.values())
    for action, args in [
        ("select_input", {}),
        ("select_input", {"input": 30}),
        ("select_input", {"input": "3"}),
        ("set_video_mute", {"mute": "maybe"}),
        ("power_on", {"extra": 1}),
    ]:
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.INVALID_ARGS, (action, args, err)
    err = await error_of(driver.execute("set_audio_mute", {"mute": True}))
    assert err.code is ErrorCode.UNKNOWN_ACTION  # A/V mute is one action: set_video_mute
    assert sum(rig.sim.received.values()) == sent


def test_config_defaults_validation_and_schemas() -> None:
    def config(**options: Any) -> EpsonEscvpConfig:
        return EpsonEscvpConfig.model_validate({"driver": "epson_escvp", **options})

    tcp = config(transport="tcp://10.0.0.5")
    assert tcp.transport.port == 3629 and tcp.uses_handshake()
    assert not config(transport="serial:///dev/ttyUSB0").uses_handshake()
    assert not config(transport="socket://gw:4001").uses_handshake()
    assert config(transport="socket://gw:4001", handshake=True).uses_handshake()
    assert config(transport="tcp://h", inputs={"a0": "PC"}).inputs == {"A0": "PC"}
    for bad in (
        {"inputs": {"HDMI": "Laptop"}},
        {"inputs": {"30": "A", "3": "B"}},
        {"inputs": {"a0": "A", "A0": "B"}},
        {"inputs": {"30": "Same", "A0": "same"}},
        {"password": "x" * 17},
        {"power_timeout": 0},
    ):
        with pytest.raises(ValueError):
            config(transport="tcp://h", **bad)
    schemas = EpsonEscvpDriver("p", tcp, lambda c: None).describe_actions()
    assert set(schemas) == {"power_on", "power_off", "select_input", "set_video_mute"}
    assert schemas["select_input"]["required"] == ["input"]
