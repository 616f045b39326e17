"""Sony ADCP simulator over real loopback sockets, driven by a raw line client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
from pydantic import ValidationError

from drivers.sony_adcp.codec import auth_digest
from drivers.sony_adcp.config import SonyAdcpConfig
from simulators import SIMULATORS, SonyAdcpKnobs, SonyAdcpSimulator
from tests import helpers
from tests.helpers import SimulatorStarter
from tests.simtools import Connect, RawClient, raw_clients, simulator_process

until = partial(helpers.until, timeout=2.0, interval=0.005)


SimFactory = Callable[..., Awaitable[SonyAdcpSimulator]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    async with raw_clients() as open_client:
        yield open_client


@pytest.fixture
def make_sim(simulators: SimulatorStarter) -> SimFactory:
    return partial(simulators, SonyAdcpSimulator, warmup=0.1, cooldown=0.1)


async def greeted(connect: Connect, sim: SonyAdcpSimulator) -> RawClient:
    client = await connect(sim)
    assert await client.line() == b"NOKEY"
    return client


# -- authentication --------------------------------------------------------------


async def test_challenge_is_fresh_per_session_and_the_digest_opens_it(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(password="Projector")
    challenges = [await (await connect(sim)).line() for _ in range(3)]
    assert all(re.fullmatch(rb"[0-9a-f]{8}", c) for c in challenges)
    assert len(set(challenges)) == 3
    client = await connect(sim)
    challenge = (await client.line()).decode()
    assert await client.ask(auth_digest(challenge, "Projector")) == b"OK"
    assert await client.ask("power_status ?") == b'"standby"'


@pytest.mark.parametrize("answer", ["0" * 64, "abc", "power_status ?", "OK"])
async def test_a_wrong_digest_gets_err_auth_and_the_connection_closes(
    make_sim: SimFactory, connect: Connect, answer: str
) -> None:
    sim = await make_sim(password="Projector", challenge="abcd1234")
    client = await connect(sim)
    assert await client.line() == b"abcd1234"
    assert await client.ask(answer) == b"err_auth"
    assert await client.closed_by_peer()
    assert sim.received["power_status"] == 0


async def test_the_accepting_word_can_be_lowercase(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(password="pw", challenge="x1", auth_ok="ok")
    client = await connect(sim)
    await client.line()
    assert await client.ask(auth_digest("x1", "pw")) == b"ok"


async def test_one_connection_per_command_like_the_reference_client(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0)
    for command, reply in (('power "on"', b"ok"), ("power_status ?", b'"on"')):
        client = await greeted(connect, sim)
        assert await client.ask(command) == reply
        await client.close()
    await until(lambda: not sim.sessions)
    assert sim.connections == 2


# -- commands ----------------------------------------------------------------------


async def test_commands_and_error_words(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(
        model="VPL-XW7000", serial_number="42", errors=["err_fan"], warnings=["warn_temp"]
    )
    client = await greeted(connect, sim)
    assert await client.ask("modelname ?") == b'"VPL-XW7000"'
    assert await client.ask("serialnum ?") == b'"42"'
    assert await client.ask("error ?") == b'["err_fan"]'
    assert await client.ask("warning ?") == b'["warn_temp"]'
    assert await client.ask('input "hdmi2"') == b"err_inactive"  # standby
    assert await client.ask("input ?") == b"err_inactive"
    assert await client.ask('blank "on"') == b"err_inactive"
    assert await client.ask('power "maybe"') == b"err_val"
    assert await client.ask("power ?") == b"err_cmd"  # the query is power_status
    assert await client.ask("no_such_thing ?") == b"err_cmd"
    assert await client.ask("power on") == b"err_cmd"  # value without quotes
    assert await client.ask('key "menu"') == b"ok"
    assert await client.ask('key "self_destruct"') == b"err_val"
    assert sim.received["input"] == 2 and sim.received["power"] == 2


async def test_while_on(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(power="on", inputs=["hdmi1", "hdmi2", "dvi"], input="dvi")
    client = await greeted(connect, sim)
    assert await client.ask("input ?") == b'"dvi"'
    assert await client.ask('input "hdmi2"') == b"ok"
    assert await client.ask('input "sdi"') == b"err_val"
    assert await client.ask('blank "on"') == b"ok"
    assert await client.ask("blank ?") == b'"on"'
    assert await client.ask("error ?") == b'"no_err"'
    assert await client.ask("warning ?") == b'"no_warn"'
    assert (sim.input, sim.blank) == ("hdmi2", True)


async def test_standby_lockout_knob(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(standby_lockout="set")
    client = await greeted(connect, sim)
    assert await client.ask("input ?") == b'"hdmi1"'
    assert await client.ask('input "hdmi2"') == b"err_inactive"
    sim.knobs.standby_lockout = "none"
    assert await client.ask('input "hdmi2"') == b"ok"


async def test_timers_and_unsupported_commands(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(
        power="on", light_source_hours=100, operation_hours=500, hours_per_second=200
    )
    await until(lambda: sim.light_source_hours >= 110)
    client = await greeted(connect, sim)
    timers = await client.ask("timer ?")
    m = re.fullmatch(rb'\[\{"operation":(\d+)\},\{"light_src":(\d+)\}\]', timers)
    assert m and int(m.group(1)) >= 510 and int(m.group(2)) >= 110
    sim.knobs.unsupported = ["timer"]
    assert await client.ask("timer ?") == b"err_cmd"


# -- power state machine -------------------------------------------------------------


async def test_power_on_startup_on_cooling1_cooling2_standby(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0.5, cooldown=1.0)
    client = await greeted(connect, sim)
    assert await client.ask('power "on"') == b"ok"
    assert await client.ask("power_status ?") == b'"startup"'
    assert await client.ask('blank "on"') == b"err_inactive"
    assert await client.ask('power "off"') == b"err_inactive"
    await until(lambda: sim.power == "on")
    assert await client.ask('blank "on"') == b"ok"
    assert await client.ask('power "off"') == b"ok"
    assert await client.ask("power_status ?") == b'"cooling1"'
    assert not sim.blank  # leaving "on" ends the picture mute
    await until(lambda: sim.power == "cooling2")
    await until(lambda: sim.power == "standby")
    assert await client.ask("power_status ?") == b'"standby"'


@pytest.mark.parametrize(("mode", "after"), [("ignore", "on"), ("apply", "standby")])
async def test_power_in_transition_knob(
    make_sim: SimFactory, connect: Connect, mode: str, after: str
) -> None:
    sim = await make_sim(warmup=0.5, cooldown=0.05, power_in_transition=mode)
    client = await greeted(connect, sim)
    await client.ask('power "on"')
    assert await client.ask('power "off"') == b"ok"
    await until(lambda: sim.power == after)


async def test_front_panel_and_listener(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(warmup=0.05)
    changes: list[tuple[str, object]] = []
    sim.add_listener(lambda key, value: changes.append((key, value)))
    assert sim.press_power(True)
    assert not sim.press_power(False)  # refused while starting up
    await until(lambda: sim.power == "on")
    sim.set_input("hdmi2")
    sim.set_blank(True)
    sim.set_errors(["err_temp"])
    for bad in (lambda: sim.set_input("sdi"), lambda: sim.set_errors(["warn_temp"])):
        with pytest.raises(ValueError):
            bad()
    client = await greeted(connect, sim)
    assert await client.ask("input ?") == b'"hdmi2"'
    assert await client.ask("error ?") == b'["err_temp"]'
    assert changes == [
        ("power", "startup"),
        ("power", "on"),
        ("input", "hdmi2"),
        ("blank", True),
        ("errors", ["err_temp"]),
    ]


# -- fault knobs and lifecycle ---------------------------------------------------------


async def test_garbage_lines_and_dropped_sessions(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(garbage_every=2, drop_after=2)
    client = await greeted(connect, sim)  # message 1: clean
    client.writer.write(b"power_status ?\r\n")
    junk = await client.line()  # message 2: a junk line first
    assert junk and not junk.isascii()
    assert await client.line() == b'"standby"'
    assert await client.ask("modelname ?") == b'"VPL-FHZ75"'
    client.writer.write(b"input ?\r\n")
    assert await client.closed_by_peer()


async def test_stop_keeps_state_and_restarts_on_the_same_port(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0)
    client = await greeted(connect, sim)
    assert await client.ask('power "on"') == b"ok"
    port = sim.port
    await sim.stop()
    assert await client.closed_by_peer()
    await sim.start(port=port)
    client = await greeted(connect, sim)
    assert await client.ask("power_status ?") == b'"on"'


def test_knobs_and_options_for() -> None:
    assert SIMULATORS["sony_adcp"] is SonyAdcpSimulator
    assert SonyAdcpKnobs(warmup="250ms").warmup == 0.25
    for bad in (
        {"inputs": ["HDMI 1"]},
        {"inputs": []},
        {"input": "dvi"},
        {"errors": ["fan"]},
        {"warnings": ["err_temp"]},
        {"challenge": "two words"},
        {"auth_ok": "Okay"},
    ):
        with pytest.raises(ValidationError):
            SonyAdcpKnobs(**bad)
    device = SonyAdcpConfig.model_validate(
        {
            "driver": "sony_adcp",
            "transport": "tcp://10.0.0.9",
            "password": "pw",
            "inputs": {"hdmi1": "Laptop", "dvi": "PC"},
        }
    )
    options = SonyAdcpSimulator.options_for(device)
    assert options == {"password": "pw", "inputs": ["hdmi1", "dvi"]}
    SonyAdcpKnobs.model_validate(options)
    no_auth = device.model_copy(update={"password": None, "inputs": {}})
    assert SonyAdcpSimulator.options_for(no_auth) == {}


async def test_cli_smoke() -> None:
    args = ["sony_adcp", "--port", "0", "--password", "secret", "--challenge", "feedbeef"]
    async with simulator_process(*args) as line:
        m = re.fullmatch(r"sony_adcp simulator listening on 127\.0\.0\.1:(\d+)\n", line)
        assert m, line
        client = RawClient(*await asyncio.open_connection("127.0.0.1", int(m.group(1))))
        assert await client.line() == b"feedbeef"
        assert await client.ask(auth_digest("feedbeef", "secret")) == b"OK"
        await client.close()
