"""Samsung MDC simulator over a real loopback socket, spoken to in raw bytes."""

from __future__ import annotations

import asyncio
import os
import termios
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.samsung_mdc.codec import TLS_PREAMBLE, Cmd, Frame, Reply, Status
from drivers.samsung_mdc.config import SamsungMdcConfig
from simulators import SIMULATORS
from simulators.__main__ import parse_args
from simulators.samsung_mdc import SamsungMdcKnobs, SamsungMdcSimulator
from tests.helpers import SimulatorStarter, until

SILENCE = 0.15  # how long "no answer" is waited for


class Client:
    """Raw MDC over TCP: frames out, reply frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def reply(self, timeout: float = 1.0) -> bytes:
        async with asyncio.timeout(timeout):
            head = await self.reader.readexactly(4)
            return head + await self.reader.readexactly(head[3] + 1)

    async def ask(self, cmd: int, display_id: int = 1, data: bytes = b"") -> bytes:
        self.writer.write(Frame(cmd, display_id, data).encode())
        return await self.reply()

    async def silent(self, raw: bytes) -> bool:
        """Send raw bytes; True when nothing comes back within SILENCE."""
        self.writer.write(raw)
        try:
            async with asyncio.timeout(SILENCE):
                await self.reader.read(1)
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def connect(simulators: SimulatorStarter) -> AsyncIterator[Callable[..., Any]]:
    writers: list[asyncio.StreamWriter] = []

    async def make(**knobs: Any) -> tuple[SamsungMdcSimulator, Client]:
        sim = await simulators(SamsungMdcSimulator, **{"display_id": 1, **knobs})
        reader, writer = await asyncio.open_connection(*sim.address)
        writers.append(writer)
        return sim, Client(reader, writer)

    yield make
    for writer in writers:
        writer.close()


def ack(cmd: int, values: bytes, display_id: int = 1) -> bytes:
    return Reply(display_id, True, cmd, values).encode()


def nak(cmd: int, display_id: int = 1) -> bytes:
    return Reply(display_id, False, cmd, b"\x01").encode()


async def test_verified_exchanges(connect: Any) -> None:
    sim, client = await connect(power="on")
    assert await client.ask(Cmd.POWER) == bytes.fromhex("AA FF 01 03 41 11 01 56")
    assert await client.ask(Cmd.MUTE, data=b"\x01") == bytes.fromhex("AA FF 01 03 41 13 01 58")
    assert await client.ask(Cmd.INPUT_SOURCE, data=b"\x21") == bytes.fromhex(
        "AA FF 01 03 41 14 21 79"
    )
    assert await client.ask(Cmd.POWER, data=b"\x00") == bytes.fromhex("AA FF 01 03 41 11 00 55")
    assert not sim.power and sim.mute


async def test_status_combines_power_volume_mute_input(connect: Any) -> None:
    _, client = await connect(power="on", volume=6, mute=True, input="PC")
    status = Status(power=True, volume=6, mute=True, input=0x14)
    assert await client.ask(Cmd.STATUS) == ack(Cmd.STATUS, status.encode())


async def test_other_display_ids_get_silence_and_any_id_an_answer(connect: Any) -> None:
    sim, client = await connect(display_id=3)
    assert await client.silent(Frame(Cmd.POWER, 4).encode())
    assert sim.ignored == 1
    assert await client.ask(Cmd.POWER, display_id=0xFE) == ack(Cmd.POWER, b"\x00", display_id=3)
    sim.knobs.answer_any_id = False
    assert await client.silent(Frame(Cmd.POWER, 0xFE).encode())


async def test_bad_values_and_unsupported_commands_are_naked(connect: Any) -> None:
    sim, client = await connect(power="on", unsupported=["model_name"])
    assert await client.ask(Cmd.VOLUME, data=b"\x65") == nak(Cmd.VOLUME)  # 101
    assert await client.ask(Cmd.MUTE, data=b"\x02") == nak(Cmd.MUTE)
    assert await client.ask(Cmd.INPUT_SOURCE, data=b"\x33") == nak(Cmd.INPUT_SOURCE)  # no HDMI 4
    assert await client.ask(Cmd.POWER, data=b"\x07") == nak(Cmd.POWER)
    assert await client.ask(Cmd.VOLUME, data=b"\x01\x02") == nak(Cmd.VOLUME)
    assert await client.ask(Cmd.STATUS, data=b"\x00") == nak(Cmd.STATUS)
    assert await client.ask(Cmd.MODEL_NAME) == nak(Cmd.MODEL_NAME)
    assert await client.ask(0x99) == nak(0x99)
    assert sim.volume == 10 and sim.input == "HDMI 1"


async def test_sets_while_off_are_naked_gets_answered(connect: Any) -> None:
    sim, client = await connect(volume=20)
    assert await client.ask(Cmd.VOLUME, data=b"\x05") == nak(Cmd.VOLUME)
    assert await client.ask(Cmd.VOLUME) == ack(Cmd.VOLUME, b"\x14")
    assert sim.volume == 20


async def test_text_queries(connect: Any) -> None:
    _, client = await connect(model_name="QM55B", serial_number="0AB1")
    assert await client.ask(Cmd.MODEL_NAME) == ack(Cmd.MODEL_NAME, b"QM55B")
    assert await client.ask(Cmd.SERIAL_NUMBER) == ack(Cmd.SERIAL_NUMBER, b"0AB1")


async def test_volume_steps(connect: Any) -> None:
    sim, client = await connect(power="on", volume=100)
    assert await client.ask(Cmd.VOLUME_STEP, data=b"\x00") == ack(Cmd.VOLUME_STEP, b"\x64")
    assert await client.ask(Cmd.VOLUME_STEP, data=b"\x01") == ack(Cmd.VOLUME_STEP, b"\x63")
    assert sim.volume == 99


@pytest.mark.parametrize("mode", ["nak", "silent"])
async def test_boot_delay_refuses_all_but_status_and_power(connect: Any, mode: str) -> None:
    sim, client = await connect(boot_delay=0.3, boot_reply=mode)
    assert await client.ask(Cmd.POWER, data=b"\x01") == ack(Cmd.POWER, b"\x01")
    assert sim.booting
    if mode == "nak":
        assert await client.ask(Cmd.VOLUME, data=b"\x05") == nak(Cmd.VOLUME)
    else:
        assert await client.silent(Frame(Cmd.VOLUME, 1, b"\x05").encode())
    assert (await client.ask(Cmd.STATUS))[6] == 1  # power on while booting
    await until(lambda: not sim.booting)
    assert await client.ask(Cmd.VOLUME, data=b"\x05") == ack(Cmd.VOLUME, b"\x05")


async def test_reboot_boots_again(connect: Any) -> None:
    sim, client = await connect(power="on", boot_delay=0.2)
    assert await client.ask(Cmd.POWER, data=b"\x02") == ack(Cmd.POWER, b"\x02")
    assert sim.power and sim.booting


@pytest.mark.parametrize("mode", ["nak", "silent"])
async def test_requests_with_bad_checksums_are_refused(connect: Any, mode: str) -> None:
    sim, client = await connect(bad_checksum=mode, power="on")
    bad = bytes.fromhex("AA 12 01 01 18 2B")  # volume 24 with ID 0's checksum
    if mode == "nak":
        client.writer.write(bad)
        assert await client.reply() == nak(Cmd.VOLUME)
    else:
        assert await client.silent(bad)
    assert sim.bad_checksums == 1 and sim.volume == 10  # not applied
    assert await client.ask(Cmd.VOLUME) == ack(Cmd.VOLUME, b"\x0a")  # the stream resynced


async def test_corrupt_every_spoils_the_checksum_but_applies(connect: Any) -> None:
    sim, client = await connect(power="on", corrupt_every=2)
    assert await client.ask(Cmd.VOLUME, data=b"\x05") == ack(Cmd.VOLUME, b"\x05")
    spoiled = await client.ask(Cmd.VOLUME, data=b"\x06")
    good = ack(Cmd.VOLUME, b"\x06")
    assert spoiled[:-1] == good[:-1] and spoiled[-1] != good[-1]
    assert sim.volume == 6


async def test_tls_display_greets_and_drops_plain_mdc(connect: Any) -> None:
    _, client = await connect(tls=True)
    async with asyncio.timeout(1):
        assert await client.reader.readexactly(len(TLS_PREAMBLE)) == TLS_PREAMBLE
    client.writer.write(Frame(Cmd.STATUS, 1).encode())
    async with asyncio.timeout(1):
        assert await client.reader.read() == b""  # closed, no MDC answer


async def test_garbage_never_holds_a_frame_start(connect: Any) -> None:
    sim, _ = await connect()
    assert all(0xAA not in sim.make_garbage() for _ in range(200))


async def test_a_failing_listener_is_logged_and_the_others_still_hear(
    connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim, _ = await connect()
    seen: list[str] = []
    sim.add_listener(lambda key, value: 1 / 0)
    sim.add_listener(lambda key, value: seen.append(key))
    sim.set_volume(40)
    assert seen == ["volume"] and sim.volume == 40
    assert "samsung_mdc simulator: state listener failed on volume" in caplog.text


async def test_front_panel_and_listeners(connect: Any) -> None:
    sim, client = await connect()
    seen: list[tuple[str, object]] = []
    remove = sim.add_listener(lambda key, value: seen.append((key, value)))
    sim.press_power(True)
    sim.set_input("DP 1")
    sim.set_volume(50)
    sim.set_mute(True)
    sim.set_mute(True)  # no change, no event
    remove()
    sim.set_volume(51)
    assert seen == [("power", True), ("input", 0x25), ("volume", 50), ("mute", True)]
    assert sim.input == "DisplayPort 1"
    with pytest.raises(ValueError):
        sim.set_input("HDMI 4")
    with pytest.raises(ValueError):
        sim.set_volume(101)
    assert await client.ask(Cmd.INPUT_SOURCE) == ack(Cmd.INPUT_SOURCE, b"\x25")


def test_knob_validation() -> None:
    for bad in (
        {"inputs": ["SDI 1"]},
        {"inputs": []},
        {"inputs": ["HDMI 1", "0x21"]},
        {"input": "PC", "inputs": ["HDMI 1"]},
        {"unsupported": ["teleport"]},
        {"display_id": 254},
    ):
        with pytest.raises(ValidationError):
            SamsungMdcKnobs.model_validate(bad)


def test_registry_cli_and_options_for_a_device() -> None:
    assert SIMULATORS["samsung_mdc"] is SamsungMdcSimulator
    args, knobs = parse_args(["samsung_mdc", "--display-id", "3", "--bad-checksum", "silent"])
    assert args.port == 1515
    assert isinstance(knobs, SamsungMdcKnobs)
    assert knobs.display_id == 3 and knobs.bad_checksum == "silent"
    device = SamsungMdcConfig.model_validate(
        {
            "driver": "samsung_mdc",
            "transport": "tcp://10.0.0.9",
            "display_id": 4,
            "inputs": {"HDMI 2": "Laptop", "DisplayPort 1": "PC"},
        }
    )
    options = SamsungMdcSimulator.options_for(device)
    assert options == {"display_id": 4, "inputs": ["0x23", "0x25"]}
    SamsungMdcKnobs.model_validate(options)


async def test_the_same_display_answers_on_its_serial_port() -> None:
    sim = SamsungMdcSimulator(SamsungMdcKnobs(display_id=1, power="on"))
    path = await sim.start_pty()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        termios.tcflush(fd, termios.TCIFLUSH)

        async def ask(raw: bytes, size: int = 8) -> bytes:
            os.write(fd, raw)
            got = b""
            async with asyncio.timeout(2):
                while len(got) < size:
                    got += await asyncio.to_thread(os.read, fd, 64)
            return got

        assert await ask(bytes.fromhex("AA 12 01 01 18 2C")) == ack(Cmd.VOLUME, b"\x18")
        assert await ask(bytes.fromhex("AA 13 01 01 01 15")) == nak(Cmd.MUTE)  # bad checksum
        assert sim.volume == 24 and not sim.mute and sim.bad_checksums == 1
    finally:
        os.close(fd)
        await sim.stop()
