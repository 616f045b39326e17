"""The Extron SIS simulator, spoken to over raw loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from simulators.extron_sis import IAC_BURST, ExtronSimulator
from tests.helpers import SimulatorStarter, until

TIMEOUT = 2.0


class Client:
    """A raw TCP client reading CR LF lines (and the bare `Password:` prompt)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def line(self) -> bytes:
        data = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), TIMEOUT)
        return data[:-2]

    async def prompt(self) -> None:
        assert await asyncio.wait_for(self.reader.readuntil(b"Password:"), TIMEOUT) == (
            b"\r\nPassword:"
        )

    async def ask(self, data: bytes) -> bytes:
        self.writer.write(data)
        return await self.line()

    async def silent(self, wait: float = 0.15) -> bool:
        """True when nothing arrives for `wait` seconds."""
        try:
            await asyncio.wait_for(self.reader.read(1), wait)
        except TimeoutError:
            return True
        return False

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), TIMEOUT) == b""


@pytest.fixture
async def switcher(simulators: SimulatorStarter) -> AsyncIterator[Callable[..., Any]]:
    clients: list[Client] = []

    async def make(**knobs: Any) -> tuple[ExtronSimulator, Callable[..., Any]]:
        sim = await simulators(ExtronSimulator, **{"outputs": 4, **knobs})

        async def connect(skip_greeting: bool = True) -> Client:
            client = Client(*await asyncio.open_connection("127.0.0.1", sim.port))
            clients.append(client)
            if skip_greeting and not sim.knobs.serial:
                assert (await client.line()).startswith(b"(c) Copyright")
                await client.line()  # date
            return client

        return sim, connect

    yield make
    for client in clients:
        client.writer.close()


async def test_banner_date_and_password_prompt_without_line_ending(switcher: Any) -> None:
    _, connect = await switcher(password="extron", user_password="guest", model="DXP 84 HDMI")
    client = await connect(skip_greeting=False)
    assert (
        await client.line()
        == b"(c) Copyright 2012, Extron Electronics, DXP 84 HDMI, V1.23, 60-882-01"
    )
    date = await client.line()
    assert b"," in date and b":" in date
    await client.prompt()
    client.writer.write(b"1*1!")  # before login everything is a password attempt
    client.writer.write(b"wrong\r\n")
    await client.prompt()
    client.writer.write(b"extron\r")
    assert await client.line() == b""
    assert await client.line() == b"Login Administrator"
    assert await client.ask(b"1*2!") == b"Out02 In01 All"


async def test_user_login_cannot_save_presets(switcher: Any) -> None:
    _, connect = await switcher(password="extron", user_password="guest")
    client = await connect()
    await client.prompt()
    client.writer.write(b"guest\r\n")
    await client.line()
    assert await client.line() == b"Login User"
    assert await client.ask(b"3,") == b"E24"
    assert await client.ask(b"2*3!") == b"Out03 In02 All"


async def test_several_commands_per_packet_and_one_split_across_packets(switcher: Any) -> None:
    sim, connect = await switcher()
    client = await connect()
    client.writer.write(b"1*1!\r\n02*02&003*003$")
    assert [await client.line() for _ in range(3)] == [
        b"Out01 In01 All",
        b"Out02 In02 Vid",
        b"Out03 In03 Aud",
    ]
    client.writer.write(b"4*")
    await client.writer.drain()
    assert await client.silent()
    client.writer.write(b"2%\x1b3C")
    assert await client.line() == b"Out02 In04 Vid"
    client.writer.write(b"V|")  # `|` ends an Esc command like CR
    assert await client.line() == b"Vrb3"
    assert sim.video_ties[2] == 4 and sim.audio_ties[2] == 2  # breakaway


async def test_ties_untie_tie_all_and_views(switcher: Any) -> None:
    sim, connect = await switcher(pad=False, inputs=8)
    client = await connect()
    assert await client.ask(b"5*!") == b"In5 All"
    assert await client.ask(b"0*3!") == b"Out3 In0 All"
    assert await client.ask(b"7*1$") == b"Out1 In7 Aud"
    assert await client.ask(b"\x1b0*1*1VC\r") == (
        b"5 5 0 5 -- -- -- -- -- -- -- -- -- -- -- -- Vid"
    )
    assert await client.ask(b"\x1b0*1*2VC\r") == (
        b"7 5 0 5 -- -- -- -- -- -- -- -- -- -- -- -- Aud"
    )
    assert await client.ask(b"1$") == b"7"  # untagged view in verbose mode 0
    assert await client.ask(b"\x1b2CV\r") == b"Vrb2"
    assert await client.ask(b"1$") == b"Out1 In7 Aud"  # tagged
    assert await client.ask(b"\x1b+Q1*1!2*2%\r") == b"Qik"
    assert sim.video_ties == {1: 1, 2: 2, 3: 0, 4: 5}
    assert await client.ask(b"I") == b"V8X4 A8X4"
    assert await client.ask(b"Q") == b"1.23"
    assert await client.ask(b"N") == b"60-882-01"


