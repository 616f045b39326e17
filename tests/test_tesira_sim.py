"""Tesira simulator over real loopback sockets, driven by a raw TTP client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from functools import partial

import pytest

from drivers.errors import ProtocolError
from drivers.tesira.codec import BANNER, reply_framer
from drivers.tesira.config import TesiraConfig
from drivers.transport.telnet import IAC, Negotiation, Verb
from simulators.__main__ import parse_args
from simulators.tesira import TesiraKnobs, TesiraSimulator
from tests.helpers import SimulatorStarter, until

DESIGN = {
    "Level1": {"channels": 2, "min": -60, "max": 6, "level": -10},
    "Mute1": {"type": "mute", "channels": 8},
}


class Client:
    """A raw TTP client: records raw bytes, lines and Telnet requests; refuses them if told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bool):
        self.reader = reader
        self.writer = writer
        self.answer = answer
        self.raw = bytearray()
        self.lines: list[str] = []
        self.seen: list[Negotiation] = []
        self.pos = 0  # lines consumed by `line()`
        self._framer = reply_framer(writer.write, self._negotiated)
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, sim: TesiraSimulator, answer: bool = True, welcome: bool = True
    ) -> Client:
        client = cls(*await asyncio.open_connection(*sim.address), answer=answer)
        if welcome:
            assert await client.line() == BANNER
        return client

    async def _read(self) -> None:
        with contextlib.suppress(OSError):
            while data := await self.reader.read(4096):
                self.raw += data
                for frame in self._framer.feed(data):
                    assert not isinstance(frame, ProtocolError)
                    self.lines.append(frame.decode())

    def _negotiated(self, request: Negotiation) -> Negotiation | None:
        """The client's Telnet policy: record every request, refuse it if told to."""
        self.seen.append(request)
        return request.refusal() if self.answer else None

    @property
    def closed(self) -> bool:
        return self._task.done()

    async def line(self, timeout: float = 2.0) -> str:
        await until(lambda: len(self.lines) > self.pos, timeout, message="a line")
        self.pos += 1
        return self.lines[self.pos - 1]

    def send(self, text: str) -> None:
        self.writer.write(text.encode() + b"\n")

    async def ask(self, text: str) -> list[str]:
        """Send a command; every line up to and including its `+OK`/`-` reply."""
        self.send(text)
        lines = [await self.line()]
        while lines[-1][:1] not in ("+", "-"):
            lines.append(await self.line())
        return lines

    async def reply(self, text: str) -> str:
        return (await self.ask(text))[-1]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        await asyncio.gather(self._task, return_exceptions=True)


SimFactory = Callable[..., Awaitable[TesiraSimulator]]


@pytest.fixture
def make_sim(simulators: SimulatorStarter) -> SimFactory:
    return partial(simulators, TesiraSimulator, blocks=DESIGN)


async def test_strict_negotiation_withholds_the_banner_until_answered(make_sim: SimFactory) -> None:
    sim = await make_sim(negotiation=["DO 24", "WILL 1"])
    client = await Client.connect(sim, answer=False, welcome=False)
    await until(lambda: len(client.seen) == 2)
    assert [str(n) for n in client.seen] == ["DO 24", "WILL 1"]
    client.send("Level1 get level 1")  # too early: not answered
    client.writer.write(bytes((IAC, Verb.WONT, 24)))
    await until(lambda: sim.unanswered() == 1, message="half an answer read")  # after the line
    assert client.lines == [] and sim.welcomed() == 0  # half an answer is not enough
    client.writer.write(bytes((IAC, Verb.DONT, 1)))
    assert await client.line() == BANNER
    assert await client.reply("Level1 get level 1") == '+OK "value":-10.000000'
    assert sim.received["Level1 get level"] == 1  # the early command was ignored
    await client.close()


async def test_relaxed_negotiation_gives_up_waiting(make_sim: SimFactory) -> None:
    sim = await make_sim(strict_negotiation=False, negotiation_timeout=0.1)
    client = await Client.connect(sim, answer=False, welcome=False)
    assert await client.line() == BANNER
    await client.close()


async def test_banner_delay_and_no_negotiation(make_sim: SimFactory) -> None:
    sim = await make_sim(negotiation=[], banner_delay=0.2)
    started = time.monotonic()
    client = await Client.connect(sim, answer=False)
    assert time.monotonic() - started >= 0.2 and client.seen == []
    await client.close()


