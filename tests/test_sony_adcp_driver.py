"""Sony ADCP driver against the ADCP simulator over real loopback sockets."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.sony_adcp.config import SonyAdcpConfig
from drivers.sony_adcp.driver import SonyAdcpDriver
from simulators.sony_adcp import SonyAdcpSimulator
from tests.helpers import until
from tests.rig import Rig, RigStarter, error_of, refused_login_backs_off


class AdcpRig(Rig[SonyAdcpSimulator, SonyAdcpDriver]):
    """A Sony projector simulator (fast warm-up), drivers aimed at it, and their changes."""

    simulator_class = SonyAdcpSimulator
    knobs = {"warmup": 0.2, "cooldown": 0.2}
    driver_class = SonyAdcpDriver
    device_id = "proj"
    settings = {
        "poll_interval": 0.2,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "transition_poll": 0.05,
        "detail_interval": 0.2,
        "lamp_interval": 0.2,
    }

    async def wait_ready(self, driver: SonyAdcpDriver) -> None:
        await until(lambda: driver.online and "model" in driver.state, message="driver online")
        await until(
            lambda: {"power", "errors", "lamp_hours"} <= driver.state.keys(), message="first polls"
        )


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[AdcpRig]]:
    return partial(rigs, AdcpRig)


async def test_reports_identity_and_state(rig_factory: Any) -> None:
    rig = await rig_factory(model="VPL-GTZ380", serial_number="SN77", light_source_hours=321)
    driver = await rig.online()
    state = driver.state
    assert state["online"] is True and state["offline_reason"] is None
    assert (state["manufacturer"], state["model"], state["serial_number"]) == (
        "Sony",
        "VPL-GTZ380",
        "SN77",
    )
    assert state["power"] == "off" and state["inputs"] == ["HDMI 1", "HDMI 2"]
    assert state["errors"] == {} and state["lamp_hours"] == 321
    assert "input" not in state and "video_mute" not in state  # not asked while off


async def test_inputs_are_known_when_the_projector_comes_online(rig_factory: Any) -> None:
    """A panel that sees `online` can offer the configured inputs at once, not a poll later."""
    rig = await rig_factory(password="Secret1", challenge="c0ffee42")
    await rig.online(password="Secret1", inputs={"hdmi1": "Laptop", "hdmi2": "Wall plate"})
    seen: dict[str, Any] = {}
    for change in rig.changes:
        seen.update(change)
        if change.get("online") is True:
            break
    assert seen["online"] is True and seen.get("inputs") == ["Laptop", "Wall plate"]


async def test_challenge_is_answered_with_the_sha256_digest(rig_factory: Any) -> None:
    rig = await rig_factory(password="Secret1", challenge="c0ffee42")
    driver = await rig.online(password="Secret1")
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")
    assert rig.sim.power == "on"


async def test_factory_password_is_the_default(rig_factory: Any) -> None:
    rig = await rig_factory(password="Projector")
    await rig.online()  # no password in the config


async def test_wrong_password_goes_offline_auth_failed_and_backs_off(rig_factory: Any) -> None:
    rig = await rig_factory(password="right")
    driver = await rig.driver(password="wrong", reconnect_min=0.05, reconnect_max=0.3)
    await refused_login_backs_off(rig, driver)
    rig.sim.knobs.password = "wrong"  # the projector's password is changed to match
    await until(lambda: driver.online, timeout=3)


async def test_challenge_without_a_configured_password_is_auth_failed(rig_factory: Any) -> None:
    rig = await rig_factory(password="secret")
    driver = await rig.driver(password=None)
    await until(lambda: driver.state["offline_reason"] == "auth_failed")


async def test_power_cycle_maps_startup_and_cooling(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.5, cooldown=1.0)
    driver = await rig.online()
    powers: list[str] = []
    rig.sim.add_listener(lambda key, value: powers.append(str(value)) if key == "power" else None)
    assert await driver.execute("power_on") is None
    assert driver.state["power"] == "warming"  # known before the ack returns
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("power_off")
    assert driver.state["power"] == "cooling"
    await until(lambda: driver.state["power"] == "off")
    assert rig.values("power") == ["off", "warming", "on", "cooling", "off"]
    assert powers == ["startup", "on", "cooling1", "cooling2", "standby"]


async def test_commands_during_warmup_are_held_until_it_ends(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.4)
    driver = await rig.online()
    await driver.execute("power_on")
    await driver.execute("select_input", {"input": "HDMI 2"})  # held: refused in startup
    assert driver.state["power"] == "on" and driver.state["input"] == "HDMI 2"
    assert rig.sim.input == "hdmi2"
    await driver.execute("power_off")
    await driver.execute("power_on")  # held through the cool-down, then done
    assert rig.sim.power == "startup" and driver.state["power"] == "warming"


async def test_commands_during_warmup_can_be_refused_as_busy(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.5)
    driver = await rig.online(lockout="reject")
    await driver.execute("power_on")
    for action, args in (("select_input", {"input": "HDMI 1"}), ("power_off", {})):
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.BUSY and "warming" in str(err)
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("select_input", {"input": "HDMI 1"})


async def test_input_by_name_or_adcp_name_and_config_names(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", inputs=["hdmi1", "hdmi2", "hdbaset"])
    driver = await rig.online(inputs={"hdmi1": "Laptop", "hdmi2": "Wall plate", "hdbaset": "Stage"})
    assert driver.state["inputs"] == ["Laptop", "Wall plate", "Stage"]
    await driver.execute("select_input", {"input": "stage"})
    assert driver.state["input"] == "Stage" and rig.sim.input == "hdbaset"
    await driver.execute("select_input", {"input": "hdmi2"})
    assert driver.state["input"] == "Wall plate"
    rig.sim.set_input("hdmi1")
    await until(lambda: driver.state["input"] == "Laptop")
    err = await error_of(driver.execute("select_input", {"input": "SDI 9"}))
    assert err.code is ErrorCode.INVALID_ARGS and "Laptop" in str(err)
    err = await error_of(driver.execute("select_input", {"input": "dvi"}))  # this model has none
    assert err.code is ErrorCode.INVALID_ARGS and "err_val" in str(err)
    assert driver.online


async def test_picture_mute(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online()
    await until(lambda: driver.state.get("video_mute") is False)
    await driver.execute("set_video_mute", {"mute": True})
    assert driver.state["video_mute"] is True and rig.sim.blank
    rig.sim.set_blank(False)
    await until(lambda: driver.state["video_mute"] is False)


async def test_device_errors_map_to_error_codes(rig_factory: Any) -> None:
    rig = await rig_factory(power="off")
    driver = await rig.online()
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))  # standby
    assert err.code is ErrorCode.BUSY and "err_inactive" in str(err)
    rig.sim.knobs.unsupported = ["blank"]
    rig.sim.press_power(True)
    await until(lambda: driver.state["power"] == "on")
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))
    assert err.code is ErrorCode.DEVICE_ERROR and "err_cmd" in str(err)
    assert driver.online  # a projector that says no is still online


async def test_errors_warnings_and_light_source_hours_follow_the_projector(
    rig_factory: Any,
) -> None:
    rig = await rig_factory(light_source_hours=1000)
    driver = await rig.online()
    rig.sim.set_errors(["err_temp", "err_fan"], ["warn_light_src_life"])
    rig.sim.set_light_source_hours(1500)
    await until(
        lambda: (
            driver.state["errors"] == {"fan": "error", "light_src_life": "warning", "temp": "error"}
        )
    )
    await until(lambda: driver.state["lamp_hours"] == 1500)
    rig.sim.set_errors([], [])
    await until(lambda: driver.state["errors"] == {})


async def test_a_model_without_timers_has_no_lamp_hours(rig_factory: Any) -> None:
    rig = await rig_factory(unsupported=["timer", "serialnum"])
    driver = await rig.online()
    assert driver.state["lamp_hours"] is None and driver.state["serial_number"] is None


async def test_other_timer_names_are_configurable(rig_factory: Any) -> None:
    rig = await rig_factory(timer_key="lamp", light_source_hours=77)
    driver = await rig.online(light_source_timer="lamp")
    assert driver.state["lamp_hours"] == 77


async def test_errors_are_read_every_transition_poll_while_warming(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=30)
    driver = await rig.online(poll_interval=60, detail_interval=60)
    await driver.execute("power_on")
    rig.sim.set_errors(["err_light_src"])  # the light source fails to start
    await until(lambda: driver.state["errors"] == {"light_src": "error"})  # not in a minute


async def test_turning_on_at_the_projector_reads_input_and_mute_at_once(rig_factory: Any) -> None:
    rig = await rig_factory(input="hdmi2", warmup=0.1)
    driver = await rig.online(poll_interval=0.1, detail_interval=60)
    rig.sim.press_power(True)
    await until(lambda: driver.state["power"] == "on")
    await until(lambda: driver.state.get("input") == "HDMI 2")  # not at the details' next read
    assert driver.state["video_mute"] is False


@pytest.mark.parametrize(
    "knobs",
    [
        {"split_writes": True},
        {"coalesce_replies": 3},
        {"garbage_every": 2, "garbage_mode": "line"},
        {"garbage_every": 3, "garbage_mode": "prefix"},
        {"auth_ok": "ok"},
    ],
    ids=["split", "coalesced", "garbage-lines", "garbage-prefix", "lowercase-ok"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs, model="VPL-SPLIT", password="pw")
    driver = await rig.online(password="pw", timeout=1.0)
    assert driver.state["model"] == "VPL-SPLIT"
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert driver.state["input"] == "HDMI 2"
    assert rig.values("online") == [True]  # never dropped offline
    if "garbage_every" in knobs:
        assert any("junk" in r.message or "unexpected" in r.message for r in caplog.records)


async def test_dropped_connections_are_retried_transparently(rig_factory: Any) -> None:
    rig = await rig_factory(drop_after=3, power="on")
    driver = await rig.online()
    for name in ("HDMI 1", "HDMI 2", "HDMI 1", "HDMI 2"):
        await driver.execute("select_input", {"input": name})
        assert driver.state["input"] == name
    assert rig.sim.connections > 2 and rig.values("online") == [True]


async def test_offline_when_projector_leaves_and_back_with_fresh_state(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(timeout=0.3)
    await rig.sim.stop()
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "refused"
    assert driver.state["model"] == "VPL-FHZ75"  # last known state is kept
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE
    rig.sim.set_errors(["err_cover"])
    rig.sim.press_power(True)
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online, timeout=3)
    await until(lambda: driver.state["errors"] == {"cover": "error"})
    await until(lambda: driver.state["power"] == "on")
    assert rig.values("online") == [True, False, True]


async def test_idle_close_does_not_flap_online(rig_factory: Any) -> None:
    rig = await rig_factory(idle_timeout=0.1)
    await rig.online(poll_interval=0.25)
    before = rig.sim.connections
    # The projector closes idle sessions; the driver reconnects without going offline.
    await until(lambda: rig.sim.connections - before >= 2, timeout=10, message="2 reconnects")
    assert rig.values("online") == [True]


async def test_bad_arguments_never_reach_the_projector(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(poll_interval=60, detail_interval=60, lamp_interval=60)
    sent = sum(rig.sim.received.values())
    for action, args in [
        ("select_input", {}),
        ("select_input", {"input": 3}),
        ("set_video_mute", {"mute": "maybe"}),
        ("power_on", {"extra": 1}),
        ("select_input", {"input": "two words"}),
    ]:
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.INVALID_ARGS, (action, args, err)
    err = await error_of(driver.execute("set_audio_mute", {"mute": True}))
    assert err.code is ErrorCode.UNKNOWN_ACTION  # ADCP has picture mute only
    assert sum(rig.sim.received.values()) == sent


def test_config_defaults_validation_and_schemas() -> None:
    config = SonyAdcpConfig.model_validate({"driver": "sony_adcp", "transport": "tcp://10.0.0.5"})
    assert config.transport.port == 53595 and config.password == "Projector"
    assert config.input_words() == ["hdmi1", "hdmi2"]
    for bad in (
        {"inputs": {"HDMI 1": "Laptop"}},
        {"inputs": {"hdmi1": " "}},
        {"inputs": {"hdmi1": "Same", "hdmi2": "same"}},
        {"password": ""},
        {"light_source_timer": "Light Source"},
    ):
        with pytest.raises(ValueError):
            SonyAdcpConfig.model_validate({"driver": "sony_adcp", "transport": "tcp://h", **bad})
    schemas = SonyAdcpDriver("p", config, lambda c: None).describe_actions()
    assert set(schemas) == {"power_on", "power_off", "select_input", "set_video_mute"}
    assert schemas["set_video_mute"]["properties"]["mute"]["type"] == "boolean"
