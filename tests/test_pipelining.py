"""Pipelined requests (`request_many`) on a tiny in-order line protocol over real loopback sockets.

The device answers `get K` with `v K` and knows nothing of ids: only the order of the
replies says which request each answers. Driver-level tests (Extron, Tesira, Q-SYS
against their simulators) are in the files of those drivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from drivers.actions import Args, action
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.config import DeviceConfig
from drivers.errors import CommandTimeout, ConnectionClosed, DeviceError, ErrorCode
from drivers.transport.framing import DelimiterFramer
from tests.helpers import until
from tests.rig import error_of

Answer = Callable[[str], list[str]]


class KeyDevice:
    """A line device: every read's lines are logged and their answers written in one write.

    `answer(line)` gives the lines to send back (none: the reply is lost); by default
    `get K` gets `v K`. `delay` holds each read's answers back that long; with
    `trickle` each answer line is written alone, that long after the one before.
    """

    def __init__(
        self, answer: Answer | None = None, delay: float = 0.0, trickle: float = 0.0
    ) -> None:
        self.answer = answer or (lambda line: [f"v {line[4:]}"])
        self.delay = delay
        self.trickle = trickle
        self.reads: list[list[str]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def lines(self) -> list[str]:
        """Every line received, in order."""
        return [line for read in self.reads for line in read]

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def drop(self) -> None:
        """Break every connection now."""
        for writer in self._writers:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        buffer = b""
        try:
            while data := await reader.read(4096):
                buffer += data
                *complete, buffer = buffer.split(b"\n")
                lines = [line.decode() for line in complete]
                self.reads.append(lines)
                if self.delay:
                    await asyncio.sleep(self.delay)
                out = [f"{reply}\n".encode() for line in lines for reply in self.answer(line)]
                if not self.trickle:
                    writer.write(b"".join(out))
                    continue
                for reply in out:
                    await asyncio.sleep(self.trickle)
                    writer.write(reply)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class Keys(Args):
    keys: list[str]


class KeyDriver(Driver[DeviceConfig, bytes]):
    """Reads keys, several at once; `v x N` replies and `push N` notices both set `x`."""

    name = "keys"
    pipelined = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[PollGroup] = []

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(b"\n")

    def poll_groups(self) -> list[PollGroup]:
        return self.groups

    def unsolicited(self, frame: bytes) -> None:
        if frame.startswith(b"push "):
            self.update(x=int(frame[5:]))

    def match(self, frame: bytes) -> str | Wait:
        """Any `v` line is the answer; `err` is a refusal. Nothing says which request it answers."""
        if frame.startswith(b"err "):
            raise DeviceError(ErrorCode.DEVICE_ERROR, f"refused {frame[4:].decode()}")
        if not frame.startswith(b"v "):
            return NOT_MINE
        value = frame[2:].decode()
        if value.startswith("x "):
            self.update(x=int(value[2:]))  # applied as read, in stream order
        return value

    async def read(self, *keys: str) -> list[str]:
        return await self.request_many([(f"get {k}\n".encode(), self.match) for k in keys])

    @action(Keys)
    async def read_keys(self, args: Keys) -> list[str]:
        return await self.read(*args.keys)

    @action()
    async def ping(self) -> str:
        return await self.request(b"get ping\n", self.match)


@asynccontextmanager
async def running(
    device: KeyDevice,
    groups: Callable[[KeyDriver], list[PollGroup]] | None = None,
    sink: Callable[[dict[str, Any]], None] = lambda _: None,
    **settings: Any,
) -> AsyncIterator[KeyDriver]:
    """A KeyDriver online with `device` (started here), polling `groups`; stopped on exit."""
    port = await device.start()
    config = DeviceConfig.model_validate(
        {"driver": "keys", "transport": f"tcp://127.0.0.1:{port}", **settings}
    )
    driver = KeyDriver("d", config, sink)
    if groups is not None:
        driver.groups = groups(driver)
    await driver.start(stagger=0)
    try:
        await until(lambda: driver.online, timeout=3, message="online")
        yield driver
    finally:
        await driver.stop()
        await device.stop()


async def test_a_group_goes_out_in_one_write_and_replies_are_matched_in_order() -> None:
    device = KeyDevice()
    async with running(device) as driver:
        assert await driver.execute("read_keys", {"keys": ["a", "b", "c"]}) == ["a", "b", "c"]
        assert device.reads[-1] == ["get a", "get b", "get c"]
        assert await driver.execute("ping") == "ping"  # the stream is still in step


async def test_replies_that_trickle_in_one_read_each_still_match_in_order() -> None:
    device = KeyDevice(trickle=0.02)
    async with running(device) as driver:
        assert await driver.read("a", "b", "c") == ["a", "b", "c"]
        assert await driver.read("d", "e") == ["d", "e"]


def lose_once(lost: str) -> Answer:
    """Answers as usual, but not the first `lost` line."""
    seen: list[str] = []

    def answer(line: str) -> list[str]:
        if line == lost and not seen:
            seen.append(line)
            return []
        return [f"v {line[4:]}"]

    return answer


async def test_a_reply_missing_in_the_middle_times_out_that_group_only() -> None:
    device = KeyDevice(lose_once("get b"))
    async with running(device, timeout=0.3, retries=0) as driver:
        assert await driver.execute("ping") == "ping"
        err = await error_of(driver.execute("read_keys", {"keys": ["a", "b", "c"]}))
        assert isinstance(err, CommandTimeout) and err.code is ErrorCode.TIMEOUT
        assert "of 3 written together" in str(err)  # `v c` answered b: c is the one left
        assert device.reads[1] == ["get a", "get b", "get c"]
        assert driver.online  # one failure is not offline_after
        # The next group starts in step, on a new connection: the stray `v c` is gone.
        assert await driver.execute("read_keys", {"keys": ["d", "e", "f"]}) == ["d", "e", "f"]
        assert device.connections == 2
        assert await driver.execute("ping") == "ping"


async def test_a_group_with_a_lost_reply_is_retried_whole() -> None:
    device = KeyDevice(lose_once("get b"))
    async with running(device, timeout=0.3, retries=1) as driver:
        assert await driver.execute("read_keys", {"keys": ["a", "b", "c"]}) == ["a", "b", "c"]
        assert device.lines == ["get a", "get b", "get c"] * 2
        assert device.connections == 2


async def test_a_refused_request_fails_the_group_once_every_reply_is_in() -> None:
    """An error reply answers its request: the others still take theirs, the stream stays in step."""
    device = KeyDevice(lambda line: ["err b"] if line == "get b" else [f"v {line[4:]}"])
    async with running(device) as driver:
        err = await error_of(driver.execute("read_keys", {"keys": ["x 1", "b", "x 3"]}))
        assert isinstance(err, DeviceError) and str(err) == "refused b"
        assert driver.state["x"] == 3  # the request after the refused one was matched and applied
        assert await driver.execute("ping") == "ping"
        assert device.connections == 1  # the device answered: no reconnect


async def test_notices_between_pipelined_replies_are_applied_in_stream_order() -> None:
    def answer(line: str) -> list[str]:  # each reply followed by a newer pushed value
        n = int(line.rsplit(" ", 1)[1])
        return [f"v x {n}", f"push {n + 1}"]

    changes: list[dict[str, Any]] = []
    device = KeyDevice(answer)
    async with running(device, sink=changes.append) as driver:
        assert await driver.read("x 1", "x 3", "x 5") == ["x 1", "x 3", "x 5"]
        await until(lambda: driver.state.get("x") == 6, message="the last push applied")
        assert [c["x"] for c in changes if "x" in c] == [1, 2, 3, 4, 5, 6]
        assert device.reads[-1] == ["get x 1", "get x 3", "get x 5"]


async def test_a_user_command_issued_while_a_pipelined_poll_is_in_flight_runs_next() -> None:
    device = KeyDevice(delay=0.2)

    def groups(driver: KeyDriver) -> list[PollGroup]:
        async def poll() -> None:
            await driver.read("a", "b")
            await driver.read("c", "d")

        return [PollGroup("keys", poll, lambda: 30.0)]

    async with running(device, groups) as driver:
        await until(lambda: device.lines[:2] == ["get a", "get b"], message="first group sent")
        assert await driver.execute("ping") == "ping"
        await until(lambda: len(device.lines) == 5, message="the poll's second group")
        assert device.lines == ["get a", "get b", "get ping", "get c", "get d"]
        assert device.reads == [["get a", "get b"], ["get ping"], ["get c", "get d"]]


async def test_a_device_with_command_delay_is_never_pipelined() -> None:
    device = KeyDevice()
    async with running(device, command_delay=0.01) as driver:
        assert await driver.execute("read_keys", {"keys": ["a", "b", "c"]}) == ["a", "b", "c"]
        assert device.reads == [["get a"], ["get b"], ["get c"]]


async def test_without_pipelining_a_refusal_still_lets_the_rest_run() -> None:
    device = KeyDevice(lambda line: ["err b"] if line == "get b" else [f"v {line[4:]}"])
    async with running(device, command_delay=0.01) as driver:
        err = await error_of(driver.execute("read_keys", {"keys": ["x 1", "b", "x 3"]}))
        assert str(err) == "refused b"
        assert driver.state["x"] == 3
        assert device.lines == ["get x 1", "get b", "get x 3"]


async def test_a_lost_connection_fails_a_group_in_flight() -> None:
    device = KeyDevice(lambda line: [] if line == "get b" else [f"v {line[4:]}"])
    async with running(device, timeout=5, retries=0) as driver:
        reading = asyncio.ensure_future(driver.read("a", "b", "c"))
        await until(lambda: "get b" in device.lines, message="group sent")
        device.drop()
        err = await error_of(reading)
        assert isinstance(err, ConnectionClosed)


async def test_each_request_of_a_group_counts_its_own_latency_from_the_write() -> None:
    device = KeyDevice(trickle=0.05)  # the replies come 0.05, 0.10 and 0.15 s after the write
    async with running(device) as driver:
        stats = driver.stats
        requests, latency = stats.requests, stats.latency_sum
        assert await driver.read("a", "b", "c") == ["a", "b", "c"]
        assert stats.requests - requests == 3
        assert stats.latency_sum - latency >= 0.05 + 0.10 + 0.15


async def test_a_timed_out_group_counts_its_unanswered_requests_and_retries_each() -> None:
    device = KeyDevice(lose_once("get b"))  # `v c` answers b: c alone times out
    async with running(device, timeout=0.3, retries=1) as driver:
        stats = driver.stats
        requests, timeouts, retries = stats.requests, stats.timeouts, stats.retries
        assert await driver.read("a", "b", "c") == ["a", "b", "c"]
        assert stats.timeouts - timeouts == 1
        assert stats.retries - retries == 3  # the whole group was sent again
        assert stats.requests - requests == 2 + 3  # answered on each try


async def test_each_reply_of_a_group_gets_the_timeout_after_the_one_before() -> None:
    device = KeyDevice(trickle=0.1)  # four replies over 0.4 s, each 0.1 s after the last
    async with running(device, timeout=0.3, retries=0) as driver:
        assert await driver.read("a", "b", "c", "d") == ["a", "b", "c", "d"]
        assert device.reads == [["get a", "get b", "get c", "get d"]]
        assert driver.stats.timeouts == 0


async def test_a_slow_devices_groups_go_in_parts_with_commands_between() -> None:
    """Replies 0.2 s apart: once seen, a group of four goes out in twos, a command between."""
    device = KeyDevice(trickle=0.2)

    def groups(driver: KeyDriver) -> list[PollGroup]:
        return [PollGroup("keys", partial(driver.read, "a", "b", "c", "d"), 30.0)]

    async with running(device, groups) as driver:
        await until(lambda: driver.stats.requests == 4, message="the first poll answered")
        assert device.reads == [["get a", "get b", "get c", "get d"]]  # the pace was unknown
        driver.refresh(["keys"])
        await until(lambda: len(device.lines) == 6, message="the second poll's first part")
        assert await driver.execute("ping") == "ping"
        await until(lambda: driver.stats.requests == 9, message="the second poll answered")
        assert device.reads[1:] == [["get a", "get b"], ["get ping"], ["get c", "get d"]]