async def test_client_requests_are_refused_at_any_time(make_sim: SimFactory) -> None:
    sim = await make_sim()
    client = await Client.connect(sim)
    client.writer.write(
        b"Level1 get" + bytes((IAC, Verb.DO, 1, IAC, Verb.WILL, 31)) + b" level 2\n"
    )
    assert await client.reply("Level1 get level 2") == '+OK "value":-10.000000'
    assert bytes((IAC, Verb.WONT, 1)) in client.raw and bytes((IAC, Verb.DONT, 31)) in client.raw
    assert sim.received["Level1 get level"] == 2  # IAC stripped from the middle of the command


async def test_verbs_and_values(make_sim: SimFactory) -> None:
    sim = await make_sim()
    client = await Client.connect(sim)
    assert await client.reply("Level1 set level 1 -20.5") == "+OK"
    assert await client.reply("Level1 get level 1") == '+OK "value":-20.500000'
    assert await client.reply("Level1 set level 2 -58.1") == "+OK"
    assert await client.reply("Level1 get level 2") == '+OK "value":-58.099998'  # float32
    assert await client.reply("Level1 set level 2 -12.34") == "+OK"
    assert sim.level("Level1", 2) == pytest.approx(-12.34, abs=1e-5)
    assert await client.reply("Level1 increment level 1 3") == "+OK"
    assert await client.reply("Level1 decrement level 1 1.5") == "+OK"
    assert sim.level("Level1", 1) == -19.0
    assert await client.reply("Level1 increment level 1 100") == "+OK"  # stops at max
    assert sim.level("Level1", 1) == 6.0
    assert await client.reply("Level1 set mute 1 true") == "+OK"
    assert await client.reply("Level1 get mute 1") == '+OK "value":true'
    assert await client.reply("Mute1 toggle mute 8") == "+OK"
    assert sim.mute("Mute1", 8) is True
    assert await client.reply('"Mute1" get numChannels') == '+OK "value":8'
    assert await client.reply("Level1 get minLevel 1") == '+OK "value":-60.000000'
    aliases = await client.reply("SESSION get aliases")
    assert aliases == '+OK "list":["DEVICE" "Level1" "Mute1" "SESSION"]'
    assert await client.reply("SESSION set verbose false") == "+OK"
    assert await client.reply("Level1 get level 1") == "+OK 6.000000"
    await client.close()


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (
            "Level9 get level 1",
            '-ERR address not found: {"deviceId":0 "classCode":0 "instanceNum":0}',
        ),
        (
            "level1 get level 1",
            '-ERR address not found: {"deviceId":0 "classCode":0 "instanceNum":0}',
        ),
        (
            "Level1 Get level 1",
            "-ERR Parse error at 7: verb was not one of the commands supported by LevelControl",
        ),
        ("Level1 get levle 1", "-ERR 'levle' is not supported by LevelControl::Attributes"),
        ("Mute1 get level 1", "-ERR 'level' is not supported by MuteControl::Attributes"),
        ("Level1 set level", "-ERR Parse error at 16: not enough parameters supplied"),
        ("Level1 set level 1", "-ERR Parse error at 18: not enough parameters supplied"),
        ("Level1 set level 1 loud", "-ERR Parse error at 19: could not parse value"),
        ("Level1 set mute 1 yes", "-ERR Parse error at 18: could not parse value"),
        ("Level1 get level x", "-ERR Parse error at 17: could not parse value"),
        (
            "Level1 get level 10",
            "-ERR INVALID_PARAMETER Index out of range:channelIndex min:1 max:2 received:10",
        ),
        (
            "Level1 set level 1 20",
            "-ERR INVALID_PARAMETER Value out of range: attr:level min:-60.000000 max:6.000000 "
            "received:20.000000",
        ),
        ("Level1 set minLevel 1 -50", "-ERR INVALID_PARAMETER 'minLevel' is read-only"),
        (
            "Session get aliases",
            '-ERR address not found: {"deviceId":0 "classCode":0 "instanceNum":0}',
        ),
        (
            "SESSION Get aliases",
            "-ERR Parse error at 8: verb was not one of the commands supported by Services",
        ),
        ("SESSION get Aliases", "-ERR 'Aliases' is not supported by TextSession::Attributes"),
        ("DEVICE recallPreset 77", "-ERR INVALID_PARAMETER preset not found: 77"),
        ('Level1 get "level', "-ERR Parse error at 17: unterminated quoted string"),
        ("Level2 get level 1", "-ERR WRONG_STATE"),
    ],
)
async def test_documented_errors(make_sim: SimFactory, command: str, error: str) -> None:
    sim = await make_sim(error_tags={"Level2": "-ERR WRONG_STATE"})
    client = await Client.connect(sim)
    assert await client.reply(command) == error
    assert sim.level("Level1", 1) == -10.0  # nothing changed
    await client.close()


