"""Tesira driver against the Tesira simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.tesira.config import TesiraConfig
from drivers.tesira.driver import TesiraDriver
from hub.config import load_config
from hub.simulate import Simulators
from simulators.tesira import TesiraSimulator
from tests.helpers import until
from tests.rig import Rig, RigStarter, error_of

DESIGN = {
    "Level1": {"channels": 2},
    "Level2": {"channels": 1, "level": -20},
    "Mute1": {"type": "mute", "channels": 2},
}
CONTROLS = {
    "program": {"tag": "Level1", "channel": 1},
    "mic1": {"tag": "Level1", "channel": 2, "min": -40, "max": 0},
    "mic2": {"tag": "Level2", "mute_tag": "Mute1", "mute_channel": 2},
    "gate": {"tag": "Mute1", "type": "mute"},
}
DEMO = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
POINTS = 7  # program, mic1 and mic2 have a level and a mute, gate a mute


class TesiraRig(Rig[TesiraSimulator, TesiraDriver]):
    """A DSP simulator with DESIGN's blocks, drivers aimed at it, and their changes."""

    simulator_class = TesiraSimulator
    knobs = {"blocks": DESIGN}
    driver_class = TesiraDriver
    device_id = "dsp"
    settings = {
        "controls": CONTROLS,
        "poll_interval": 60,
        "timeout": 0.5,
        "connect_timeout": 1.0,
        "command_delay": 0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }

    async def online(self, **options: Any) -> TesiraDriver:
        """A driver that is online and has finished its first poll (so it is quiet now)."""
        before = gets(self.sim)
        driver = await self.driver(**options)
        await until(lambda: driver.online, message="driver online")
        points = len(driver.config.points())
        await until(lambda: gets(self.sim) >= before + points, message="first poll")
        return driver


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[TesiraRig]]:
    return partial(rigs, TesiraRig)


def gets(sim: TesiraSimulator) -> int:
    """`get` commands the simulator received."""
    return sum(n for key, n in sim.received.items() if " get " in key)


def levels(driver: TesiraDriver) -> dict[str, Any]:
    return dict(driver.state["levels"])


def mutes(driver: TesiraDriver) -> dict[str, Any]:
    return dict(driver.state["mutes"])


async def test_login_negotiates_waits_for_the_banner_and_subscribes(rig_factory: Any) -> None:
    rig = await rig_factory(banner_delay=0.2)  # a command before the banner would be ignored
    driver = await rig.online()
    assert rig.sim.unanswered() == 0 and rig.sim.connections == 1
    assert rig.sim.subscriptions() == POINTS
    assert levels(driver) == {"program": 0.0, "mic1": 0.0, "mic2": -20.0}
    assert mutes(driver) == {"program": False, "mic1": False, "mic2": False, "gate": False}
    assert driver.state["controls"]["mic1"] == {"level": True, "mute": True, "min": -40, "max": 0}
    assert driver.state["controls"]["gate"] == {
        "level": False,
        "mute": True,
        "min": None,
        "max": None,
    }
    assert driver.state["control_errors"] == {}
    assert known_before_online(rig, "mic2", -20.0)


def known_before_online(rig: TesiraRig, control: str, level: float) -> bool:
    """True when the level was published before the device first went online.

    Login subscribes: each subscribe's publish arrives before its +OK, and the first
    poll only runs once the device is online, so only those publishes could set it.
    """
    first_online = next(i for i, c in enumerate(rig.changes) if c.get("online") is True)
    known = [i for i, c in enumerate(rig.changes) if c.get("levels", {}).get(control) == level]
    return bool(known) and known[0] < first_online


