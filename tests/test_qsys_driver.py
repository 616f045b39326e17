"""Q-SYS QRC driver against the Q-SYS simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.actions import checking_context
from drivers.errors import ErrorCode
from drivers.qsys.codec import QrcError
from drivers.qsys.config import QsysConfig
from drivers.qsys.driver import QrcDeviceError, QsysDriver, RecallPreset, SetLevel, SetMute
from simulators.qsys import QsysSimulator
from tests.helpers import until
from tests.rig import Rig, RigStarter, error_of

CHANNELS: dict[str, Any] = {
    "program": {"level": "MainGain", "mute": "MainMute"},
    "mic1": {"component": "Mic 1", "level": "gain", "mute": "mute"},
}
FAST = {"reload_time": 0.05, "ramp_step": 0.02}


class QsysRig(Rig[QsysSimulator, QsysDriver]):
    """A Core simulator (fast reloads and ramps), drivers aimed at it, and their changes."""

    simulator_class = QsysSimulator
    knobs = FAST
    driver_class = QsysDriver
    device_id = "core"
    settings = {
        "controls": CHANNELS,
        "autopoll_rate": 0.05,
        "poll_interval": 60,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }

    async def wait_ready(self, driver: QsysDriver) -> None:
        await until(lambda: driver.online and "levels" in driver.state, message="driver online")


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[QsysRig]]:
    return partial(rigs, QsysRig)


# ---- logon and status ---------------------------------------------------------------------


async def test_logon_then_status_and_every_control_read(rig_factory: Any) -> None:
    rig = await rig_factory(user="admin", password="1234", design_name="Boardroom")
    driver = await rig.online(user="admin", password="1234")
    state = driver.state
    assert state["levels"] == {"program": -12.0, "mic1": 0.0}
    assert state["mutes"] == {"program": False, "mic1": False}
    assert state["engine_state"] == "Active" and state["design_name"] == "Boardroom"
    assert state["is_emulator"] is True and state["platform"] == "Core 110f"
    assert state["unknown_controls"] == []
    assert rig.sim.received["Logon"] == 1
    assert rig.sim.change_groups == 1


async def test_wrong_logon_is_auth_failed_and_recovers_when_fixed(rig_factory: Any) -> None:
    rig = await rig_factory(user="admin", password="right")
    driver = await rig.driver(user="admin", password="wrong")
    await until(lambda: driver.state["offline_reason"] == "auth_failed")
    assert driver.online is False
    err = await error_of(driver.execute("set_mute", {"control": "program", "mute": True}))
    assert err.code is ErrorCode.DEVICE_OFFLINE and "auth_failed" in str(err)
    rig.sim.knobs.password = "wrong"  # the integrator fixes the Core's user
    await until(lambda: driver.online, timeout=3)


async def test_core_with_access_control_and_no_credentials_configured(rig_factory: Any) -> None:
    rig = await rig_factory(user="admin", password="1234")
    driver = await rig.driver()
    await until(lambda: driver.state["offline_reason"] == "auth_failed")
    assert rig.sim.received["Logon"] == 0


async def test_logon_required_later_is_an_auth_error(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.knobs.user, rig.sim.knobs.password = "admin", "1234"  # access control switched on
    err = await error_of(driver.execute("set_level", {"control": "program", "level": -3}))
    assert err.code is ErrorCode.DEVICE_OFFLINE and "logon required (10)" in str(err)
    assert driver.state["offline_reason"] == "auth_failed"


# ---- controls -------------------------------------------------------------------------------


async def test_named_controls_set_and_read_back_before_the_ack(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await driver.execute("set_level", {"control": "program", "level": -20.5})
    assert driver.state["levels"]["program"] == -20.5 and rig.sim.value("MainGain") == -20.5
    await driver.execute("set_mute", {"control": "program", "mute": True})
    assert driver.state["mutes"]["program"] is True and rig.sim.value("MainMute") is True
    assert rig.sim.received["Control.Set"] == 2 and rig.sim.received["Control.Get"] == 2


async def test_component_controls_set_and_read_back(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await driver.execute("set_level", {"control": "mic1", "level": -6})
    await driver.execute("set_mute", {"control": "mic1", "mute": True})
    assert driver.state["levels"]["mic1"] == -6.0 and driver.state["mutes"]["mic1"] is True
    assert rig.sim.value("gain", "Mic 1") == -6.0 and rig.sim.value("mute", "Mic 1") is True
    assert rig.sim.received["Component.Set"] == 2 and rig.sim.received["Component.Get"] == 2


async def test_the_core_clamps_and_the_state_shows_what_it_did(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await driver.execute("set_level", {"control": "program", "level": 50})
    assert driver.state["levels"]["program"] == 20.0


@pytest.mark.parametrize("shape", ["notification", "result"])
@pytest.mark.parametrize("bools", ["bool", "number"])
async def test_front_panel_changes_push_through_the_change_group(
    rig_factory: Any, shape: str, bools: str
) -> None:
    rig = await rig_factory(autopoll_shape=shape, bool_values=bools)
    driver = await rig.online()
    polls = rig.sim.received["ChangeGroup.Poll"]
    rig.sim.set_control("MainGain", -30)
    rig.sim.set_component_control("Mic 1", "mute", True)
    await until(lambda: driver.state["levels"]["program"] == -30.0)
    await until(lambda: driver.state["mutes"]["mic1"] is True)
    assert rig.sim.received["ChangeGroup.Poll"] == polls  # pushed, not polled
    assert rig.sim.received["Control.Get"] == 0


async def test_ramped_level_reports_the_way_there(rig_factory: Any) -> None:
    rig = await rig_factory(ramp_step=0.02)
    driver = await rig.online(autopoll_rate=0.05)
    await driver.execute("set_level", {"control": "program", "level": 0, "ramp": 0.4})
    await until(lambda: driver.state["levels"]["program"] == 0.0)
    seen = [levels["program"] for levels in rig.values("levels")]
    between = [v for v in seen if -12.0 < v < 0.0]
    assert len(between) >= 2, seen  # intermediate values arrived by push
    assert rig.sim.value("MainGain") == 0.0


async def test_recall_preset_loads_the_snapshot(rig_factory: Any) -> None:
    rig = await rig_factory(snapshots={"Room Presets": 4})
    presets = {"meeting": {"snapshot": "Room Presets", "bank": 2}}
    driver = await rig.online(presets=presets)
    assert driver.state["presets"] == ["meeting"]
    rig.sim.set_control("MainGain", -40)
    rig.sim.save_snapshot("Room Presets", 2)
    await driver.execute("set_level", {"control": "program", "level": -5})
    await driver.execute("recall_preset", {"preset": "meeting"})
    assert driver.state["preset"] == "meeting" and rig.sim.loaded == [("Room Presets", 2)]
    await until(lambda: driver.state["levels"]["program"] == -40.0)
    err = await error_of(driver.execute("recall_preset", {"preset": "party"}))
    assert err.code is ErrorCode.INVALID_ARGS and "meeting" in str(err)


# ---- errors -----------------------------------------------------------------------------------


async def test_unknown_controls_are_reported_and_the_rest_still_works(rig_factory: Any) -> None:
    rig = await rig_factory()
    channels = {
        **CHANNELS,
        "typo": {"level": "MainGian"},
        "ghost": {"component": "Mic 9", "level": "gain"},
        "half": {"component": "Mic 1", "level": "gian"},
    }
    driver = await rig.online(controls=channels)
    assert sorted(driver.state["unknown_controls"]) == ["MainGian", "Mic 1/gian", "Mic 9/gain"]
    rig.sim.set_control("MainGain", -33)
    await until(lambda: driver.state["levels"].get("program") == -33.0)
    err = await error_of(driver.execute("set_level", {"control": "typo", "level": 0}))
    assert err.code is ErrorCode.INVALID_ARGS and "MainGian" in str(err)
    assert "unknown control (8)" in str(err)
    err = await error_of(driver.execute("set_level", {"control": "ghost", "level": 0}))
    assert err.code is ErrorCode.INVALID_ARGS and "Mic 9" in str(err)
    assert "unknown component name (7)" in str(err)
    err = await error_of(driver.execute("set_level", {"control": "half", "level": 0}))
    assert err.code is ErrorCode.INVALID_ARGS and "gian" in str(err)
    assert driver.online


async def test_json_rpc_errors_map_to_error_codes(rig_factory: Any) -> None:
    rig = await rig_factory(controls={"Label": {"type": "string", "value": "hi"}})
    driver = await rig.online(controls={"label": {"level": "Label"}})
    err = await error_of(driver.execute("set_level", {"control": "label", "level": -3}))
    assert err.code is ErrorCode.INVALID_ARGS and "invalid params (-32602)" in str(err)
    with pytest.raises(QrcDeviceError) as info:  # queued like a command: never beside a poll
        await driver._worker.command(
            partial(driver.ask, "Mixer.SetWarpDrive", {"Name": "x"}), None, "warp"
        )
    assert info.value.code is ErrorCode.DEVICE_ERROR
    assert info.value.rpc_code == QrcError.METHOD_NOT_FOUND
    assert "Mixer.SetWarpDrive" in str(info.value)
    err = await error_of(driver.execute("set_mute", {"control": "label", "mute": True}))
    assert err.code is ErrorCode.INVALID_ARGS and "no mute control 'label'" in str(err)
    err = await error_of(driver.execute("set_level", {"control": "nope", "level": 1}))
    assert err.code is ErrorCode.INVALID_ARGS and "has: label" in str(err)
    assert driver.online


async def test_standby_core_answers_busy_until_active(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.set_engine_state("Standby")
    await until(lambda: driver.state["engine_state"] == "Standby")
    err = await error_of(driver.execute("set_mute", {"control": "program", "mute": True}))
    assert err.code is ErrorCode.BUSY and "standby" in str(err).lower()
    rig.sim.set_engine_state("Active")
    await until(lambda: driver.state["engine_state"] == "Active")
    await driver.execute("set_mute", {"control": "program", "mute": True})
    assert rig.sim.value("MainMute") is True


async def test_driver_starting_against_a_standby_core(rig_factory: Any) -> None:
    rig = await rig_factory(state="Standby")
    driver = await rig.driver()
    await until(lambda: driver.online and driver.state.get("engine_state") == "Standby")
    assert rig.sim.change_groups == 0
    rig.sim.set_engine_state("Active")  # failover: this Core takes over
    await until(lambda: rig.sim.change_groups == 1)
    rig.sim.set_control("MainGain", -8)
    await until(lambda: driver.state.get("levels", {}).get("program") == -8.0)


async def test_design_reload_recreates_the_change_group(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.reload_design(code="newDesign001")
    await until(lambda: driver.state["design_code"] == "newDesign001")
    await until(lambda: rig.sim.change_groups == 1)
    assert rig.values("engine_state")[-2:] == ["Idle", "Active"]
    rig.sim.set_control("MainGain", -18)
    await until(lambda: driver.state["levels"]["program"] == -18.0)
    assert rig.sim.connections == 1  # no reconnect needed


# ---- the wire -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["notification", "result"])
async def test_notifications_between_request_and_response(rig_factory: Any, shape: str) -> None:
    # AutoPoll is slow here, so the level change can only arrive interleaved before a reply.
    rig = await rig_factory(interleave=True, coalesce_replies=3, autopoll_shape=shape)
    driver = await rig.online(autopoll_rate=30)
    rig.sim.set_control("MainGain", -27)
    await driver.execute("set_mute", {"control": "program", "mute": True})
    assert driver.state["mutes"]["program"] is True
    assert driver.state["levels"]["program"] == -27.0
    await driver.execute("set_level", {"control": "mic1", "level": -9})
    assert driver.state["levels"] == {"program": -27.0, "mic1": -9.0}
    assert rig.values("online") == [True]


async def test_change_group_requests_go_out_together_and_match_by_id(rig_factory: Any) -> None:
    """The two adds, then Poll with AutoPoll, each pair in one write, notifications between."""
    rig = await rig_factory(interleave=True, coalesce_replies=4)
    rig.sim.set_control("MainGain", -21)
    driver = await rig.online(autopoll_rate=30)
    assert rig.sim.burst == 2
    assert rig.sim.received["ChangeGroup.AddControl"] == 1
    assert rig.sim.received["ChangeGroup.AddComponentControl"] == 1
    assert driver.state["levels"] == {"program": -21.0, "mic1": 0.0}
    assert driver.state["unknown_controls"] == [] and rig.sim.change_groups == 1
    rig.sim.set_control("MainGain", -5)  # pushed before the answer to the next request
    await driver.execute("set_mute", {"control": "mic1", "mute": True})
    assert driver.state["levels"]["program"] == -5.0
    assert rig.values("online") == [True]


async def test_split_writes_and_garbage_frames(rig_factory: Any) -> None:
    rig = await rig_factory(garbage_every=3)
    driver = await rig.online(timeout=3)
    rig.sim.knobs.split_writes = True  # one byte per write: every message spans many reads
    await driver.execute("set_level", {"control": "mic1", "level": -4})
    rig.sim.set_control("MainGain", -2)
    await until(lambda: driver.state["levels"] == {"program": -2.0, "mic1": -4.0}, timeout=5)
    assert rig.values("online") == [True]


async def test_noop_keepalive_keeps_the_connection_open(rig_factory: Any) -> None:
    rig = await rig_factory(idle_timeout=0.5)
    await rig.online(keepalive=0.1)
    await until(lambda: rig.sim.received["NoOp"] >= 12, message="12 keep-alives, > 1 s")
    assert rig.sim.connections == 1


async def test_without_keepalive_the_core_drops_an_idle_client(rig_factory: Any) -> None:
    rig = await rig_factory(idle_timeout=0.3)
    await rig.online(keepalive=None)
    await until(lambda: rig.sim.connections >= 3, timeout=2)  # closed, reconnected, closed again
    assert rig.sim.received["NoOp"] == 0


async def test_stop_right_after_a_state_change_does_not_hang(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    driver.update(levels={"program": 1.0})  # wakes the poll scheduler as stop cancels it
    async with asyncio.timeout(2):
        await driver.stop()


# ---- config and schema ---------------------------------------------------------------------------


def test_config_checks_channels_and_credentials() -> None:
    base = {"driver": "qsys", "transport": "tcp://10.0.0.5"}
    config = QsysConfig.model_validate({**base, "controls": CHANNELS})
    assert config.transport.port == 1710 and config.keepalive == 20.0
    bad: list[dict[str, Any]] = [
        {"controls": {"x": {"component": "Mic 1"}}},
        {"controls": {"x": {"level": "A", "mute": "A"}}},
        {"controls": {"x": {"level": "A"}, "y": {"mute": "A"}}},
        {"controls": {"x": {"level": "A", "fader": "B"}}},
        {"password": "1234"},
        {"presets": {"p": {"snapshot": "S", "bank": 0}}},
    ]
    for extra in bad:
        with pytest.raises(ValidationError):
            QsysConfig.model_validate({**base, **extra})
    QsysConfig.model_validate(
        {**base, "controls": {"x": {"level": "A"}, "y": {"component": "C", "level": "A"}}}
    )


async def test_channel_labels_show_in_the_state(rig_factory: Any) -> None:
    rig = await rig_factory()
    controls = {**CHANNELS, "mic1": {**CHANNELS["mic1"], "label": "Lectern mic"}}
    driver = await rig.online(controls=controls)
    assert driver.state["controls"] == {"mic1": {"label": "Lectern mic"}}


def test_arguments_are_checked_against_the_config_ahead_of_time() -> None:
    """What `avhub check` does for a macro step; panels' commands are checked at run time."""
    config = QsysConfig.model_validate(
        {
            "driver": "qsys",
            "transport": "tcp://10.0.0.5",
            "controls": {**CHANNELS, "fader": {"level": "Fader"}},
            "presets": {"meeting": {"snapshot": "S", "bank": 1}},
        }
    )
    ahead = checking_context(config)
    SetMute.model_validate({"control": "mic1", "mute": True}, context=ahead)
    for model, args, message in (
        (SetMute, {"control": "fader", "mute": True}, "no mute control 'fader'"),
        (SetLevel, {"control": "mic2", "level": 0}, "no level control 'mic2'"),
        (RecallPreset, {"preset": "party"}, r"no preset 'party' \(has: meeting\)"),
    ):
        with pytest.raises(ValidationError, match=message):
            model.model_validate(args, context=ahead)
        model.model_validate(args)  # without the config: found out when it runs


def test_action_schemas() -> None:
    config = QsysConfig.model_validate({"driver": "qsys", "transport": "tcp://10.0.0.5"})
    schemas = QsysDriver("q", config, lambda c: None).describe_actions()
    assert set(schemas) == {"set_level", "set_mute", "recall_preset"}
    assert schemas["set_level"]["required"] == ["control", "level"]
    assert "ramp" in schemas["set_level"]["properties"]
    assert schemas["set_mute"]["properties"]["mute"]["type"] == "boolean"