async def test_out_of_range_can_clamp(make_sim: SimFactory) -> None:
    sim = await make_sim(out_of_range="clamp")
    client = await Client.connect(sim)
    assert await client.reply("Level1 set level 1 20") == "+OK"
    assert sim.level("Level1", 1) == 6.0
    await client.close()


async def test_subscribe_publishes_first_then_on_change_from_anywhere(make_sim: SimFactory) -> None:
    sim = await make_sim()
    watcher = await Client.connect(sim)
    other = await Client.connect(sim)
    assert await watcher.ask("Level1 subscribe level 1 fader") == [
        '! "publishToken":"fader" "value":-10.000000',
        "+OK",
    ]
    assert await watcher.ask("Mute1 subscribe mute 3") == [
        '! "publishToken":"" "value":false',
        "+OK",
    ]
    assert await other.reply("Level1 set level 1 -3") == "+OK"
    assert await watcher.line() == '! "publishToken":"fader" "value":-3.000000'
    sim.set_mute("Mute1", 3, True)  # the front panel
    assert await watcher.line() == '! "publishToken":"" "value":true'
    sim.set_mute("Mute1", 2, True)  # not subscribed
    sim.set_level("Level1", 1, -3)  # no change, no publish
    assert await watcher.reply("Level1 unsubscribe level 1 fader") == "+OK"
    sim.set_level("Level1", 1, -4)
    assert await watcher.reply("Mute1 get mute 2") == '+OK "value":true'  # nothing pushed between
    assert sim.subscriptions() == 1
    await watcher.close()
    await until(lambda: sim.subscriptions() == 0)  # per session: gone with it
    await other.close()


async def test_publish_rate_limits_and_sends_the_latest_value(make_sim: SimFactory) -> None:
    sim = await make_sim()
    client = await Client.connect(sim)
    await client.ask("Level1 subscribe level 2 slow 300")
    started = time.monotonic()
    for level in (-1.0, -2.0, -3.0):
        sim.set_level("Level1", 2, level)
    assert await client.line() == '! "publishToken":"slow" "value":-3.000000'
    assert time.monotonic() - started >= 0.25
    sim.set_level("Level1", 2, -4.0)
    # The next line is the next change: one line for the three changes before it.
    assert await client.line() == '! "publishToken":"slow" "value":-4.000000'
    await client.close()


async def test_concise_subscription(make_sim: SimFactory) -> None:
    sim = await make_sim()
    client = await Client.connect(sim)
    await client.reply("SESSION set verbose false")
    assert await client.ask("Level1 subscribe level 1 x") == ['! "x" -10.000000', "+OK"]
    await client.close()


async def test_cr_nul_line_endings(make_sim: SimFactory) -> None:
    sim = await make_sim(line_ending="crnul")
    client = await Client.connect(sim)
    await client.ask("Level1 subscribe level 1 a")
    assert await client.reply("Level1 get level 1") == '+OK "value":-10.000000'
    text = bytes(client.raw).split(BANNER.encode(), 1)[1]
    assert text == (
        b'\r\x00! "publishToken":"a" "value":-10.000000\r\x00+OK\r\x00+OK "value":-10.000000\r\x00'
    )
    await client.close()


async def test_echo(make_sim: SimFactory) -> None:
    sim = await make_sim(echo=True)
    client = await Client.connect(sim)
    assert await client.ask("Level1 get level 1") == [
        "Level1 get level 1",
        '+OK "value":-10.000000',
    ]
    await client.close()


async def test_interleave_holds_publishes_until_a_command_then_sends_them_before_its_reply(
    make_sim: SimFactory,
) -> None:
    sim = await make_sim(interleave=True)
    client = await Client.connect(sim)
    await client.ask("Level1 subscribe level 1 a")
    sim.set_level("Level1", 1, -30)
    client.writer.write(bytes((IAC, Verb.DO, 1)))  # answered at once, with no command
    await until(lambda: bytes((IAC, Verb.WONT, 1)) in client.raw, message="WONT 1")
    assert len(client.lines) == client.pos  # held: nothing came before the answer
    assert await client.ask("Mute1 get mute 1") == [
        '! "publishToken":"a" "value":-30.000000',
        '+OK "value":false',
    ]
    await client.close()


