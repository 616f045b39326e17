"""Extron SIS driver against the Extron simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.extron_sis import driver as extron_driver
from drivers.extron_sis.codec import MAX_REPLY, Reply, banner, parse_reply
from drivers.extron_sis.config import ExtronSisConfig
from drivers.extron_sis.driver import ExtronSisDriver
from simulators.extron_sis import ExtronSimulator
from tests.helpers import seconds_until, until
from tests.rig import Rig, RigStarter, error_of

FEATURES = {"volume": True, "audio_mute": True, "video_mute": True}


class ExtronRig(Rig[ExtronSimulator, ExtronSisDriver]):
    """A switcher simulator (8x4), drivers aimed at it, and every change they published."""

    simulator_class = ExtronSimulator
    knobs = {"inputs": 8, "outputs": 4}
    driver_class = ExtronSisDriver
    device_id = "switcher"
    settings = {
        "poll_interval": 0.2,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "prompt_wait": 0.05,
        **FEATURES,
    }

    async def wait_ready(self, driver: ExtronSisDriver) -> None:
        """Wait until the driver is online and its first polls are complete."""
        cfg = driver.config
        keys = ["routes", "audio_routes" if cfg.audio else "routes"]
        keys += ["levels"] if cfg.volume else []
        keys += ["mutes"] if cfg.audio_mute else []
        keys += ["video_mutes"] if cfg.video_mute else []

        def complete() -> bool:
            size = len(driver.outputs)
            return (
                driver.online
                and bool(size)
                and all(len(driver.state.get(key) or {}) == size for key in keys)
            )

        await until(complete, message="first polls")


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[ExtronRig]]:
    return partial(rigs, ExtronRig)


def sim_routes(ties: dict[int, int]) -> dict[str, int | None]:
    return {str(o): i or None for o, i in ties.items()}


# ---- login -------------------------------------------------------------------------


async def test_password_login_sets_verbose_3_and_reads_identity_and_size(rig_factory: Any) -> None:
    rig = await rig_factory(password="extron", model="DXP 84 HDMI", firmware="2.01")
    driver = await rig.online(password="extron")
    state = driver.state
    assert state["login"] == "administrator"
    assert (state["model"], state["firmware"], state["part_number"]) == (
        "DXP 84 HDMI",
        "2.01",
        "60-882-01",
    )
    assert state["size"] == {"inputs": 8, "outputs": 4}  # asked with `I`
    assert rig.sim.verbose_modes() == [3]
    assert state["routes"] == {"1": 1, "2": 2, "3": 3, "4": 4}
    assert state["audio_routes"] == state["video_routes"] == state["routes"]
    assert state["levels"] == {"1": 0, "2": 0, "3": 0, "4": 0}
    assert state["mutes"] == state["video_mutes"] == dict.fromkeys("1234", False)


async def test_switcher_without_password(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(inputs=8, outputs=4)
    assert "login" not in driver.state
    assert rig.sim.received["I"] == 0  # size from the config
    assert rig.sim.verbose_modes() == [3]


async def test_user_password_logs_in_as_user(rig_factory: Any) -> None:
    rig = await rig_factory(password="admin", user_password="guest")
    driver = await rig.online(password="guest")
    assert driver.state["login"] == "user"
    await driver.execute("route", {"input": 2, "output": 1})
    err = await error_of(driver.execute("save_preset", {"preset": 1}))
    assert err.code is ErrorCode.DEVICE_ERROR
    assert "E24" in str(err) and "administrator password" in str(err)


async def test_wrong_password_is_auth_failed_with_long_backoff(rig_factory: Any) -> None:
    rig = await rig_factory(password="right")
    driver = await rig.driver(password="wrong", reconnect_min=0.05, reconnect_max=0.3)
    await until(lambda: driver.state["offline_reason"] == "auth_failed")
    first = rig.sim.connections
    took = await seconds_until(lambda: rig.sim.connections >= first + 3, message="3 more tries")
    assert took >= 2 * 0.3 * 0.8, took  # penalised backoff (reconnect_max), not a tight loop
    rig.sim.knobs.password = "wrong"
    await until(lambda: driver.online, timeout=3)


async def test_switcher_asking_for_a_password_when_none_is_configured(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(password="secret")
    driver = await rig.driver()
    await until(lambda: driver.state["offline_reason"] == "auth_failed")
    assert any("none is configured" in r.getMessage() for r in caplog.records)


async def test_serial_gateway_has_no_banner_and_the_driver_probes_with_q(
    rig_factory: Any,
) -> None:
    rig = await rig_factory(serial=True, password="not-asked-on-rs232")
    transport = f"socket://127.0.0.1:{rig.sim.port}"  # RS-232 behind a serial-to-IP gateway
    driver = await rig.driver(transport=transport, prompt_wait=5)
    await rig.wait_ready(driver)
    assert rig.sim.received["Q"] >= 1 and driver.state["firmware"] == "1.23"
    assert "model" not in driver.state  # no banner on RS-232
    assert rig.sim.verbose_modes() == [3]  # 1 by default on RS-232; 3 tags the answers
    rig.sim.press_tie(2, 4)
    await until(lambda: driver.state["routes"]["4"] == 2)


# ---- actions -------------------------------------------------------------------------


async def test_route_ties_breakaway_untie_and_tie_to_all(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    await driver.execute("route", {"input": 5, "output": 2})
    assert driver.state["routes"]["2"] == 5  # published before the ack
    assert rig.sim.video_ties[2] == rig.sim.audio_ties[2] == 5
    await driver.execute("route", {"input": 7, "output": "3", "kind": "audio"})
    assert driver.state["audio_routes"]["3"] == 7 and driver.state["routes"]["3"] == 3
    await driver.execute("route", {"input": 6, "output": 3, "kind": "video"})
    assert driver.state["video_routes"]["3"] == 6 and driver.state["audio_routes"]["3"] == 7
    await driver.execute("route", {"input": None, "output": 4})
    await driver.execute("route", {"input": 0, "output": 1, "kind": "audio"})
    assert driver.state["routes"]["4"] is None and driver.state["audio_routes"]["1"] is None
    assert driver.state["video_routes"] == sim_routes(rig.sim.video_ties)
    assert driver.state["audio_routes"] == sim_routes(rig.sim.audio_ties)
    await driver.execute("route", {"input": 8})
    assert driver.state["routes"] == dict.fromkeys("1234", 8)
    assert rig.sim.audio_ties == dict.fromkeys(range(1, 5), 8)


async def test_route_checks_the_matrix_size_before_sending(rig_factory: Any) -> None:
    rig = await rig_factory(audio=False)
    driver = await rig.online(audio=False, poll_interval=60)
    assert "audio_routes" not in driver.state
    sent = rig.sim.received.copy()
    for args in (
        {"input": 9, "output": 1},
        {"input": 1, "output": 5},
        {"input": 1, "kind": "audio"},
    ):
        err = await error_of(driver.execute("route", args))
        assert err.code is ErrorCode.INVALID_ARGS, args
    err = await error_of(driver.execute("route", {"input": -1}))
    assert err.code is ErrorCode.INVALID_ARGS
    assert rig.sim.received == sent


async def test_levels_and_mutes(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    assert driver.state["unavailable_actions"] == []
    await driver.execute("set_level", {"control": "2", "level": -14})
    assert driver.state["levels"]["2"] == -14 and rig.sim.volumes[2] == 50
    await driver.execute("set_level", {"control": "1", "level": -85})
    assert driver.state["levels"]["1"] == -85 and rig.sim.volumes[1] == 0
    await driver.execute("set_mute", {"control": "3", "mute": True})
    assert driver.state["mutes"]["3"] is True and rig.sim.audio_mutes[3] is True
    await driver.execute("set_video_mute", {"mute": True, "output": 4})
    assert driver.state["video_mutes"] == {"1": False, "2": False, "3": False, "4": True}
    await driver.execute("set_video_mute", {"mute": True})
    assert driver.state["video_mutes"] == dict.fromkeys("1234", True)
    assert all(rig.sim.video_mutes.values())
    for bad in (
        {"control": "5", "level": 0},
        {"control": "left", "level": 0},
        {"control": "1", "level": 3},
    ):
        err = await error_of(driver.execute("set_level", bad))
        assert err.code is ErrorCode.INVALID_ARGS, bad


async def test_models_without_volume_or_mutes_do_not_offer_them(rig_factory: Any) -> None:
    rig = await rig_factory(volume=False, audio_mute=False, video_mute=False)
    driver = await rig.online(volume=False, audio_mute=False, video_mute=False)
    absent = {"set_level", "set_mute", "set_video_mute"}
    assert set(driver.state["unavailable_actions"]) == absent
    assert rig.values("unavailable_actions") == []  # in the state from the start: never a change
    assert driver.describe_actions()["route"]["required"] == ["input"]
    assert "levels" not in driver.state and "mutes" not in driver.state
    err = await error_of(driver.execute("set_level", {"control": "1", "level": -10}))
    assert err.code is ErrorCode.UNKNOWN_ACTION and "volume is off" in str(err)
    err = await error_of(driver.execute("set_video_mute", {"mute": True}))
    assert err.code is ErrorCode.UNKNOWN_ACTION and "video_mute is off" in str(err)
    assert not any(rig.sim.video_mutes.values())  # refused before reaching the switcher


async def test_presets(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    await driver.execute("route", {"input": 6, "output": 1})
    await driver.execute("save_preset", {"preset": 3})
    await driver.execute("route", {"input": 2, "output": 1})
    await driver.execute("recall_preset", {"preset": 3})
    assert driver.state["preset"] == 3
    assert driver.state["routes"]["1"] == 6  # re-read before the ack
    err = await error_of(driver.execute("recall_preset", {"preset": 9}))
    assert err.code is ErrorCode.INVALID_ARGS and "E11" in str(err)


TIE = ("route", {"input": 1, "output": 1}, "!")


@pytest.mark.parametrize(
    ("action", "args", "key", "error", "code"),
    [
        (*TIE, "E01", ErrorCode.INVALID_ARGS),
        (*TIE, "E10", ErrorCode.DEVICE_ERROR),
        ("recall_preset", {"preset": 1}, ".", "E11", ErrorCode.INVALID_ARGS),
        (*TIE, "E12", ErrorCode.INVALID_ARGS),
        ("set_level", {"control": "1", "level": 0}, "V", "E13", ErrorCode.INVALID_ARGS),
        ("route", {"input": 1, "output": 1, "kind": "audio"}, "$", "E14", ErrorCode.DEVICE_ERROR),
        ("route", {"input": 1, "kind": "video"}, "&", "E17", ErrorCode.DEVICE_ERROR),
        (*TIE, "E21", ErrorCode.INVALID_ARGS),
        (*TIE, "E22", ErrorCode.BUSY),
        ("save_preset", {"preset": 1}, ",", "E24", ErrorCode.DEVICE_ERROR),
        ("set_mute", {"control": "1", "mute": True}, "Z", "E25", ErrorCode.DEVICE_ERROR),
        ("set_video_mute", {"mute": True}, "B", "E26", ErrorCode.DEVICE_ERROR),
        (*TIE, "E27", ErrorCode.INVALID_ARGS),
        (*TIE, "E28", ErrorCode.DEVICE_ERROR),
        (*TIE, "E99", ErrorCode.DEVICE_ERROR),
    ],
)
async def test_error_codes_map_to_panel_errors(
    rig_factory: Any, action: str, args: dict[str, Any], key: str, error: str, code: ErrorCode
) -> None:
    rig = await rig_factory(errors={key: error})
    driver = await rig.driver(poll_interval=60)
    await until(lambda: driver.online and "routes" in driver.state)
    err = await error_of(driver.execute(action, args))
    assert err.code is code, err
    assert error in str(err)
    assert driver.online  # a switcher that says no is still online


async def test_real_range_errors_from_a_smaller_switcher(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.driver(inputs=16, outputs=16, poll_interval=60)
    await until(lambda: driver.online and "routes" in driver.state)
    err = await error_of(driver.execute("route", {"input": 12, "output": 1}))
    assert err.code is ErrorCode.INVALID_ARGS and "E01 (invalid input number)" in str(err)
    err = await error_of(driver.execute("route", {"input": 1, "output": 12}))
    assert err.code is ErrorCode.INVALID_ARGS and "E12 (invalid output number)" in str(err)


# ---- pushes ---------------------------------------------------------------------------


async def test_front_panel_changes_arrive_without_polling(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    sim = rig.sim
    sim.press_tie(7, 2)
    await until(lambda: driver.state["routes"]["2"] == 7)
    sim.press_tie(3, kind="audio")
    await until(lambda: driver.state["audio_routes"] == dict.fromkeys("1234", 3))
    sim.set_volume(1, 40)
    await until(lambda: driver.state["levels"]["1"] == -24)
    sim.set_audio_mute(2, True)
    await until(lambda: driver.state["mutes"]["2"] is True)
    sim.set_video_mute(3, True)
    await until(lambda: driver.state["video_mutes"]["3"] is True)
    sim.press_quick([(6, 1), (6, 4)])  # `Qik` only: the driver reads the table again
    await until(lambda: driver.state["routes"]["1"] == 6 and driver.state["routes"]["4"] == 6)
    await driver.execute("save_preset", {"preset": 2})
    sim.press_tie(1, 1)
    sim.press_preset(2)  # `Rpr02` only
    await until(lambda: driver.state.get("preset") == 2 and driver.state["routes"]["1"] == 6)
    assert driver.state["video_routes"] == sim_routes(sim.video_ties)
    assert driver.state["audio_routes"] == sim_routes(sim.audio_ties)


async def test_notice_between_command_and_reply_is_applied_and_not_taken_as_reply(
    rig_factory: Any,
) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    rig.sim.knobs.interleave = True
    before = rig.sim.notices["Tie"]
    await driver.execute("route", {"input": 3, "output": 1})
    assert rig.sim.notices["Tie"] > before  # the front panel really did tie output 4 first
    assert driver.state["routes"]["1"] == 3
    assert driver.state["routes"]["4"] == rig.sim.video_ties[4] != 4
    # A "next line is the answer" driver would read the notice as the volume or the tie table.
    await driver.execute("set_level", {"control": "2", "level": -20})
    await driver.execute("save_preset", {"preset": 1})
    await driver.execute("recall_preset", {"preset": 1})  # answer, then two table reads
    await driver.execute("route", {"input": 5, "output": 4})
    assert driver.state["levels"]["2"] == -20
    assert driver.state["routes"] == sim_routes(rig.sim.video_ties)
    assert driver.state["routes"]["4"] == 5  # notice (output 4) first, then the answer
    assert rig.values("online") == [True]


# ---- pipelined polls ---------------------------------------------------------------


async def test_a_poll_goes_out_in_one_write(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    # video table, audio table, four volumes, the mute table: one write, seven commands
    assert rig.sim.burst == 7
    assert driver.state["routes"] == sim_routes(rig.sim.video_ties)
    assert driver.state["levels"] == {"1": 0, "2": 0, "3": 0, "4": 0}


async def test_notices_between_pipelined_answers_are_applied_in_stream_order(
    rig_factory: Any,
) -> None:
    """Before each command the front panel ties output 4 anew; its notice precedes the answer.

    The seven answers of a poll and the seven notices between them come in one write. A
    tie table applied once the whole poll is answered would undo the notices behind it.
    """
    rig = await rig_factory(interleave=True, coalesce_replies=14)
    driver = await rig.online(poll_interval=60)
    ties_before = rig.sim.notices["Tie"]
    driver.refresh()
    await until(lambda: rig.sim.notices["Tie"] == ties_before + 7, message="a poll")
    await until(lambda: driver.state["routes"] == sim_routes(rig.sim.video_ties))
    assert rig.sim.burst == 7
    assert driver.state["audio_routes"] == sim_routes(rig.sim.audio_ties)
    assert rig.values("online") == [True]


async def test_a_poll_that_finds_the_switcher_unchanged_parses_none_of_its_answers(
    rig_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.05, timeout=5)  # no reconnect: it parses anew
    parsed: list[bytes] = []

    def counted(line: bytes) -> tuple[Reply, str]:
        parsed.append(line)
        return parse_reply(line)

    tables = rig.sim.received["VC"]
    await until(lambda: rig.sim.received["VC"] >= tables + 4, message="two more polls")
    monkeypatch.setattr(extron_driver, "parse_reply", counted)
    tables = rig.sim.received["VC"]
    await until(lambda: rig.sim.received["VC"] >= tables + 6, message="three more polls")
    assert parsed == []
    rig.sim.set_volume(2, 32)  # a notice is parsed, and the next poll's answers once each
    await until(lambda: driver.state["levels"]["2"] == -32)
    tables = rig.sim.received["VC"]
    await until(lambda: rig.sim.received["VC"] >= tables + 6, message="three more polls")
    assert 1 < len(parsed) <= 8  # the notice, then at most the seven answers of one poll


async def test_a_poll_answer_like_the_last_one_still_undoes_a_change_it_contradicts(
    rig_factory: Any,
) -> None:
    """Answers equal to the last ones are not parsed again only while nothing changed
    the state since: here a notice says what the switcher's next answers deny."""
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.05, timeout=5)
    truth = sim_routes(rig.sim.video_ties)
    assert truth["1"] != 5 and rig.sim.audio_mutes[3] is False
    routes, mutes = len(rig.values("routes")), len(rig.values("mutes"))
    rig.sim.broadcast(b"Out01 In05 Vid\r\nAmt03*1\r\n")  # not what the switcher did
    await until(lambda: len(rig.values("mutes")) >= mutes + 2, message="mute notice, undone")
    assert [r["1"] for r in rig.values("routes")[routes:]] == [5, truth["1"]]
    assert [m["3"] for m in rig.values("mutes")[mutes:]] == [True, False]
    assert driver.state["routes"] == truth and not driver.state["mutes"]["3"]


