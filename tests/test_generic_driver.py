"""The generic driver against the generic simulator (and a PJLink projector) over real sockets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.errors import ErrorCode
from drivers.generic.driver import GenericDriver
from simulators.generic import GenericSimulator
from simulators.pjlink import PjlinkSimulator
from tests.helpers import until
from tests.rig import Rig, RigStarter, error_of

PJLINK_DEFINITION = Path(__file__).resolve().parent.parent / "bench" / "pjlink-generic.yaml"

PROTOCOL: dict[str, Any] = yaml.safe_load(
    r"""
framing: {delimiter: "\r\n", terminator: "\r"}
login:
  - match: '^Password:'
  - send: "{password}"
    match: '^Login OK$'
    fail: '^Login failed$'
errors:
  - match: '^ERR (?P<why>.+)$'
    message: "refused: {why}"
polls:
  status:
    requests:
      - send: "POWER?"
        match: &power '^POWER=(?P<power>ON|OFF)$'
        set: &power-set {power: {group: power, map: {"ON": "on", "OFF": "off"}}}
      - send: "LEVEL?"
        match: &level '^LEVEL=(?P<level>\d+)$'
        set: &level-set {levels.main: {group: level, type: int}}
actions:
  power_on: {send: "POWER ON", match: *power, set: *power-set}
  power_off: {send: "POWER OFF", match: *power, set: *power-set}
  set_level:
    args: {level: {type: int, min: 0, max: 100}}
    send: "LEVEL {level}"
    match: *level
    set: *level-set
    coalesce: true
  blink:
    description: flash the front panel (no answer)
    args: {times: {type: int, min: 1, max: 9, default: 1}}
    send: "BLINK {times}"
unsolicited:
  - match: *power
    set: *power-set
  - match: *level
    set: *level-set
"""
)
KNOBS: dict[str, Any] = yaml.safe_load(
    r"""
password: secret
state: {power: "OFF", level: 50}
rules:
  - match: '^POWER\?$'
    reply: "POWER={power}"
  - match: '^POWER (?P<on>ON|OFF)$'
    set: {power: "{on}"}
    reply: "POWER={power}"
  - match: '^LEVEL\?$'
    reply: "LEVEL={level}"
  - match: '^LEVEL (?P<n>\d+)$'
    set: {level: "{n}"}
    reply: "LEVEL={level}"
  - match: '^BLINK \d$'
  - match: '^PING$'
    reply: PONG
push:
  - when: power
    send: "POWER={value}"
  - when: level
    send: "LEVEL={value}"