async def test_iac_in_replies_must_be_answered(make_sim: SimFactory) -> None:
    sim = await make_sim(iac_in_replies=True)
    client = await Client.connect(sim)
    assert await client.reply("Level1 get level 1") == '+OK "value":-10.000000'
    assert bytes((IAC, Verb.DO, 24)) in bytes(client.raw).split(BANNER.encode())[1]
    await until(lambda: sim.unanswered() == 0)
    client.answer = False
    await client.reply("Level1 get level 1")
    await until(lambda: sim.unanswered() == 1, message="a request left unanswered")
    await client.close()


async def test_renegotiation_mid_session(make_sim: SimFactory) -> None:
    sim = await make_sim()
    client = await Client.connect(sim)
    sim.renegotiate("DO 31", "WILL 1")
    await until(lambda: sim.unanswered() == 0 and len(client.seen) == 8)
    await client.close()


async def test_presets(make_sim: SimFactory) -> None:
    presets = {1001: {"name": "Lecture", "levels": {"Level1/2": -20}, "mutes": {"Mute1/1": True}}}
    sim = await make_sim(presets=presets)
    client = await Client.connect(sim)
    await client.ask("Mute1 subscribe mute 1 m")
    assert await client.reply("DEVICE recallPreset 1001") == "+OK"
    assert await client.line() == '! "publishToken":"m" "value":true'
    assert sim.level("Level1", 2) == -20.0
    sim.set_mute("Mute1", 1, False)
    await client.line()
    assert await client.reply('DEVICE recallPresetByName "Lecture"') == "+OK"
    assert await client.line() == '! "publishToken":"m" "value":true'
    await client.close()


async def test_at_most_32_sessions(make_sim: SimFactory) -> None:
    sim = await make_sim(negotiation=[])
    clients = [await Client.connect(sim) for _ in range(32)]
    extra = await Client.connect(sim, welcome=False)
    await until(lambda: extra.closed)
    assert extra.lines == [] and sim.refused == 1
    for client in [*clients, extra]:
        await client.close()


def test_knobs_are_validated() -> None:
    for bad in (
        {"negotiation": ["MAYBE 24"]},
        {"negotiation": ["DO 256"]},
        {"blocks": {"A/B": {}}},
        {"blocks": {"DEVICE": {}}},
        {"blocks": {"L": {"min": 0, "max": -1}}},
        {"blocks": {"L": {"level": 50}}},
        {"presets": {1: {"levels": {"Nope/1": 0}}}},
        {"presets": {1: {"levels": {"Mute1/1": 0}}}},
    ):
        with pytest.raises(ValueError):
            TesiraKnobs.model_validate(bad)


def test_blocks_from_the_device_config() -> None:
    device = TesiraConfig.model_validate(
        {
            "driver": "tesira",
            "transport": "tcp://127.0.0.1",
            "controls": {
                "program": {"tag": "Level1", "channel": 2, "max": 20},
                "mic": {"tag": "Level1", "channel": 1, "mute_tag": "Mute 2", "mute_channel": 3},
                "gate": {"tag": "Mute 2", "type": "mute", "channel": 4},
            },
        }
    )
    options = TesiraSimulator.options_for(device)
    assert options == {
        "blocks": {
            "Level1": {"type": "level", "channels": 2, "min": -100.0, "max": 20},
            "Mute 2": {"type": "mute", "channels": 4},
        }
    }
    TesiraKnobs.model_validate(options)


def test_command_line_knobs() -> None:
    _, knobs = parse_args(
        ["tesira", "--port", "0", "--blocks", '{"L1": {"channels": 2}}', "--line-ending", "crnul"]
    )
    assert isinstance(knobs, TesiraKnobs)
    assert knobs.blocks["L1"].channels == 2 and knobs.line_ending == "crnul"
    _, knobs = parse_args(["tesira", "--negotiation", "DO 24,WILL 1", "--no-strict-negotiation"])
    assert isinstance(knobs, TesiraKnobs)
    assert knobs.negotiation == ["DO 24", "WILL 1"] and knobs.strict_negotiation is False