async def test_a_switcher_with_command_delay_is_never_pipelined(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60, command_delay=0.005)
    driver.refresh()
    polls = rig.sim.received["VM"]
    await until(lambda: rig.sim.received["VM"] > polls, message="another poll")
    assert rig.sim.burst == 1
    assert driver.state["routes"] == sim_routes(rig.sim.video_ties)


async def test_slider_storm_is_coalesced_and_paced(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60, command_delay=0.04)
    before = rig.sim.notices["Volume"]
    calls = []
    started = time.monotonic()
    for i in range(100):
        calls.append(
            asyncio.ensure_future(
                driver.execute("set_level", {"control": "1", "level": -(i % 60) - 1})
            )
        )
        await asyncio.sleep(0.009)
    calls.append(asyncio.ensure_future(driver.execute("set_level", {"control": "1", "level": -33})))
    await asyncio.gather(*calls)
    took = time.monotonic() - started
    sets = rig.sim.notices["Volume"] - before
    # 101 requests, 9 ms apart, became at most one per command_delay (40 ms)
    assert sets <= took / 0.04 + 2, (sets, took)
    assert rig.sim.volumes[1] == 31 and driver.state["levels"]["1"] == -33


async def test_reconnect_sets_verbose_mode_again_and_pushes_resume(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    first = rig.sim.connections
    for session in list(rig.sim.sessions):
        session.abort()
    await until(lambda: rig.sim.connections > first and rig.sim.verbose_modes() == [3])
    rig.sim.press_tie(8, 3)
    await until(lambda: driver.state["routes"]["3"] == 8)


async def test_banner_mid_session_means_the_switcher_restarted(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    verbose_sets = rig.sim.received["CV"]
    rig.sim.broadcast(banner(2012, "DXP 88 HDMI", "1.23", "60-882-01").encode())
    await until(lambda: rig.sim.received["CV"] > verbose_sets)
    assert driver.online


# ---- connection --------------------------------------------------------------------


async def test_the_tail_of_an_over_long_line_is_never_taken_for_a_push(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    rig.sim.broadcast(b"x" * (MAX_REPLY + 1))  # no line end yet: dropped as soon as too long
    await until(lambda: "frame over" in caplog.text, message="over-long line reported")
    rig.sim.press_tie(2, 4)  # its notice ends the same over-long line: dropped with it
    rig.sim.press_tie(3, 4)  # a line of its own
    await until(lambda: driver.state["routes"]["4"] == 3)
    assert [routes["4"] for routes in rig.values("routes")] == [4, 3]


@pytest.mark.parametrize(
    "knobs",
    [
        {"split_writes": True},
        {"coalesce_replies": 3},
        {"garbage_every": 2, "garbage_mode": "line"},
        {"garbage_every": 3, "garbage_mode": "prefix"},
        {"pad": False},
        {"iac_burst": True},
    ],
    ids=["split", "coalesced", "garbage-lines", "garbage-prefix", "unpadded", "telnet-iac"],
)
async def test_awkward_byte_streams(
    rig_factory: Any, knobs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "avhub")
    rig = await rig_factory(**knobs, password="pw", model="SPLIT 84")
    driver = await rig.online(password="pw", timeout=1.0, poll_interval=0.3)
    assert driver.state["model"] == "SPLIT 84"
    await driver.execute("route", {"input": 6, "output": 2})
    await driver.execute("set_level", {"control": "3", "level": -10})
    rig.sim.press_tie(4, 1)
    await until(lambda: driver.state["routes"]["1"] == 4)
    assert driver.state["routes"] == {"1": 4, "2": 6, "3": 3, "4": 4}
    assert driver.state["levels"]["3"] == -10
    assert rig.values("online") == [True]
    if "garbage_every" in knobs:
        assert any("junk" in r.message or "bad data" in r.message for r in caplog.records)


async def test_polls_keep_an_idle_session_open(rig_factory: Any) -> None:
    rig = await rig_factory(idle_timeout=0.5)
    await rig.online(poll_interval=0.1)
    tables = rig.sim.received["VC"]  # a video and an audio tie table every poll
    await until(lambda: rig.sim.received["VC"] >= tables + 24, message="12 polls, > 1 s")
    assert rig.sim.connections == 1


async def test_offline_when_the_switcher_goes_away_and_back_with_fresh_state(
    rig_factory: Any,
) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.2, timeout=0.3)
    await rig.sim.stop()
    await until(lambda: not driver.online, timeout=3)
    assert driver.state["offline_reason"] in ("refused", "closed")
    err = await error_of(driver.execute("route", {"input": 1, "output": 1}))
    assert err.code is ErrorCode.DEVICE_OFFLINE
    rig.sim.press_tie(2, 2)  # changed while nobody listened
    await rig.sim.start(port=rig.sim.port)
    await until(lambda: driver.online and driver.state["routes"]["2"] == 2, timeout=3)
    assert rig.values("online") == [True, False, True]


async def test_large_matrix_is_read_sixteen_outputs_at_a_time(rig_factory: Any) -> None:
    rig = await rig_factory(inputs=40, outputs=36)
    driver = await rig.online(poll_interval=60)
    assert len(driver.state["routes"]) == 36
    assert driver.state["routes"]["36"] == 36
    rig.sim.press_tie(40, 33)
    await until(lambda: driver.state["routes"]["33"] == 40)


def test_action_schemas_and_default_port() -> None:
    config = ExtronSisConfig.model_validate({"driver": "extron_sis", "transport": "tcp://10.0.0.5"})
    assert config.transport.port == 23
    driver = ExtronSisDriver("x", config, lambda c: None)
    schemas = driver.describe_actions()
    assert schemas["route"]["properties"]["kind"]["default"] == "all"
    assert set(driver.state["unavailable_actions"]) == {"set_level", "set_mute", "set_video_mute"}


async def test_stop_right_after_a_state_change_ends_every_task(rig_factory: Any) -> None:
    # The poll scheduler sleeps until a state change wakes it; a change published in the
    # same loop iteration as stop() must not swallow the cancellation (Python 3.11's
    # asyncio.wait_for did, and stop() then waited forever).
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60)
    await asyncio.sleep(0.05)
    driver.update(probe=1)
    async with asyncio.timeout(2):
        await driver.stop()


# ---- names -------------------------------------------------------------------------

NAMES = {
    "input_names": {1: "Lectern PC", 2: "Document camera"},
    "output_names": {1: "Left projector", 2: "Right projector"},
}


async def test_named_inputs_and_outputs_show_beside_the_numbers_and_route_by_name(
    rig_factory: Any,
) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=60, **NAMES)
    assert driver.state["inputs"] == {"1": "Lectern PC", "2": "Document camera"}
    assert driver.state["outputs"] == {"1": "Left projector", "2": "Right projector"}
    await driver.execute("route", {"input": "Document camera", "output": "Right projector"})
    assert rig.sim.video_ties[2] == 2 and driver.state["routes"]["2"] == 2
    await driver.execute("route", {"input": "lectern pc", "output": 1})  # any case, or numbers
    assert rig.sim.video_ties[1] == 1
    await driver.execute("set_mute", {"control": "Left projector", "mute": True})
    assert rig.sim.audio_mutes[1] is True
    await driver.execute("set_video_mute", {"mute": True, "output": "Right projector"})
    assert rig.sim.video_mutes[2] is True and not rig.sim.video_mutes[1]
    sent = rig.sim.received.copy()
    for args in ({"input": "Laptop", "output": 1}, {"input": 1, "output": "Ceiling"}):
        err = await error_of(driver.execute("route", args))
        assert err.code is ErrorCode.INVALID_ARGS and "named" in str(err), args
    assert rig.sim.received == sent


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"input_names": {9: "Spare"}}, "there is no input 9"),
        ({"output_names": {1: "Left", 2: "left"}}, "outputs 1 and 2 are both 'left'"),
        ({"input_names": {1: "2"}}, "input 1 needs a name, not a number"),
    ],
)
def test_names_must_fit_the_switcher_and_be_told_apart(names: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExtronSisConfig.model_validate(
            {"driver": "extron_sis", "transport": "tcp://10.0.0.1", "inputs": 8, **names}
        )
