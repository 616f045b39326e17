"""Simulators of pipelining protocols answer several commands sent in one write, in order.

A raw client on a real loopback socket writes three commands at once, the way a
pipelined driver does, and reads the answers.
"""

from __future__ import annotations

import asyncio
import json

from drivers.tesira.codec import BANNER
from simulators.extron_sis import ExtronSimulator
from simulators.qsys import QsysSimulator
from simulators.tesira import TesiraSimulator
from tests.helpers import SimulatorStarter


async def read_lines(reader: asyncio.StreamReader, count: int, end: bytes = b"\r\n") -> list[str]:
    return [
        (await asyncio.wait_for(reader.readuntil(end), 2)).decode().strip() for _ in range(count)
    ]


async def test_extron_answers_three_commands_of_one_write_in_order(
    simulators: SimulatorStarter,
) -> None:
    sim = await simulators(ExtronSimulator, inputs=8, outputs=4, firmware="2.01")
    reader, writer = await asyncio.open_connection(*sim.address)
    try:
        await read_lines(reader, 2)  # banner, date
        writer.write(b"\x1b0*1*1VC\rQ3*2!")  # video ties, firmware, a tie: mixed kinds
        assert await read_lines(reader, 3) == [
            "01 02 03 04" + " --" * 12 + " Vid",
            "2.01",
            "Out02 In03 All",
        ]
        writer.write(b"N1V9*9!")  # part number, output 1 volume, a tie from no input 9
        assert await read_lines(reader, 3) == ["60-882-01", "64", "E01"]
        assert sim.burst == 3
    finally:
        writer.close()


async def test_tesira_answers_three_commands_of_one_write_in_order(
    simulators: SimulatorStarter,
) -> None:
    sim = await simulators(
        TesiraSimulator, negotiation=[], blocks={"Level1": {"channels": 2, "level": -6}}
    )
    reader, writer = await asyncio.open_connection(*sim.address)
    try:
        assert BANNER in (await reader.readuntil(BANNER.encode())).decode()
        await read_lines(reader, 1)
        writer.write(b"Level1 get level 2\nLevel1 set mute 1 true\nLevel1 get mute 1\n")
        assert await read_lines(reader, 3) == ['+OK "value":-6.000000', "+OK", '+OK "value":true']
        assert sim.burst == 3
    finally:
        writer.close()


async def test_qsys_answers_three_requests_of_one_write_by_id(simulators: SimulatorStarter) -> None:
    sim = await simulators(QsysSimulator)
    reader, writer = await asyncio.open_connection(*sim.address)
    try:
        await reader.readuntil(b"\0")  # EngineStatus
        requests = [
            {"jsonrpc": "2.0", "id": 7, "method": "Control.Get", "params": ["MainGain"]},
            {"jsonrpc": "2.0", "id": 3, "method": "Nope", "params": {}},
            {"jsonrpc": "2.0", "id": 5, "method": "NoOp", "params": {}},
        ]
        writer.write(b"".join(json.dumps(r).encode() + b"\0" for r in requests))
        answers = [json.loads((await reader.readuntil(b"\0"))[:-1]) for _ in requests]
        assert [a["id"] for a in answers] == [7, 3, 5]
        assert answers[0]["result"][0]["Name"] == "MainGain"
        assert answers[1]["error"]["code"] == -32601
        assert "result" in answers[2]
        assert sim.burst == 3
    finally:
        writer.close()
