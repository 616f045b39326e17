"""Turns at start-up: devices do their first connect and read a few at a time (drivers/startup.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.config import DeviceConfig
from drivers.startup import StartGate
from drivers.transport.framing import DelimiterFramer
from tests.helpers import closed_tcp_port, until

ROUND = 3  # requests in a device's first round: one per poll group


class CountingDevices:
    """A loopback server for many devices: answers `get` after `delay`; counts, per
    connection, the requests it got, and the most connections at once in their first round."""

    def __init__(self, delay: float = 0.05, answer: bool = True) -> None:
        self.delay = delay
        self.answer = answer
        self.in_first_round = 0
        self.most_in_first_round = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._enter()
        asked = 0
        try:
            while await reader.readline():
                if not self.answer:
                    continue
                await asyncio.sleep(self.delay)
                asked += 1
                if asked == ROUND:
                    self.in_first_round -= 1
                writer.write(b"value 1\n")
        finally:
            if asked < ROUND:
                self.in_first_round -= 1
            writer.close()

    def _enter(self) -> None:
        self.in_first_round += 1
        self.most_in_first_round = max(self.most_in_first_round, self.in_first_round)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


class ReadDriver(Driver[DeviceConfig, bytes]):
    """Stays connected and polls three groups, each one `get`."""

    name = "read"

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(b"\n")

    def poll_groups(self) -> list[PollGroup]:
        return [PollGroup(f"g{i}", self._read, 60.0) for i in range(ROUND)]

    async def _read(self) -> None:
        def match(frame: bytes) -> int | Wait:
            return int(frame[6:]) if frame.startswith(b"value ") else NOT_MINE

        self.update(x=await self.request(b"get\n", match))


@pytest.fixture
async def devices() -> AsyncIterator[CountingDevices]:
    counting = CountingDevices()
    counting.server = await asyncio.start_server(counting.serve, "127.0.0.1", 0)
    yield counting
    counting.server.close()
    await counting.server.wait_closed()


async def start(ports: list[int], **options: Any) -> list[ReadDriver]:
    """A started driver per port, all at once (no stagger)."""
    drivers = []
    for i, port in enumerate(ports):
        config = DeviceConfig(driver="read", transport=f"tcp://127.0.0.1:{port}", **options)  # type: ignore[arg-type]
        driver = ReadDriver(f"d{i}", config, lambda _: None)
        await driver.start(stagger=0)
        drivers.append(driver)
    return drivers


async def stop(drivers: list[ReadDriver]) -> None:
    await asyncio.gather(*(d.stop() for d in drivers))


async def test_at_most_limit_devices_are_in_their_first_round_and_all_come_online(
    devices: CountingDevices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drivers.worker.START_GATE", gate := StartGate(limit=3, hold=30))
    drivers = await start([devices.port] * 12)
    try:
        await until(lambda: all(d.state.get("x") == 1 for d in drivers), timeout=10)
        assert all(d.online for d in drivers)
        assert devices.most_in_first_round == 3
        await until(lambda: gate.busy() == 0)  # every turn given back
    finally:
        await stop(drivers)


async def test_a_device_that_cannot_connect_gives_its_turn_up_at_once(
    devices: CountingDevices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drivers.worker.START_GATE", StartGate(limit=1, hold=30))
    drivers = await start([closed_tcp_port(), devices.port])
    try:
        await until(lambda: drivers[1].state.get("x") == 1, timeout=5)
        assert not drivers[0].online
    finally:
        await stop(drivers)


async def test_a_device_keeps_its_turn_for_hold_seconds_at_most(
    devices: CountingDevices, monkeypatch: pytest.MonkeyPatch
) -> None:
    mute = CountingDevices(answer=False)
    mute.server = await asyncio.start_server(mute.serve, "127.0.0.1", 0)
    monkeypatch.setattr("drivers.worker.START_GATE", StartGate(limit=1, hold=0.2))
    drivers = await start([mute.port, devices.port], timeout=60)  # the first never answers
    try:
        await until(lambda: drivers[1].state.get("x") == 1, timeout=5)
        assert "x" not in drivers[0].state  # still waiting for its first reply
    finally:
        await stop(drivers)
        mute.server.close()
        await mute.server.wait_closed()


async def test_turns_go_first_come_first_served_and_a_cancelled_waiter_leaves_no_hole() -> None:
    gate = StartGate(limit=1, hold=30)
    first = await gate.turn()
    order: list[str] = []

    async def wait(name: str) -> None:
        (await gate.turn()).end()
        order.append(name)

    waiting = [asyncio.create_task(wait(name)) for name in "abc"]
    await until(lambda: gate.waiting() == 3)
    waiting[1].cancel()
    await until(lambda: gate.waiting() == 2)
    first.end()
    first.end()  # ending twice gives back one turn
    await asyncio.gather(*waiting, return_exceptions=True)
    assert order == ["a", "c"]
    assert gate.busy() == 0


def test_a_gate_needs_a_turn_and_a_hold() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        StartGate(limit=0)
    with pytest.raises(ValueError, match="hold > 0"):
        StartGate(hold=0)