async def test_every_action_on_every_control(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    sim = rig.sim
    for control, (tag, channel), level in [
        ("program", ("Level1", 1), -12.5),
        ("mic1", ("Level1", 2), -30.0),
        ("mic2", ("Level2", 1), -3.25),
    ]:
        assert await driver.execute("set_level", {"control": control, "level": level}) is None
        assert driver.state["levels"][control] == level == sim.level(tag, channel)
        await driver.execute("step_level", {"control": control, "step": 2})
        assert driver.state["levels"][control] == level + 2 == sim.level(tag, channel)
        await driver.execute("step_level", {"control": control, "step": -4.5})
        assert driver.state["levels"][control] == level - 2.5 == sim.level(tag, channel)
    for control, (tag, channel) in [
        ("program", ("Level1", 1)),
        ("mic1", ("Level1", 2)),
        ("mic2", ("Mute1", 2)),
        ("gate", ("Mute1", 1)),
    ]:
        await driver.execute("set_mute", {"control": control, "mute": True})
        assert driver.state["mutes"][control] is True and sim.mute(tag, channel) is True
        await driver.execute("toggle_mute", {"control": control})
        assert driver.state["mutes"][control] is False and sim.mute(tag, channel) is False
    assert (
        sim.received["Level1 increment level"] == 2 and sim.received["Level1 decrement level"] == 2
    )
    assert sim.received["Mute1 toggle mute"] == 2


async def test_levels_are_reported_as_entered_despite_float32(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await driver.execute("set_level", {"control": "program", "level": -98.1})
    assert rig.sim.level("Level1", 1) != -98.1  # the device keeps float32
    assert driver.state["levels"]["program"] == -98.1


async def test_configured_limits_are_enforced_before_the_device(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    sent = rig.sim.received["Level1 set level"]
    err = await error_of(driver.execute("set_level", {"control": "mic1", "level": 3}))
    assert err.code is ErrorCode.INVALID_ARGS and "mic1" in str(err)
    err = await error_of(driver.execute("set_level", {"control": "mic1", "level": -41}))
    assert err.code is ErrorCode.INVALID_ARGS
    assert rig.sim.received["Level1 set level"] == sent
    await driver.execute("set_level", {"control": "mic1", "level": -2})
    await driver.execute("step_level", {"control": "mic1", "step": 6})  # stops at max 0
    assert driver.state["levels"]["mic1"] == 0.0 == rig.sim.level("Level1", 2)
    await driver.execute("set_level", {"control": "mic1", "level": -38})
    await driver.execute("step_level", {"control": "mic1", "step": -6})  # stops at min -40
    assert driver.state["levels"]["mic1"] == -40.0


async def test_bad_arguments_never_reach_the_device(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(controls={**CONTROLS, "speech": {"tag": "Level2", "mute": False}})
    before = sum(rig.sim.received.values())
    for name, args, words in [
        ("set_level", {"control": "nope", "level": 0}, "program, mic1"),
        ("set_level", {"control": "gate", "level": 0}, "no level"),
        ("set_mute", {"control": "speech", "mute": True}, "no mute"),
        ("set_level", {"control": "program", "level": "nan"}, "level"),
        ("set_level", {"control": "program"}, "level"),
        ("set_mute", {"control": "program", "mute": "maybe"}, "mute"),
        ("step_level", {"control": "program", "step": 1, "x": 1}, "x"),
        ("recall_preset", {"preset": "bad\nname"}, "preset"),
    ]:
        err = await error_of(driver.execute(name, args))
        assert err.code is ErrorCode.INVALID_ARGS, (name, args, err)
        assert words in str(err), (name, err)
    assert sum(rig.sim.received.values()) == before


async def test_device_out_of_range_is_invalid_args_quoting_the_device(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    err = await error_of(driver.execute("set_level", {"control": "program", "level": 20}))
    assert err.code is ErrorCode.INVALID_ARGS
    assert "Value out of range: attr:level min:-100.000000 max:12.000000" in str(err)
    assert driver.online


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("-ERR WRONG_STATE", ErrorCode.BUSY),
        ("-ERR INVALID_PARAMETER nope", ErrorCode.INVALID_ARGS),
        ("-CANNOT_DELIVER", ErrorCode.DEVICE_ERROR),
        ("-GENERAL_FAILURE", ErrorCode.DEVICE_ERROR),
        ("-ERR Parse error at 3: could not parse value", ErrorCode.DEVICE_ERROR),
    ],
)
async def test_error_lines_map_to_error_codes(rig_factory: Any, line: str, code: ErrorCode) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.knobs.error_tags = {"Level2": line}
    err = await error_of(driver.execute("set_level", {"control": "mic2", "level": -1}))
    assert err.code is code and line[1:] in str(err)
    assert driver.online


async def test_missing_tags_and_wrong_blocks_are_named(rig_factory: Any) -> None:
    rig = await rig_factory()
    controls = {
        **CONTROLS,
        "ghost": {"tag": "Level9"},
        "wrong": {"tag": "Mute1", "channel": 2, "mute": False},  # a Mute block has no level
    }
    driver = await rig.online(controls=controls)
    errors = driver.state["control_errors"]
    assert set(errors) == {"ghost", "wrong"}
    assert "'Level9'" in errors["ghost"] and "address not found" in errors["ghost"]
    assert errors["ghost"].count("address not found") == 1, errors  # its level and mute alike
    assert "'level'" in errors["wrong"] and "not supported" in errors["wrong"]
    err = await error_of(driver.execute("set_level", {"control": "ghost", "level": -1}))
    assert err.code is ErrorCode.DEVICE_ERROR and "instance tag 'Level9'" in str(err)
    assert driver.online and driver.state["levels"]["program"] == 0.0  # the rest works


async def test_changes_from_the_front_panel_and_other_sessions_are_pushed(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    other = await rig.online(controls={"mic2": {"tag": "Level2"}})
    polled = gets(rig.sim)
    rig.sim.set_level("Level1", 1, -33)
    rig.sim.set_mute("Mute1", 1, True)
    await until(lambda: driver.state["levels"]["program"] == -33.0)
    await until(lambda: driver.state["mutes"]["gate"] is True)
    await other.execute("set_level", {"control": "mic2", "level": -7})
    await until(lambda: driver.state["levels"]["mic2"] == -7.0)
    assert gets(rig.sim) == polled + 1  # pushed, not polled: the one get is other's read-back


async def test_publish_between_command_and_reply_is_applied(rig_factory: Any) -> None:
    rig = await rig_factory(interleave=True)
    driver = await rig.online()
    rig.sim.set_level("Level1", 1, -30)  # held until the next command (test_tesira_sim.py)
    rig.sim.set_mute("Mute1", 1, True)
    await driver.execute("set_level", {"control": "mic1", "level": -7})
    # set → [publishes] +OK; get → +OK -7: both publishes applied, both replies matched.
    assert levels(driver) == {"program": -30.0, "mic1": -7.0, "mic2": -20.0}
    assert driver.state["mutes"]["gate"] is True


async def test_subscriptions_and_the_gets_of_a_control_go_out_together(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    assert rig.sim.burst == POINTS  # every subscribe in one write
    rig.sim.burst = 0
    asked = gets(rig.sim)
    driver.refresh(["control:mic2"])
    await until(lambda: gets(rig.sim) == asked + 2, message="a poll of mic2")
    assert rig.sim.burst == 2  # its level (Level2) and its mute (Mute1 channel 2)


async def test_publishes_between_pipelined_replies_are_applied(rig_factory: Any) -> None:
    rig = await rig_factory(interleave=True, echo=True, coalesce_replies=6)
    driver = await rig.online()
    rig.sim.set_level("Level1", 1, -30)  # held until the next command
    rig.sim.set_mute("Level1", 1, True)
    rig.sim.burst = 0
    driver.refresh(["control:program"])  # get level, get mute: one write
    # echo, two publishes, +OK; echo, +OK: one write too
    await until(lambda: driver.state["mutes"]["program"] is True, message="poll answered")
    assert driver.state["levels"]["program"] == -30.0
    assert rig.sim.burst == 2
    rig.sim.set_level("Level1", 1, -12)
    driver.refresh(["control:program"])
    await until(lambda: driver.state["levels"]["program"] == -12.0)
    assert driver.online and rig.values("online") == [True]


async def test_subscribe_initial_values_with_every_publish_interleaved(rig_factory: Any) -> None:
    rig = await rig_factory(interleave=True, echo=True)
    rig.sim.set_level("Level2", 1, -9)
    await rig.online()
    assert known_before_online(rig, "mic2", -9.0)


async def test_cr_nul_endings(rig_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(line_ending="crnul")
    driver = await rig.online()
    await driver.execute("set_level", {"control": "program", "level": -5})
    rig.sim.set_mute("Mute1", 2, True)
    await until(lambda: driver.state["mutes"]["mic2"] is True)
    assert driver.state["levels"]["program"] == -5.0
    assert not caplog.records, [r.message for r in caplog.records]  # no NUL-prefixed lines


@pytest.mark.parametrize(
    "knobs",
    [
        {"echo": True},
        {"coalesce_replies": 3},
        {"garbage_every": 3, "garbage_mode": "line"},
        {"iac_in_replies": True},
        {"line_ending": "crnul", "split_writes": True, "echo": True},
    ],
    ids=["echo", "coalesced", "garbage-lines", "iac-mid-line", "crnul-split-echo"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs)
    controls = {name: CONTROLS[name] for name in ("mic1", "mic2", "gate")}  # fewer slow bytes
    driver = await rig.online(controls=controls, timeout=1.0, connect_timeout=3.0)
    await driver.execute("set_level", {"control": "mic2", "level": -4})
    await driver.execute("set_mute", {"control": "gate", "mute": True})
    assert driver.state["levels"]["mic2"] == -4.0 and driver.state["mutes"]["gate"] is True
    rig.sim.set_level("Level1", 2, -11)
    await until(lambda: driver.state["levels"]["mic1"] == -11.0)
    assert rig.values("online") == [True]
    assert rig.sim.unanswered() == 0
    warned = [r.message for r in caplog.records]
    if "garbage_every" in knobs:
        assert any("unexpected line" in m for m in warned)
    else:
        assert not warned, warned


async def test_negotiation_mid_session_is_answered(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.renegotiate("DO 31", "WILL 1", "DONT 5")
    await until(lambda: rig.sim.unanswered() == 0)
    await driver.execute("set_mute", {"control": "program", "mute": True})


async def test_subscriptions_return_after_the_simulator_restarts(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await rig.sim.stop()
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "refused"
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online and rig.sim.subscriptions() == POINTS, timeout=3)
    await until(lambda: gets(rig.sim) >= 2 * POINTS)  # the refresh on return ran
    polled = gets(rig.sim)
    rig.sim.set_level("Level1", 2, -17)
    await until(lambda: driver.state["levels"]["mic1"] == -17.0)
    assert gets(rig.sim) == polled  # pushed, not polled
    assert rig.values("online") == [True, False, True]


async def test_poll_is_a_safety_net_for_pushes(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(subscribe_rate=60, poll_interval=0.2)
    rig.sim.set_level("Level1", 1, -44)  # the subscription may not push for a minute
    await until(lambda: driver.state["levels"]["program"] == -44.0, timeout=2)
    assert rig.sim.received["Level1 get level"] >= 1


async def test_recall_preset(rig_factory: Any) -> None:
    presets = {1001: {"name": "Quiet", "levels": {"Level1/1": -40}, "mutes": {"Mute1/1": True}}}
    rig = await rig_factory(presets=presets)
    driver = await rig.online()
    await driver.execute("recall_preset", {"preset": 1001})
    assert driver.state["preset"] == 1001
    await until(
        lambda: driver.state["levels"]["program"] == -40.0 and driver.state["mutes"]["gate"]
    )
    await driver.execute("set_level", {"control": "program", "level": 0})
    await driver.execute("recall_preset", {"preset": "Quiet"})
    await until(lambda: driver.state["levels"]["program"] == -40.0)
    assert driver.state["preset"] == "Quiet"
    await driver.execute("recall_preset", {"preset": "1001"})
    assert driver.state["preset"] == 1001
    err = await error_of(driver.execute("recall_preset", {"preset": 4242}))
    assert err.code is ErrorCode.INVALID_ARGS and "4242" in str(err)


async def test_configured_preset_names_and_control_labels(rig_factory: Any) -> None:
    """Names the design does not give: presets by number get names, controls get labels."""
    presets = {1001: {"name": "Q1", "levels": {"Level1/1": -40}}}
    rig = await rig_factory(presets=presets)
    controls = {**CONTROLS, "program": {**CONTROLS["program"], "label": "Program audio"}}
    driver = await rig.online(controls=controls, presets={1001: "Quiet room"})
    assert driver.state["presets"] == {"1001": "Quiet room"}
    assert driver.state["controls"]["program"]["label"] == "Program audio"
    assert "label" not in driver.state["controls"]["mic1"]
    await driver.execute("recall_preset", {"preset": "quiet ROOM"})
    assert driver.state["preset"] == 1001  # recalled by its number
    assert rig.sim.received["DEVICE recallPreset 1001"] == 1
    await until(lambda: driver.state["levels"]["program"] == -40.0)


async def test_banner_that_never_comes_is_a_timeout(rig_factory: Any) -> None:
    rig = await rig_factory(banner_delay=5)
    driver = await rig.driver(connect_timeout=0.2, offline_after=1)
    await until(lambda: driver.state["offline_reason"] == "timeout", timeout=3)
    rig.sim.knobs.banner_delay = 0
    await until(lambda: driver.online, timeout=3)


async def test_silent_device_goes_offline(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.1, timeout=0.1, retries=0, offline_after=2)
    rig.sim.knobs.reply_delay = 1.0  # beyond connect_timeout: logins fail too
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "timeout"
    assert driver.state["levels"]["mic2"] == -20.0  # last known state is kept
    rig.sim.knobs.reply_delay = 0
    await until(lambda: driver.online, timeout=5)


async def test_no_controls_still_notices_the_device(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(controls={}, poll_interval=0.1)
    await until(lambda: "aliases" in driver.state)
    assert driver.state["aliases"] == ["DEVICE", "Level1", "Level2", "Mute1", "SESSION"]
    assert driver.state["levels"] == {} and rig.sim.subscriptions() == 0


async def test_repeated_sets_coalesce_to_the_latest_value(rig_factory: Any) -> None:
    rig = await rig_factory(reply_delay=0.01)
    driver = await rig.online()
    calls = [
        driver.execute("set_level", {"control": "program", "level": -float(i)}) for i in range(40)
    ]
    assert await asyncio.gather(*calls) == [None] * 40
    assert rig.sim.received["Level1 set level"] <= 3
    assert driver.state["levels"]["program"] == -39.0 == rig.sim.level("Level1", 1)


def test_config_validation() -> None:
    base = {"driver": "tesira", "transport": "tcp://10.0.0.5"}
    config = TesiraConfig.model_validate(base)
    assert config.transport.port == 23 and config.command_delay == 0.02
    for controls in (
        {"bad name": {"tag": "Level1"}},
        {"x": {"tag": "Level/1"}},
        {"x": {"tag": 'Le"vel'}},
        {"x": {"tag": "Level1", "min": 0, "max": -10}},
        {"x": {"tag": "Mute1", "type": "mute", "max": 0}},
        {"x": {"tag": "Level1", "mute": False, "mute_tag": "Mute1"}},
        {"x": {"tag": "Level1", "channel": 0}},
        {"x": {"tag": "Level1", "typo": 1}},
    ):
        with pytest.raises(ValueError):
            TesiraConfig.model_validate({**base, "controls": controls})


def test_action_schemas() -> None:
    config = TesiraConfig.model_validate({"driver": "tesira", "transport": "tcp://10.0.0.5"})
    schemas = TesiraDriver("d", config, lambda c: None).describe_actions()
    assert set(schemas) == {"set_level", "step_level", "set_mute", "toggle_mute", "recall_preset"}
    assert schemas["set_level"]["required"] == ["control", "level"]
    assert schemas["set_mute"]["properties"]["mute"]["type"] == "boolean"


async def test_demo_dsp_gets_a_simulator_built_from_its_controls() -> None:
    config = load_config(DEMO)
    sims = Simulators()
    try:
        simulated = await sims.start_for(config)
        device = simulated.rooms["boardroom"].devices["dsp"]
        assert isinstance(device, TesiraConfig)
        driver = TesiraDriver("dsp", device, lambda change: None)
        await driver.start(stagger=0)
        try:
            await until(lambda: driver.online)
            assert driver.state["control_errors"] == {}
            assert set(driver.state["levels"]) == {"program", "mic1", "mic2"}
            await driver.execute("recall_preset", {"preset": "Presentation"})
            await until(
                lambda: driver.state["mutes"] == {"program": False, "mic1": True, "mic2": True}
            )
        finally:
            await driver.stop()
    finally:
        await sims.stop()


async def test_a_publish_right_behind_a_reply_is_not_undone_by_it(rig_factory: Any) -> None:
    rig = await rig_factory(coalesce_window=0.5)
    driver = await rig.online()
    rig.sim.knobs.coalesce_replies = 3  # the gets' two replies wait for the next message
    mutes_asked = rig.sim.received["Level1 get mute"]
    driver.refresh(["control:program"])  # get level and get mute, written together
    await until(lambda: rig.sim.received["Level1 get mute"] > mutes_asked, interval=0.001)
    rig.sim.set_level("Level1", 1, -24)  # pushed in the same write as the older replies
    await until(lambda: rig.values("levels")[-1]["program"] == -24.0)
    assert driver.state["levels"]["program"] == -24.0


@pytest.mark.parametrize(
    ("action", "args", "check"),
    [
        ("step_level", {"control": "program", "step": 2}, "level"),
        ("toggle_mute", {"control": "program"}, "mute"),
        ("set_level", {"control": "program", "level": -8.0}, "level"),
    ],
)
async def test_a_lost_reply_is_retried_only_for_what_does_not_add_up(
    rig_factory: Any, action: str, args: dict[str, Any], check: str
) -> None:
    """The DSP applies the command and its reply comes too late: a set is sent again
    (harmless), a step or a toggle is not (it would be applied twice) and answers timeout."""
    rig = await rig_factory()
    driver = await rig.online(retries=2)
    await driver.execute("set_level", {"control": "program", "level": -10.0})
    await driver.execute("set_mute", {"control": "program", "mute": False})
    received = dict(rig.sim.received)
    rig.sim.knobs.reply_delay = 0.8  # longer than the driver's 0.5 s timeout
    if action == "set_level":
        retries = driver.stats.retries
        task = asyncio.create_task(driver.execute(action, args))
        await until(lambda: driver.stats.retries > retries)  # the first try timed out
        rig.sim.knobs.reply_delay = 0  # the retry is answered
        assert await task is None
        assert rig.sim.level("Level1", 1) == -8.0
        return
    err = await error_of(driver.execute(action, args))
    rig.sim.knobs.reply_delay = 0
    assert err.code is ErrorCode.TIMEOUT and "may have applied it" in str(err), err
    sent = {k: n - received.get(k, 0) for k, n in rig.sim.received.items() if " get " not in k}
    assert [n for n in sent.values() if n] == [1], sent  # written once
    if check == "level":
        assert rig.sim.level("Level1", 1) == -8.0
    else:
        assert rig.sim.mute("Level1", 1) is True
    await until(lambda: driver.online)