unknown_reply: "ERR unknown command"
error_reply: "ERR busy"
"""
)


class GenericRig(Rig[GenericSimulator, GenericDriver]):
    """A generic device with a password, polls, actions and pushes; the driver aimed at it."""

    simulator_class = GenericSimulator
    knobs = KNOBS
    driver_class = GenericDriver
    device_id = "box"
    settings = {
        "protocol": PROTOCOL,
        "password": "secret",
        "poll_interval": 0.2,
        "timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }

    async def wait_ready(self, driver: GenericDriver) -> None:
        await until(lambda: driver.online and "levels" in driver.state, message="first poll")


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[GenericRig]]:
    return partial(rigs, GenericRig)


async def test_polls_actions_and_pushes(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online(poll_interval=30)  # changes below arrive as replies or pushes
    assert driver.state["power"] == "off" and driver.state["levels"] == {"main": 50}
    await driver.execute("power_on")
    assert driver.state["power"] == "on" and rig.sim.state["power"] == "ON"
    await driver.execute("set_level", {"level": 70})
    assert driver.state["levels"] == {"main": 70} and rig.sim.state["level"] == 70
    rig.sim.set_state("level", 12)  # the front panel; the device tells every client
    await until(lambda: driver.state["levels"] == {"main": 12}, message="pushed level")
    assert 12 in [c["levels"]["main"] for c in rig.changes if "levels" in c]


async def test_arguments_are_checked_against_the_published_schema(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    schema = driver.describe_actions()["set_level"]
    assert schema["properties"]["level"] == {
        "maximum": 100,
        "minimum": 0,
        "title": "Level",
        "type": "integer",
    }
    assert schema["required"] == ["level"]
    for args in ({"level": 101}, {"level": "loud"}, {}, {"level": 5, "extra": 1}):
        assert (await error_of(driver.execute("set_level", args))).code is ErrorCode.INVALID_ARGS
    err = await error_of(driver.execute("self_destruct"))
    assert err.code is ErrorCode.UNKNOWN_ACTION
    assert driver.describe_actions()["blink"]["description"] == "flash the front panel (no answer)"


async def test_an_action_without_a_reply_is_written_and_acknowledged(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    assert await driver.execute("blink", {"times": 3}) is None
    assert await driver.execute("blink") is None  # the default
    await until(lambda: "BLINK 1" in rig.sim.received, message="written")
    assert "BLINK 3" in rig.sim.received and driver.online


async def test_an_error_reply_fails_the_command_with_its_message(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.online()
    rig.sim.knobs.device_errors = 1
    err = await error_of(driver.execute("set_level", {"level": 5}))
    assert err.code is ErrorCode.DEVICE_ERROR and str(err) == "box: refused: busy"
    assert driver.online
    await driver.execute("set_level", {"level": 5})
    assert driver.state["levels"] == {"main": 5}


async def test_a_wrong_password_is_an_auth_failure(rig_factory: Any) -> None:
    rig = await rig_factory()
    driver = await rig.driver(password="wrong")
    await until(lambda: driver.state["offline_reason"] == "auth_failed", message="auth_failed")
    assert not driver.online


async def test_keepalive_is_sent_every_interval(rig_factory: Any) -> None:
    rig = await rig_factory()
    protocol = {**PROTOCOL, "keepalive": {"send": "PING", "every": "50ms", "match": "^PONG$"}}
    await rig.online(protocol=protocol, poll_interval=30)
    await until(lambda: rig.sim.received.count("PING") >= 3, message="keep-alives")
    assert rig.sim.received.count("POWER?") == 1  # the first poll; the next one in 30 s


async def test_udp_device(rig_factory: Any) -> None:
    rig = await rig_factory(listen="udp", password=None)
    protocol = {k: v for k, v in PROTOCOL.items() if k != "login"}
    driver = await rig.online(protocol=protocol, password=None, transport=rig.sim.url)
    assert rig.sim.url.startswith("udp://")
    await driver.execute("power_on")
    assert driver.state["power"] == "on"


async def test_binary_fixed_length_protocol(rigs: RigStarter) -> None:
    knobs = {
        "encoding": "hex",
        "framing": {"length": 3},
        "state": {"relay": "00"},
        "rules": [
            {"match": "^0101(?P<v>0[01])$", "set": {"relay": "{v}"}, "reply": "81 01 {v}"},
            {"match": "^020100$", "reply": "82 01 {relay}"},
        ],
    }
    protocol = {
        "encoding": "hex",
        "framing": {"length": 3},
        "polls": {"relay": {"send": "02 01 00", "match": "^8201(?P<on>0[01])$"}},
        "actions": {
            "relay": {
                "args": {"on": {"type": "bool"}},
                "send": "01 01 {on:02X}",
                "match": "^8101(?P<on>0[01])$",
                "set": {"relay": {"group": "on", "map": {"00": False, "01": True}}},
            }
        },
    }
    rig = await rigs(GenericRig, **{**knobs, "password": None, "rules": knobs["rules"]})
    driver = await rig.driver(protocol=protocol, password=None)
    await until(lambda: driver.state.get("on") == "00", message="polled, groups by name")
    await driver.execute("relay", {"on": True})
    assert driver.state["relay"] is True and rig.sim.received[-1] == "010101"


async def test_a_pjlink_projector_described_as_a_generic_device(rigs: RigStarter) -> None:
    """The definition the polling benchmark uses, against the real PJLink simulator."""

    class PjlinkGeneric(GenericRig):
        simulator_class = PjlinkSimulator  # type: ignore[assignment]
        knobs = {"warmup": 0.1, "cooldown": 0.1}

    definition = yaml.safe_load(PJLINK_DEFINITION.read_text())
    rig = await rigs(PjlinkGeneric)
    driver = await rig.driver(protocol=definition, password=None)
    await until(lambda: driver.state.get("power") == "off" and "lamp_hours" in driver.state)
    await driver.execute("power_on")
    await until(lambda: driver.state.get("power") == "on", message="warmed up")
    await until(lambda: driver.state.get("input") == "11", message="input polled while on")
    assert driver.state["errors"] == "000000"
