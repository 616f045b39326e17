"""Epson ESC/VP21 simulator over loopback TCP (ESC/VP.net) and a pseudo-terminal (RS-232)."""

from __future__ import annotations

import asyncio
import os
import re
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
from pydantic import ValidationError

from drivers.epson_escvp.codec import connect_request
from drivers.epson_escvp.config import EpsonEscvpConfig
from simulators import SIMULATORS, EpsonEscvpKnobs, EpsonEscvpSimulator
from tests import helpers
from tests.helpers import SimulatorStarter
from tests.simtools import Connect, RawClient, raw_clients, simulator_process

until = partial(helpers.until, timeout=2.0, interval=0.005)

HANDSHAKE = b"ESC/VP.net\x10\x03\x00\x00\x00\x00"
HANDSHAKE_OK = b"ESC/VP.net\x10\x03\x00\x00\x20\x00"

SimFactory = Callable[..., Awaitable[EpsonEscvpSimulator]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    async with raw_clients() as open_client:
        yield open_client


@pytest.fixture
def make_sim(simulators: SimulatorStarter) -> SimFactory:
    return partial(simulators, EpsonEscvpSimulator, warmup=0.1, cooldown=0.1)


async def ask(client: RawClient, command: str) -> bytes:
    """Send one command line; the answer up to and including its prompt."""
    client.writer.write(command.encode() + b"\r")
    return await client.upto(b":")


async def handshaken(connect: Connect, sim: EpsonEscvpSimulator) -> RawClient:
    client = await connect(sim)
    client.writer.write(HANDSHAKE)
    assert await client.upto(b":") == HANDSHAKE_OK + b":"
    return client


# -- the ESC/VP.net handshake ------------------------------------------------------


async def test_commands_wait_for_the_handshake(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    client.writer.write(b"PWR?\r")  # ignored: no handshake yet
    client.writer.write(HANDSHAKE)
    assert await client.upto(b":") == HANDSHAKE_OK + b":"
    assert await ask(client, "PWR?") == b"PWR=04\r:"
    assert sim.received["PWR"] == 1


async def test_handshake_reply_without_the_prompt(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(handshake_prompt=False)
    client = await connect(sim)
    client.writer.write(HANDSHAKE)
    assert await client.reader.readexactly(16) == HANDSHAKE_OK
    assert await ask(client, "LAMP?") == b"LAMP=0\r:"


@pytest.mark.parametrize(("password", "status"), [("secret", 0x20), ("wrong", 0x41), (None, 0x41)])
async def test_password_in_the_handshake(
    make_sim: SimFactory, connect: Connect, password: str | None, status: int
) -> None:
    sim = await make_sim(password="secret", handshake_prompt=False)
    client = await connect(sim)
    client.writer.write(connect_request(password).encode())
    reply = await client.reader.readexactly(16)
    assert reply[:14] == HANDSHAKE_OK[:14] and reply[14] == status
    if status != 0x20:
        assert await client.closed_by_peer()


async def test_no_handshake_behind_a_serial_gateway(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(handshake=False)
    client = await connect(sim)
    assert await ask(client, "PWR?") == b"PWR=04\r:"


# -- commands ------------------------------------------------------------------------


async def test_commands_prompts_and_errors(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(lamp_hours=1234, error="01")
    client = await handshaken(connect, sim)
    client.writer.write(b"\r")
    assert await client.upto(b":") == b":"  # a lone CR: "are you there?"
    assert await ask(client, "LAMP?") == b"LAMP=1234\r:"
    assert await ask(client, "ERR?") == b"ERR=01\r:"
    assert await ask(client, "SOURCE?") == b"ERR\r:"  # standby
    assert await ask(client, "SOURCE 30") == b"ERR\r:"
    assert await ask(client, "MUTE ON") == b"ERR\r:"
    assert await ask(client, "FOO?") == b"ERR\r:"
    assert await ask(client, "PWR MAYBE") == b"ERR\r:"
    assert await ask(client, "??") == b"ERR\r:"
    assert await ask(client, "pwr?") == b"PWR=04\r:"
    assert sim.received["SOURCE"] == 2 and sim.received["PWR"] == 2


async def test_while_on(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(power="on", inputs=["30", "a0", "52"], input="52")
    client = await handshaken(connect, sim)
    assert await ask(client, "PWR?") == b"PWR=01\r:"
    assert await ask(client, "SOURCE?") == b"SOURCE=52\r:"
    assert await ask(client, "SOURCE A0") == b":"
    assert await ask(client, "SOURCE 41") == b"ERR\r:"  # not on this model
    assert await ask(client, "MUTE ON") == b":"
    assert await ask(client, "MUTE?") == b"MUTE=ON\r:"
    assert (sim.input, sim.mute) == ("A0", True)


async def test_source_answers_once_the_signal_is_stable(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(power="on", source_delay=0.15)
    client = await handshaken(connect, sim)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await ask(client, "SOURCE 10") == b":"
    assert loop.time() - started >= 0.14


async def test_standby_variants(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(standby_code="00", standby_lockout="set", lamp=False)
    client = await handshaken(connect, sim)
    assert await ask(client, "PWR?") == b"PWR=00\r:"
    assert await ask(client, "SOURCE?") == b"SOURCE=30\r:"  # only sets are refused
    assert await ask(client, "LAMP?") == b"ERR\r:"  # no lamp (laser)
    sim.fail("06")
    assert await ask(client, "PWR?") == b"PWR=05\r:"
    assert await ask(client, "ERR?") == b"ERR=06\r:"


# -- power ---------------------------------------------------------------------------


async def test_power_on_prompt_comes_after_the_warmup(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0.6, cooldown=0.2)
    client = await handshaken(connect, sim)
    other = await handshaken(connect, sim)
    client.writer.write(b"PWR ON\r")
    await until(lambda: sim.power == "warming")
    assert await ask(other, "PWR?") == b"PWR=02\r:"  # another session is answered meanwhile
    assert await ask(other, "PWR OFF") == b"ERR\r:"  # not before it has fully started
    assert await client.upto(b":") == b":"
    assert sim.power == "on"
    assert await ask(client, "PWR ON") == b":"  # already on: at once
    assert await ask(client, "PWR OFF") == b":"  # the default: at once, then cooling
    assert await ask(client, "PWR?") == b"PWR=03\r:"
    assert await ask(client, "PWR ON") == b"ERR\r:"
    await until(lambda: sim.power == "off")


async def test_power_off_prompt_after_the_cooldown(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(power="on", cooldown=0.2, off_prompt="after_cooldown")
    client = await handshaken(connect, sim)
    assert await ask(client, "PWR OFF") == b":"
    assert sim.power == "off"


async def test_lamp_hours_advance_while_on(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(power="on", lamp_hours=100, lamp_hours_per_second=200)
    await until(lambda: sim.lamp_hours >= 110)
    client = await handshaken(connect, sim)
    hours = int((await ask(client, "LAMP?"))[5:-2])
    assert hours >= 110
    sim.press_power(False)
    frozen = sim.lamp_hours
    await asyncio.sleep(0.05)
    assert sim.lamp_hours == frozen


async def test_front_panel_and_listener(make_sim: SimFactory) -> None:
    sim = await make_sim(warmup=0.05)
    changes: list[tuple[str, object]] = []
    sim.add_listener(lambda key, value: changes.append((key, value)))
    assert sim.press_power(True)
    assert not sim.press_power(False)  # refused while warming
    await until(lambda: sim.power == "on")
    sim.set_input("a0")
    sim.set_mute(True)
    sim.set_error("0c")
    for bad in (lambda: sim.set_input("99"), lambda: sim.set_error("x"), lambda: sim.fail("7F")):
        with pytest.raises(ValueError):
            bad()
    assert changes == [
        ("power", "warming"),
        ("power", "on"),
        ("input", "A0"),
        ("mute", True),
        ("error", "0C"),
    ]


# -- RS-232 ----------------------------------------------------------------------------


async def test_the_same_projector_answers_on_its_serial_port() -> None:
    sim = EpsonEscvpSimulator(EpsonEscvpKnobs(power="on", input="A0"))
    path = await sim.start_pty()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        termios.tcflush(fd, termios.TCIFLUSH)

        async def ask_serial(raw: bytes) -> bytes:
            os.write(fd, raw)
            got = b""
            async with asyncio.timeout(2):
                while not got.endswith(b":"):
                    got += await asyncio.to_thread(os.read, fd, 64)
            return got

        assert await ask_serial(b"\r") == b":"
        assert await ask_serial(HANDSHAKE + b"SOURCE?\r") == b"SOURCE=A0\r:"  # no handshake here
        assert await ask_serial(b"MUTE ON\r") == b":"
        assert sim.mute
    finally:
        os.close(fd)
        await sim.stop()


def test_knobs_and_options_for() -> None:
    assert SIMULATORS["epson_escvp"] is EpsonEscvpSimulator and EpsonEscvpSimulator.serial
    assert EpsonEscvpKnobs(inputs=["a0", "30"]).inputs == ["A0", "30"]
    for bad in (
        {"inputs": ["HDMI"]},
        {"inputs": []},
        {"inputs": ["30", "30"]},
        {"input": "80"},
        {"error": "4"},
        {"password": "x" * 17},
        {"standby_code": "01"},
    ):
        with pytest.raises(ValidationError):
            EpsonEscvpKnobs(**bad)
    device = EpsonEscvpConfig.model_validate(
        {
            "driver": "epson_escvp",
            "transport": "tcp://10.0.0.9",
            "password": "pw",
            "inputs": {"30": "Laptop", "A0": "PC"},
        }
    )
    options = EpsonEscvpSimulator.options_for(device)
    assert options == {"handshake": True, "password": "pw", "inputs": ["30", "A0"]}
    EpsonEscvpKnobs.model_validate(options)
    gateway = EpsonEscvpConfig.model_validate(
        {"driver": "epson_escvp", "transport": "socket://gw:4001"}
    )
    assert EpsonEscvpSimulator.options_for(gateway) == {"handshake": False}


async def test_cli_smoke() -> None:
    async with simulator_process("epson_escvp", "--port", "0", "--power", "on") as line:
        m = re.fullmatch(r"epson_escvp simulator listening on 127\.0\.0\.1:(\d+)\n", line)
        assert m, line
        client = RawClient(*await asyncio.open_connection("127.0.0.1", int(m.group(1))))
        client.writer.write(HANDSHAKE)
        assert await client.upto(b":") == HANDSHAKE_OK + b":"
        assert await ask(client, "PWR?") == b"PWR=01\r:"
        await client.close()
