"""VISCA-over-IP driver against the VISCA simulator over real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from drivers.errors import ErrorCode
from drivers.visca.codec import (
    CONTROL_TYPES,
    POWER_INQUIRY,
    PayloadType,
    decode_message,
    packet,
)
from drivers.visca.driver import ViscaDriver
from simulators.visca import ViscaSimulator
from tests.helpers import until
from tests.rig import Rig, RigStarter, error_of
from tests.udpproxy import UdpProxy

# strict_sequence: a camera that reports every number out of order, so the tests see
# the driver's numbering (real cameras accept any new number).
FAST = {
    "power_delay": 0.1,
    "completion_delay": 0.005,
    "preset_delay": 0.05,
    "strict_sequence": True,
}
LOSSY = {"timeout": 0.05, "completion_timeout": 0.15, "retries": 8, "offline_after": 10}


class ViscaRig(Rig[ViscaSimulator, ViscaDriver]):
    """A camera simulator on UDP (fast motors), drivers aimed at it, and their changes."""

    simulator_class = ViscaSimulator
    knobs = FAST
    driver_class = ViscaDriver
    device_id = "cam"
    settings = {
        "poll_interval": 0.2,
        "timeout": 0.2,
        "completion_timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }

    async def wait_ready(self, driver: ViscaDriver) -> None:
        await until(lambda: driver.online and "power" in driver.state, message="driver online")


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[ViscaRig]]:
    return partial(rigs, ViscaRig)


async def test_lossy_link_every_action_completes_and_state_is_right(rig_factory: Any) -> None:
    """Acceptance 1: 20% of datagrams lost each way."""
    rig = await rig_factory(power="off", drop_in=0.2, drop_out=0.2, seed=5)
    sim = rig.sim
    driver = await rig.online(**LOSSY, poll_interval=1.0)
    await driver.execute("power_on")
    assert sim.power == "on" and driver.state["power"] == "on"
    await driver.execute("pan_tilt", {"pan": 12, "tilt": 6})
    await until(lambda: sim.pan > 60 and sim.tilt > 30)
    await driver.execute("stop")
    assert not sim.moving
    await driver.execute("zoom", {"speed": 8})
    await until(lambda: sim.zoom > 1500)
    await driver.execute("zoom", {"speed": 0})
    assert not sim.moving
    assert (driver.state["pan"], driver.state["tilt"]) == (sim.pan, sim.tilt)
    assert driver.state["zoom_position"] == sim.zoom
    await driver.execute("store_preset", {"preset": 3})
    stored = sim.preset(3)
    assert stored == (sim.pan, sim.tilt, sim.zoom) and driver.state["preset"] == 3
    await driver.execute("pan_tilt", {"pan": -20, "tilt": 0})
    assert driver.state["preset"] is None  # it left the preset
    await until(lambda: sim.pan < stored[0] - 100)
    await driver.execute("recall_preset", {"preset": 3})
    await driver.execute("zoom", {"speed": -8})
    assert driver.state["preset"] is None  # so does a zoom
    await driver.execute("stop")
    assert sim.zoom < stored[2]
    await driver.execute("recall_preset", {"preset": 3})
    assert (sim.pan, sim.tilt, sim.zoom) == stored
    state = driver.state
    assert (state["pan"], state["tilt"], state["zoom_position"], state["preset"]) == (*stored, 3)
    await driver.execute("power_off")
    assert sim.power == "off" and driver.state["power"] == "off"
    assert driver.online
    # The loss really happened, and the camera's sequence errors were answered with RESETs.
    assert sim.dropped_in > 3 and sim.dropped_out > 3
    assert sim.sequence_errors >= 1 and sim.resets >= 2


async def test_sequence_error_is_answered_with_reset_and_the_command_resent(
    rig_factory: Any,
) -> None:
    """Acceptance 1: the RESET is used when the camera reports a sequence error."""
    rig = await rig_factory()
    # Time enough for every reply on a loaded machine: a resend would be a second error.
    driver = await rig.online(timeout=2.0, completion_timeout=2.0)
    assert rig.sim.resets == 1  # at login
    rig.sim.scramble_sequence()
    await driver.execute("pan_tilt", {"pan": 5, "tilt": 0})
    assert rig.sim.sequence_errors == 1 and rig.sim.resets == 2
    assert rig.sim.received["pan_tilt"] == 1 and rig.sim.moving
    await driver.execute("stop")
    assert rig.sim.sequence_errors == 1


async def test_command_completes_on_completion_not_on_ack(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", power_delay=0.3)
    driver = await rig.online()
    await driver.execute("power_on")
    assert rig.sim.power == "on"  # the ACK came 0.3 s earlier, while it was warming
    assert rig.values("power") == ["off", "warming", "on"]
    await driver.execute("power_off")
    assert rig.sim.power == "off"
    assert rig.values("power") == ["off", "warming", "on", "cooling", "off"]


async def test_lost_ack_is_retransmitted_with_the_same_sequence_number(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(timeout=0.1)
    rig.sim.knobs.drop_in = 1.0
    task = asyncio.create_task(driver.execute("pan_tilt", {"pan": 3, "tilt": 0}))
    await until(lambda: rig.sim.dropped_in >= 1)
    rig.sim.knobs.drop_in = 0.0
    await task
    # A new sequence number would have been a sequence error for the strict camera.
    assert rig.sim.sequence_errors == 0 and rig.sim.received["pan_tilt"] == 1


async def test_lost_completion_then_sequence_error_means_already_done(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", power_delay=0.2)
    driver = await rig.online(completion_timeout=0.3)
    task = asyncio.create_task(driver.execute("power_on"))
    await until(lambda: rig.sim.power == "warming")  # ACK sent
    rig.sim.knobs.drop_out = 1.0
    await until(lambda: rig.sim.power == "on" and rig.sim.dropped_out == 1)  # completion lost
    rig.sim.knobs.drop_out = 0.0
    await task
    assert rig.sim.received["power_on"] == 1  # executed once
    assert rig.sim.sequence_errors == 1 and rig.sim.resets == 2
    assert driver.state["power"] == "on"


async def test_out_of_order_and_duplicate_replies_are_matched_by_sequence_number(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "avhub.driver.visca")
    rig = await rig_factory(duplicate=0.3, reorder=0.3, reorder_delay=0.15, seed=11)
    sim = rig.sim
    # Every reply is waited for (no resend, no RESET): with the seed, the same datagrams in
    # the same order on every run, however loaded the machine.
    driver = await rig.online(timeout=1.0, completion_timeout=1.0, poll_interval=60)
    for pan, tilt, zoom in ((8, 4, 5), (-6, -3, -2), (10, 0, 3)):
        await driver.execute("pan_tilt", {"pan": pan, "tilt": tilt})
        await driver.execute("zoom", {"speed": zoom})
        await asyncio.sleep(0.05)
        await driver.execute("stop")
        assert (driver.state["pan"], driver.state["tilt"]) == (sim.pan, sim.tilt)
        assert driver.state["zoom_position"] == sim.zoom
    await driver.execute("power_off")
    assert driver.state["power"] == "off" == sim.power
    late = [r for r in caplog.records if "ignored a late or duplicate reply" in r.getMessage()]
    assert late and sim.repeats > 0  # replies came late and twice, and commands twice


async def test_camera_errors_map_to_error_codes(rig_factory: Any) -> None:
    rig = await rig_factory(power="off", presets=16)
    driver = await rig.online(presets=32)
    err = await error_of(driver.execute("pan_tilt", {"pan": 1, "tilt": 1}))  # standby: 41
    assert err.code is ErrorCode.BUSY and "not executable" in str(err)
    await driver.execute("power_on")
    err = await error_of(driver.execute("recall_preset", {"preset": 20}))  # camera: syntax
    assert err.code is ErrorCode.INVALID_ARGS and "syntax error" in str(err)
    received = sum(rig.sim.received.values())
    err = await error_of(driver.execute("recall_preset", {"preset": 40}))  # config: refused
    assert err.code is ErrorCode.INVALID_ARGS and "presets 0-31" in str(err)
    assert sum(rig.sim.received.values()) == received  # never sent
    assert driver.online


async def test_speeds_are_clamped_to_the_model_limits(rig_factory: Any) -> None:
    rig = await rig_factory(max_pan_speed=0x10, max_tilt_speed=0x08)
    driver = await rig.online(max_pan_speed=0x10, max_tilt_speed=0x08)
    await driver.execute("pan_tilt", {"pan": 500, "tilt": -500})
    assert rig.sim.drive_speeds == (0x10, -0x08)
    await driver.execute("pan_tilt", {"pan": -3, "tilt": 0})
    assert rig.sim.drive_speeds == (-3, 0)
    await driver.execute("stop")


async def test_held_joystick_does_not_flood_the_camera(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    moves = [driver.execute("pan_tilt", {"pan": i % 20 + 1, "tilt": 0}) for i in range(60)]
    moves.append(driver.execute("pan_tilt", {"pan": -7, "tilt": 2}))
    assert await asyncio.gather(*moves) == [None] * 61
    assert rig.sim.received["pan_tilt"] <= 3
    assert rig.sim.drive_speeds == (-7, 2)  # the latest motion won
    await driver.execute("stop")


async def test_positions_are_polled_while_on(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    await driver.execute("zoom", {"speed": 8})
    await until(lambda: driver.state.get("zoom_position", 0) > 500)  # by polling alone
    await driver.execute("zoom", {"speed": 0})
    assert driver.state["zoom_position"] == rig.sim.zoom


async def test_offline_after_unanswered_requests_and_online_on_the_next_reply(
    rig_factory: Any,
) -> None:
    """UDP has no connection: online is decided by replies."""
    rig = await rig_factory()
    driver = await rig.online(offline_after=3, retries=0, timeout=0.1, poll_interval=0.05)
    rig.sim.knobs.drop_in = 1.0
    await until(lambda: not driver.online, message="offline")
    assert driver.state["offline_reason"] == "timeout"
    assert rig.sim.dropped_in >= 3
    err = await error_of(driver.execute("stop"))
    assert err.code is ErrorCode.DEVICE_OFFLINE
    rig.sim.knobs.drop_in = 0.0
    await until(lambda: driver.online, message="online again")
    # The endpoint stayed open through the timeouts: still one peer for the camera.
    assert rig.sim.connections == 1


async def test_stopped_camera_is_refused_then_found_again(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=0.05)
    await rig.sim.stop()  # nothing listens: ICMP port unreachable
    await until(lambda: not driver.online, message="offline")
    assert driver.state["offline_reason"] == "refused"
    await rig.sim.start("127.0.0.1", rig.sim.port)
    await until(lambda: driver.online, message="online again")
    await driver.execute("zoom", {"speed": 2})
    assert rig.sim.moving


async def test_commands_run_between_poll_requests_keep_sequence_numbers_in_order(
    rig_factory: Any,
) -> None:
    """The base runs user commands between a poll's requests: numbers must still ascend."""
    rig = await rig_factory(reply_delay=0.01)  # a poll's three inquiries take a while
    driver = await rig.online(poll_interval=0.01)
    for i in range(10):
        polls = rig.sim.received["inquiry 090400"]
        await until(lambda n=polls: rig.sim.received["inquiry 090400"] > n, interval=0.001)
        await driver.execute("pan_tilt", {"pan": i % 5 + 1, "tilt": 0})  # mid-poll
    assert rig.sim.sequence_errors == 0 and rig.sim.resets == 1
    await driver.execute("stop")


