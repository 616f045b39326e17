"""PJLink driver against the PJLink simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.pjlink.config import PjlinkConfig
from drivers.pjlink.driver import CLASS2_ACTIONS, PjlinkDriver
from simulators.pjlink import PjlinkSimulator
from tests.helpers import seconds_until, until
from tests.rig import Rig, RigStarter, error_of

FAST = {"warmup": 0.2, "cooldown": 0.2}


class PjlinkRig(Rig[PjlinkSimulator, PjlinkDriver]):
    """A projector simulator (fast warm-up), drivers aimed at it, and their changes."""

    simulator_class = PjlinkSimulator
    knobs = FAST
    driver_class = PjlinkDriver
    device_id = "proj"
    settings = {
        "poll_interval": 0.2,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "transition_poll": 0.05,
        "detail_interval": 0.2,
        "power_settle": 0,
    }

    async def wait_ready(self, driver: PjlinkDriver) -> None:
        await until(lambda: driver.online and "inputs" in driver.state, message="driver online")
        await until(
            lambda: "power" in driver.state and "lamps" in driver.state, message="first polls"
        )


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[PjlinkRig]]:
    return partial(rigs, PjlinkRig)


async def test_open_projector_reports_identity_and_state(rig_factory: Any) -> None:
    rig = await rig_factory(manufacturer="EPSON", model="EB-L200F", name="Room 1")
    driver = await rig.online()
    state = driver.state
    assert state["online"] is True and state["offline_reason"] is None
    assert (state["manufacturer"], state["model"], state["name"]) == ("EPSON", "EB-L200F", "Room 1")
    assert state["pjlink_class"] == 2
    assert state["power"] == "off"
    assert state["inputs"] == ["RGB 1", "HDMI 1", "HDMI 2", "Network 1"]
    assert state["errors"]["fan"] == "ok"


async def test_password_is_checked_with_md5_digest(rig_factory: Any) -> None:
    rig = await rig_factory(password="JBMIAProjectorLink")
    driver = await rig.online(password="JBMIAProjectorLink")
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")


async def test_wrong_password_stays_offline_with_reason_and_backs_off(rig_factory: Any) -> None:
    rig = await rig_factory(password="right")
    driver = await rig.driver(password="wrong", reconnect_min=0.05, reconnect_max=0.3)
    await until(lambda: driver.state["offline_reason"] == "auth_failed")
    assert driver.online is False
    first = rig.sim.connections
    took = await seconds_until(lambda: rig.sim.connections >= first + 3, message="3 more tries")
    # Penalised backoff (reconnect_max, ±20 %) between tries: a tight loop would make
    # hundreds of tries in the time three take.
    assert took >= 2 * 0.3 * 0.8, took
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE and "auth_failed" in str(err)
    # Fix the projector's password: the hub recovers on its own.
    rig.sim.knobs.password = "wrong"
    await until(lambda: driver.online, timeout=3)


async def test_projector_wanting_a_password_when_none_is_configured(rig_factory: Any) -> None:
    rig = await rig_factory(password="secret")
    driver = await rig.driver()
    await until(lambda: driver.state["offline_reason"] == "auth_failed")


async def test_power_on_publishes_warming_then_on_in_order(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    result = await driver.execute("power_on")
    assert result is None
    assert driver.state["power"] == "warming"  # known before the ack returns
    await until(lambda: driver.state["power"] == "on")
    assert rig.values("power") == ["off", "warming", "on"]
    await driver.execute("power_off")
    await until(lambda: driver.state["power"] == "off")
    assert rig.values("power") == ["off", "warming", "on", "cooling", "off"]


async def test_commands_during_warmup_are_held_until_it_ends(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.4)
    driver = await rig.online()
    await driver.execute("power_on")
    assert driver.state["power"] == "warming"
    started = time.monotonic()
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert time.monotonic() - started > 0.2  # waited for the warm-up
    assert driver.state["power"] == "on" and driver.state["input"] == "HDMI 2"
    assert rig.sim.input == "32"


async def test_commands_during_warmup_can_be_refused_as_busy(rig_factory: Any) -> None:
    rig = await rig_factory(warmup=0.5)
    driver = await rig.online(lockout="reject")
    await driver.execute("power_on")
    err = await error_of(driver.execute("select_input", {"input": "HDMI 1"}))
    assert err.code is ErrorCode.BUSY and "warming" in str(err)
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("select_input", {"input": "HDMI 1"})


async def test_input_by_name_or_code_and_config_names(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(inputs={"31": "Laptop"})
    assert "Laptop" in driver.state["inputs"]
    await driver.execute("select_input", {"input": "laptop"})
    assert driver.state["input"] == "Laptop" and rig.sim.input == "31"
    await driver.execute("select_input", {"input": "51"})
    assert driver.state["input"] == "Network 1"
    err = await error_of(driver.execute("select_input", {"input": "SDI 9"}))
    assert err.code is ErrorCode.INVALID_ARGS and "Laptop" in str(err)
    err = await error_of(driver.execute("select_input", {"input": "39"}))  # valid code, absent
    assert err.code is ErrorCode.INVALID_ARGS and "ERR2" in str(err)


async def test_mutes(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online()
    await driver.execute("set_video_mute", {"mute": True})
    assert driver.state["video_mute"] is True and driver.state["audio_mute"] is False
    await driver.execute("set_audio_mute", {"mute": True})
    assert rig.sim.video_mute and rig.sim.audio_mute
    await driver.execute("set_video_mute", {"mute": False})
    assert driver.state["video_mute"] is False and driver.state["audio_mute"] is True


async def test_device_errors_map_to_error_codes(rig_factory: Any) -> None:
    rig = await rig_factory(err4=["AVMT"])
    driver = await rig.online()
    err = await error_of(driver.execute("select_input", {"input": "HDMI 1"}))  # off: ERR3
    assert err.code is ErrorCode.BUSY and "ERR3" in str(err)
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))
    assert err.code is ErrorCode.DEVICE_ERROR and "ERR4" in str(err)
    assert driver.online  # a device that says no is still online


async def test_error_status_and_lamp_follow_the_projector(rig_factory: Any) -> None:
    rig = await rig_factory(lamp_hours=1234)
    driver = await rig.online(lamp_interval=0.2)
    assert driver.state["lamp_hours"] == 1234
    assert driver.state["lamps"] == [{"hours": 1234, "on": False}]
    rig.sim.set_errors("020100")
    rig.sim.set_lamp_hours(1300)
    await until(lambda: driver.state["errors"]["lamp"] == "error")
    assert driver.state["errors"]["cover_open"] == "warning"
    await until(lambda: driver.state["lamp_hours"] == 1300)


async def test_laser_projector_has_no_lamp(rig_factory: Any) -> None:
    rig = await rig_factory(lamp=False, filter_hours=None)
    driver = await rig.online()
    assert driver.state["lamps"] == [] and driver.state["lamp_hours"] is None
    assert driver.state["filter_hours"] is None
    assert driver.online


async def test_class2_information_and_actions(rig_factory: Any) -> None:
    rig = await rig_factory(
        power="on", serial_number="SN42", software_version="2.1", input_names={"31": "HDMI Front"}
    )
    driver = await rig.online()
    state = driver.state
    assert state["serial_number"] == "SN42" and state["software_version"] == "2.1"
    assert state["unavailable_actions"] == []
    assert state["recommended_resolution"] == "1920x1200"
    assert state["input_terminals"]["31"] == "HDMI Front"
    assert state["input_resolution"] == "1920x1080"
    await driver.execute("set_freeze", {"freeze": True})
    assert driver.state["freeze"] is True and rig.sim.freeze
    volume = rig.sim.volume
    await driver.execute("volume_up")
    assert rig.sim.volume == volume + 1
    await driver.execute("mic_volume_down")


def test_class2_actions_are_unavailable_until_the_projector_says_it_is_class_2() -> None:
    config = PjlinkConfig.model_validate({"driver": "pjlink", "transport": "tcp://127.0.0.1"})
    driver = PjlinkDriver("p", config, lambda c: None)
    assert set(driver.state["unavailable_actions"]) == set(CLASS2_ACTIONS)


async def test_class1_projector_refuses_class2_actions(rig_factory: Any) -> None:
    rig = await rig_factory(pjclass=1, power="on")
    driver = await rig.online()
    assert driver.state["pjlink_class"] == 1
    assert set(driver.state["unavailable_actions"]) == {
        "set_freeze",
        "volume_up",
        "volume_down",
        "mic_volume_up",
        "mic_volume_down",
    }
    assert "serial_number" not in driver.state and "freeze" not in driver.state
    err = await error_of(driver.execute("volume_up"))
    assert err.code is ErrorCode.UNKNOWN_ACTION and "class 2" in str(err)


@pytest.mark.parametrize(
    "knobs",
    [
        {"split_writes": True},
        {"coalesce_replies": 3},
        {"garbage_every": 2, "garbage_mode": "line"},
        {"garbage_every": 3, "garbage_mode": "prefix"},
        {"lowercase": True},
    ],
    ids=["split", "coalesced", "garbage-lines", "garbage-prefix", "lowercase"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs, manufacturer="SPLIT", password="pw")
    driver = await rig.online(password="pw", timeout=1.0)
    assert driver.state["manufacturer"].upper() == "SPLIT"
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert driver.state["input"] == "HDMI 2"
    assert rig.values("online") == [True]  # never dropped offline
    if "garbage_every" in knobs:
        assert any("junk" in r.message or "unexpected" in r.message for r in caplog.records)


async def test_offline_when_simulator_stops_and_back_with_fresh_state(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.2, timeout=0.3)
    await rig.sim.stop()
    stopped = time.monotonic()
    await until(lambda: not driver.online, timeout=3)
    # Refused connections fail fast: offline well within one poll interval + timeout.
    assert time.monotonic() - stopped < 0.2 + 0.3 + 0.3
    assert driver.state["offline_reason"] == "refused"
    assert driver.state["manufacturer"] == "AVHUB"  # last known state is kept
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE
    rig.sim.set_input("51")
    rig.sim.set_errors("000002")
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online, timeout=3)
    await until(lambda: driver.state["errors"]["other"] == "error")
    assert rig.values("online") == [True, False, True]


async def test_silent_device_goes_offline_on_timeouts(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(timeout=0.1, connect_timeout=0.2, retries=1, offline_after=2)
    rig.sim.knobs.reply_delay = 1.0
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] == "timeout"
    rig.sim.knobs.reply_delay = 0
    await until(lambda: driver.online, timeout=3)


async def test_idle_close_does_not_flap_online(rig_factory: Any) -> None:
    rig = await rig_factory(idle_timeout=0.1)
    await rig.online(poll_interval=0.25)
    before = rig.sim.connections
    # The projector closes idle sessions; each reconnect comes after the driver saw the close.
    await until(lambda: rig.sim.connections >= before + 2, message="two idle closes")
    assert rig.values("online") == [True]


async def test_dropped_connections_are_retried_transparently(rig_factory: Any) -> None:
    rig = await rig_factory(drop_after=3, power="on")
    driver = await rig.online()
    for name in ("HDMI 1", "HDMI 2", "RGB 1", "Network 1"):
        await driver.execute("select_input", {"input": name})
        assert driver.state["input"] == name
    assert rig.values("online") == [True]


async def test_timeout_after_bounded_retries(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(timeout=0.15, connect_timeout=2, retries=2, offline_after=10)
    rig.sim.knobs.reply_delay = 0.5
    sent = rig.sim.received["AVMT"]
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))
    assert err.code is ErrorCode.TIMEOUT
    await driver.stop()  # nothing more is sent ...
    await until(lambda: not rig.sim.sessions)  # ... and the projector has read all that was
    assert rig.sim.received["AVMT"] == sent + 3  # one try and two retries, no more


async def test_repeated_sets_coalesce_to_the_latest_value(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", reply_delay=0.03)
    driver = await rig.online(poll_interval=60)
    sent = rig.sim.received["AVMT"]
    calls = [driver.execute("set_video_mute", {"mute": i % 2 == 0}) for i in range(21)]
    results = await asyncio.gather(*calls)
    assert results == [None] * 21
    sets = rig.sim.received["AVMT"] - sent
    assert sets <= 8, sets  # each set also reads back; 21 separate sets would be 42 requests
    assert driver.state["video_mute"] is True and rig.sim.video_mute is True


async def test_minimum_gap_between_requests(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(command_delay=0.05, poll_interval=60)
    started = time.monotonic()
    await driver.execute("set_video_mute", {"mute": True})  # a set and a read-back, paced
    elapsed = time.monotonic() - started
    assert elapsed >= 0.05


async def test_bad_arguments_never_reach_the_device(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online()
    sent = sum(rig.sim.received.values())
    for action, args in [
        ("select_input", {}),
        ("select_input", {"input": 3}),
        ("set_video_mute", {"mute": "maybe"}),
        ("power_on", {"extra": 1}),
        ("set_audio_mute", ["not", "a", "dict"]),
    ]:
        err = await error_of(driver.execute(action, args))
        assert err.code is ErrorCode.INVALID_ARGS, (action, args, err)
    err = await error_of(driver.execute("self_destruct", {}))
    assert err.code is ErrorCode.UNKNOWN_ACTION and "power_on" in str(err)
    assert sum(rig.sim.received.values()) - sent <= 4  # only background polls, if any ran


async def test_action_schemas_are_json_schema() -> None:
    config = PjlinkConfig.model_validate({"driver": "pjlink", "transport": "tcp://127.0.0.1"})
    schemas = PjlinkDriver("p", config, lambda c: None).describe_actions()
    assert schemas["select_input"]["required"] == ["input"]
    assert schemas["set_video_mute"]["properties"]["mute"]["type"] == "boolean"
    assert schemas["power_on"]["properties"] == {}
    assert config.transport.port == 4352


async def test_user_commands_do_not_wait_for_a_whole_poll(rig_factory: Any) -> None:
    rig = await rig_factory(power="on", reply_delay=0.04)
    driver = await rig.online(poll_interval=60, info_interval=60, lamp_interval=60)
    before, names = rig.sim.received["INF1"], rig.sim.received["INNM"]
    driver.refresh()  # info (13 requests), status and lamp polls: ~0.8 s of traffic
    await until(lambda: rig.sim.received["CLSS"] >= 1 and rig.sim.received["INF1"] > before)
    asked = sum(rig.sim.received.values())
    await driver.execute("set_video_mute", {"mute": True})
    # The set, its read-back, and at most the one poll request that was under way.
    assert sum(rig.sim.received.values()) - asked <= 3
    assert rig.sim.received["INNM"] - names < 4  # the info poll was still under way
    await until(lambda: rig.sim.received["INNM"] - names >= 4)  # and it finished afterwards


async def test_only_changed_keys_are_published(rig_factory: Any) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(poll_interval=0.05)
    await polls_done(rig.sim, 3)  # several polls of an unchanged projector
    rig.changes.clear()
    await polls_done(rig.sim, 3)
    assert rig.changes == []
    rig.sim.set_input("51")
    await until(lambda: rig.changes != [])
    await polls_done(rig.sim, 2)  # the poll that saw it, and another one
    assert rig.changes == [{"input": "Network 1"}]
    assert driver.state["input"] == "Network 1"


def failures(caplog: pytest.LogCaptureFixture) -> int:
    """Failed tries the driver logged (at debug level)."""
    return sum(1 for r in caplog.records if ": failure " in r.getMessage())


async def test_one_log_line_when_offline_and_one_when_back(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "avhub")
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.05)
    await rig.sim.stop()
    await until(lambda: not driver.online)
    failed = failures(caplog)
    await until(lambda: failures(caplog) >= failed + 5, message="many more failed polls")
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online, timeout=3)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("avhub")]
    offline = [m for m in lines if " offline: " in m]
    back = [m for m in lines if m.endswith("back online")]
    assert len(offline) == 1 and "refused" in offline[0], lines
    assert back == ["proj back online"], lines


def asked(sim: PjlinkSimulator, *bodies: str) -> dict[str, int]:
    return {body: sim.received[body] for body in bodies}


async def polls_done(sim: PjlinkSimulator, polls: int) -> float:
    """Wait until `polls` more status polls finished (each starts by asking power); returns
    how long that took."""
    start = sim.received["POWR"]
    return await seconds_until(lambda: sim.received["POWR"] > start + polls, 10, "status polls")


async def test_standby_polls_ask_power_and_rarely_errors(rig_factory: Any) -> None:
    rig = await rig_factory(power="off")
    driver = await rig.online(poll_interval=0.05, detail_interval=0.5)
    before = asked(rig.sim, "POWR", "INPT", "AVMT", "ERST", "IRES", "FREZ")
    took = await polls_done(rig.sim, 20)  # power stays fresh at poll_interval
    after = asked(rig.sim, *before)
    polls = after["POWR"] - before["POWR"]
    # Off: ERR3 is all input, mutes and freeze would give; no picture, no resolution.
    assert [after[b] - before[b] for b in ("INPT", "AVMT", "IRES", "FREZ")] == [0, 0, 0, 0]
    assert 1 <= after["ERST"] - before["ERST"] <= took / 0.5 + 2, (took, polls, after, before)
    assert driver.state["input_resolution"] is None


async def test_turning_on_reads_input_mutes_resolution_and_freeze_at_once(
    rig_factory: Any,
) -> None:
    rig = await rig_factory(power="off", input="32")
    driver = await rig.online(poll_interval=0.1, detail_interval=60)
    assert "input" not in driver.state and driver.state.get("freeze") is None
    rig.sim.press_power(True)  # front panel: the next power poll sees it
    await until(lambda: driver.state["power"] == "on", timeout=2)
    await until(lambda: driver.state.get("input") == "HDMI 2", timeout=3)
    await until(lambda: driver.state.get("input_resolution") == "1920x1080", timeout=3)
    assert driver.state["video_mute"] is False and driver.state["freeze"] is False
    rig.sim.press_power(False)
    await until(lambda: driver.state["input_resolution"] is None, timeout=2)
    assert driver.state["freeze"] is None  # nothing to freeze while off


async def test_poll_in_standby_rereads_resolution_when_turned_on(rig_factory: Any) -> None:
    rig = await rig_factory(power="off")
    driver = await rig.online(poll_in_standby=True, poll_interval=0.1, detail_interval=60)
    await until(lambda: driver.state.get("input_resolution") == "-", timeout=2)
    rig.sim.press_power(True)
    await until(lambda: driver.state["power"] == "on", timeout=2)
    await until(lambda: driver.state.get("input_resolution") == "1920x1080", timeout=3)


async def test_power_on_of_an_instant_display_reads_its_input_at_once(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", input="32", warmup=0)
    driver = await rig.online(poll_interval=5, detail_interval=60)
    assert "input" not in driver.state
    await driver.execute("power_on")
    assert driver.state["power"] == "on"
    await until(lambda: driver.state.get("input") == "HDMI 2", timeout=3)


async def test_errors_are_read_every_transition_poll_while_warming(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", warmup=30)
    driver = await rig.online(poll_interval=5, transition_poll=0.05, detail_interval=60)
    await driver.execute("power_on")
    assert driver.state["power"] == "warming"
    rig.sim.set_errors("020000")  # the lamp fails to strike
    await until(lambda: driver.state["errors"]["lamp"] == "error", timeout=3)


async def test_while_on_input_and_mutes_follow_every_poll_details_less_often(
    rig_factory: Any,
) -> None:
    rig = await rig_factory(power="on")
    driver = await rig.online(poll_interval=0.05, detail_interval=0.5)
    before = asked(rig.sim, "POWR", "INPT", "AVMT", "ERST", "IRES", "FREZ")
    rig.sim.set_input("51")
    rig.sim.set_mutes(audio=True)
    await until(lambda: driver.state["input"] == "Network 1" and driver.state["audio_mute"])
    took = await polls_done(rig.sim, 20)
    after = asked(rig.sim, *before)
    polls = after["POWR"] - before["POWR"]  # (a poll may be half done at either count)
    assert abs(after["INPT"] - before["INPT"] - polls) <= 1
    assert abs(after["AVMT"] - before["AVMT"] - polls) <= 1
    for body in ("ERST", "IRES", "FREZ"):
        assert 1 <= after[body] - before[body] <= took / 0.5 + 2, (body, took, after, before)


async def test_poll_in_standby_asks_everything_while_off(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", standby_lockout="none", input="51")
    driver = await rig.online(poll_in_standby=True)
    assert driver.state["input"] == "Network 1"
    assert driver.state["input_resolution"] == "-"  # what this projector says while off
    rig.sim.set_mutes(video=True)
    await until(lambda: driver.state["video_mute"] is True, timeout=3)


@contextlib.asynccontextmanager
async def device_that_says(greeting: bytes) -> AsyncIterator[int]:
    """A TCP device on loopback that sends `greeting` and then nothing; yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def session(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        held.append(writer)

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def offline_line(rig_factory: Any, port: int, caplog: pytest.LogCaptureFixture) -> str:
    """The one offline log line of a projector aimed at `port` that never answers."""
    rig = await rig_factory()
    driver = await rig.driver(transport=f"tcp://127.0.0.1:{port}", connect_timeout=0.2)
    await until(lambda: driver.state.get("offline_reason") == "timeout")
    lines = [r.getMessage() for r in caplog.records if " offline: " in r.getMessage()]
    assert failures(caplog) == 1 and len(lines) == 1, lines
    return lines[0]


async def test_the_offline_line_comes_with_the_first_failure_panels_see_and_names_the_address(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A projector that takes the connection and never speaks: the log says so when panels
    first see `offline_reason`, names the device once and says where it was asked."""
    caplog.set_level(logging.DEBUG, "avhub")
    async with device_that_says(b"") as port:
        line = await offline_line(rig_factory, port, caplog)
    assert line.startswith("proj offline: no ") and "proj: " not in line, line
    assert line.endswith(f"(tcp://127.0.0.1:{port}; retrying with backoff)"), line


async def test_a_device_of_another_kind_on_the_port_is_named_in_the_timeout(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Aimed at the wrong port (an Extron switcher's banner, no PJLink greeting): the log
    says what came instead of "no data from device"."""
    caplog.set_level(logging.DEBUG, "avhub")
    banner = b"(c) Copyright 2024, Extron Electronics, DXP 84 HDMI\r\n"
    async with device_that_says(banner) as port:
        line = await offline_line(rig_factory, port, caplog)
    assert "it sent b'(c) Copyright 2024, Extron Electronics, DXP 84 HDMI'" in line, line
    assert "another kind of device on this port?" in line, line