async def test_volume_mutes_and_presets(switcher: Any) -> None:
    sim, connect = await switcher()
    client = await connect()
    assert await client.ask(b"1*50V") == b"Out01 Vol50"
    assert await client.ask(b"1+V") == b"Out01 Vol51"
    assert await client.ask(b"1-V") == b"Out01 Vol50"
    assert await client.ask(b"1V") == b"50"
    assert await client.ask(b"3*1Z") == b"Amt03*1"
    assert await client.ask(b"2*1B") == b"Vmt02*1"
    assert await client.ask(b"\x1bVM\r") == b"0120"
    assert await client.ask(b"1*B") == b"Vmt1"
    assert await client.ask(b"0*Z") == b"Amt0"
    assert await client.ask(b"\x1bVM\r") == b"1111"
    assert await client.ask(b"3Z") == b"0"
    assert await client.ask(b"5*1!") == b"Out01 In05 All"
    assert await client.ask(b"7,") == b"Spr07"
    assert await client.ask(b"1*1!") == b"Out01 In01 All"
    assert await client.ask(b"\x1b7*1*1VC\r") == (
        b"05 02 03 04 -- -- -- -- -- -- -- -- -- -- -- -- Vid"
    )
    assert await client.ask(b"7.") == b"Rpr07"
    assert sim.video_ties[1] == 5 and sim.preset == 7


@pytest.mark.parametrize(
    ("command", "error", "knobs"),
    [
        (b"9*1!", b"E01", {}),
        (b"1*9!", b"E12", {}),
        (b"1*65V", b"E13", {}),
        (b"1*2Z", b"E13", {}),
        (b"4.", b"E11", {}),
        (b"X!", b"E10", {}),
        (b"1*1$", b"E14", {"audio": False}),
        (b"1*10V", b"E10", {"volume": False}),
        (b"\x1bXYZ\r", b"E10", {}),
        (b"1*1!", b"E22", {"errors": {"!": "E22"}}),
        (b"1*1V", b"E25", {"errors": {"v": "E25"}}),
    ],
)
async def test_errors(switcher: Any, command: bytes, error: bytes, knobs: dict[str, Any]) -> None:
    _, connect = await switcher(inputs=8, **knobs)
    client = await connect()
    assert await client.ask(command) == error


async def test_verbose_sessions_hear_other_sessions_and_the_front_panel(switcher: Any) -> None:
    sim, connect = await switcher()
    quiet, loud, actor = await connect(), await connect(), await connect()
    assert await loud.ask(b"\x1b3CV\r") == b"Vrb3"
    assert await loud.ask(b"\x1bCV\r") == b"Vrb3"
    assert await quiet.ask(b"\x1bCV\r") == b"0"  # TCP default
    assert await actor.ask(b"2*3!") == b"Out03 In02 All"
    assert await loud.line() == b"Out03 In02 All"
    sim.press_tie(4, 1, kind="video")
    sim.set_volume(2, 30)
    sim.set_audio_mute(3, True)
    sim.set_video_mute(4, True)
    sim.press_quick([(1, 1), (2, 2)])
    assert [await loud.line() for _ in range(5)] == [
        b"Out01 In04 Vid",
        b"Out02 Vol30",
        b"Amt03*1",
        b"Vmt04*1",
        b"Qik",
    ]
    assert await actor.ask(b"8,") == b"Spr08"
    sim.press_preset(8)
    assert [await loud.line() for _ in range(2)] == [b"Spr08", b"Rpr08"]
    assert await quiet.silent() and await actor.silent()
    assert sim.notices["Tie"] == 2 and sim.notices["Volume"] == 1


async def test_interleave_puts_a_front_panel_tie_before_the_answer(switcher: Any) -> None:
    sim, connect = await switcher(interleave=True)
    client = await connect()
    assert await client.ask(b"\x1b3CV\r") == b"Vrb3"  # verbose 0 when output 4 changed
    assert sim.video_ties[4] == 2
    assert await client.ask(b"3*1!") == b"Out04 In03 All"  # the notice first...
    assert await client.line() == b"Out01 In03 All"  # ...then the answer
    assert sim.video_ties == {1: 3, 2: 2, 3: 3, 4: 3}


async def test_serial_mode_has_no_banner_and_is_verbose(switcher: Any) -> None:
    sim, connect = await switcher(serial=True, password="ignored-on-serial")
    client = await connect()
    assert await client.silent()
    assert await client.ask(b"\x1bCV\r") == b"1"
    sim.press_tie(3, 2)
    assert await client.line() == b"Out02 In03 All"


async def test_telnet_burst_idle_timeout_and_connection_cap(switcher: Any) -> None:
    sim, connect = await switcher(iac_burst=True, idle_timeout=0.2, max_clients=1)
    client = await connect(skip_greeting=False)
    assert await asyncio.wait_for(client.reader.readexactly(len(IAC_BURST)), TIMEOUT) == IAC_BURST
    refused = await connect(skip_greeting=False)
    assert await refused.closed()
    assert (await client.line()).startswith(b"(c) Copyright")  # IAC first, then the greeting
    await client.line()
    assert await client.ask(b"Q") == b"1.23"
    assert await client.closed()  # idle
    await until(lambda: not sim.sessions)
    again = await connect(skip_greeting=False)
    assert await asyncio.wait_for(again.reader.readexactly(len(IAC_BURST)), TIMEOUT) == IAC_BURST