def _is(kind: PayloadType, payload: bytes) -> Callable[[bytes], bool]:
    """Picks the datagrams that carry `payload` as a message of `kind`."""

    def pick(datagram: bytes) -> bool:
        message = decode_message(datagram)
        return message.type is kind and message.payload == payload

    return pick


async def test_a_late_reply_from_before_a_reset_does_not_answer_a_new_request(
    rig_factory: Any,
) -> None:
    """Numbering carries on across a RESET, so a stale reply matches no new message.

    The proxy keeps back the camera's "on" answer to a power inquiry; the driver
    retransmits, the camera reports a sequence error (it had answered) and the driver
    RESETs. The held "on" is then delivered while the driver reads power after
    power_off. Numbered from 0 again after the RESET, that read (after the same number
    of messages as the held one: three for the poll, one command) would carry the held
    reply's number and take "on" for its answer.
    """
    rig = await rig_factory()
    sim = rig.sim
    async with UdpProxy(("127.0.0.1", sim.port)) as proxy:
        driver = await rig.online(transport=proxy.url, poll_interval=3600)
        await until(lambda: sim.received["inquiry 090612"] == 1)  # first poll over
        await driver.execute("store_preset", {"preset": 0})
        proxy.hold = _is(PayloadType.REPLY, bytes.fromhex("90 50 02 ff"))
        driver.refresh()
        await until(lambda: sim.received["inquiry 090612"] >= 2, message="poll after RESET")
        assert proxy.held and sim.sequence_errors >= 1 and sim.resets >= 2
        proxy.release = _is(PayloadType.INQUIRY, packet(1, POWER_INQUIRY))
        await driver.execute("power_off")
        assert proxy.released  # the stale "on" came while the driver read power
        assert sim.power == "off" and driver.state["power"] == "off"
        assert rig.values("power") == ["on", "cooling", "off"]
    # Across the RESET no number was given to two different messages.
    numbered: dict[int | None, bytes] = {}
    for datagram in proxy.sent:
        message = decode_message(datagram)
        if message.type not in CONTROL_TYPES:  # the camera ignores a RESET's number
            assert numbered.setdefault(message.seq, datagram) == datagram, message
