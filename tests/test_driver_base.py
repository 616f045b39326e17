"""The driver base on its own: a tiny line protocol over a real loopback socket, and the queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from drivers.actions import action
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.config import DeviceConfig
from drivers.errors import AvhubError, ErrorCode
from drivers.queue import Kind, Work, WorkQueue
from drivers.transport import ConnectionState, Receiver
from drivers.transport.backoff import Backoff
from drivers.transport.framing import DelimiterFramer
from drivers.transport.tcp import TcpTransport
from tests.helpers import until
from tests.rig import error_of


class LineDriver(Driver[DeviceConfig, bytes]):
    """`get` → `value N`; the device also pushes `push N` lines."""

    name = "line"

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(b"\n")

    def unsolicited(self, frame: bytes) -> None:
        if frame.startswith(b"push "):
            self.update(x=int(frame[5:]))

    @action()
    async def read_x(self) -> int:
        def match(frame: bytes) -> int | Wait:
            return int(frame[6:]) if frame.startswith(b"value ") else NOT_MINE

        value = await self.request(b"get\n", match)
        self.update(x=value)
        return value


@pytest.fixture
async def device() -> AsyncIterator[asyncio.Server]:
    """Answers `get` with `value 1` and, in the same write, a newer `push 2`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            writer.write(b"value 1\npush 2\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server
    server.close()
    await server.wait_closed()


@asynccontextmanager
async def online(
    cls: type[LineDriver],
    device: asyncio.Server,
    sink: Callable[[dict[str, Any]], None] = lambda _: None,
) -> AsyncIterator[LineDriver]:
    """A started driver of `cls`, online with `device`; stopped on exit."""
    port = device.sockets[0].getsockname()[1]
    config = DeviceConfig(driver=cls.name, transport=f"tcp://127.0.0.1:{port}")  # type: ignore[arg-type]
    driver = cls("d", config, sink)
    await driver.start(stagger=0)
    try:
        await until(lambda: driver.online, timeout=2)
        yield driver
    finally:
        await driver.stop()


async def test_a_push_behind_a_reply_is_applied_after_the_reply(device: asyncio.Server) -> None:
    changes: list[dict[str, Any]] = []
    async with online(LineDriver, device, changes.append) as driver:
        assert await driver.execute("read_x") == 1
        await until(lambda: changes[-1] == {"x": 2})
        assert driver.state["x"] == 2  # the newer pushed value, not the older reply
        assert [c["x"] for c in changes if "x" in c] == [1, 2]


async def test_an_action_in_unavailable_actions_is_refused_until_it_is_back(
    device: asyncio.Server,
) -> None:
    async with online(LineDriver, device) as driver:
        driver.update(unavailable_actions=["read_x"])
        err = await error_of(driver.execute("read_x"))
        assert err.code is ErrorCode.UNKNOWN_ACTION
        assert "read_x is unavailable" in str(err)
        assert "x" not in driver.state  # it never ran
        driver.update(unavailable_actions=[])
        assert await driver.execute("read_x") == 1


class ModelDriver(LineDriver):
    """A model without `read_x`, saying why."""

    name = "model"

    def unavailable_reason(self, action: str) -> str:
        return "this model has no x"


async def test_an_unavailable_action_is_refused_first_with_the_driver_s_reason() -> None:
    config = DeviceConfig(driver="model", transport="tcp://127.0.0.1:9")  # type: ignore[arg-type]
    driver = ModelDriver("d", config, lambda _: None)  # never started: offline
    driver.state["unavailable_actions"] = ["read_x"]
    err = await error_of(driver.execute("read_x", {"bogus": 1}))  # bad args too
    assert err.code is ErrorCode.UNKNOWN_ACTION
    assert str(err) == "d: read_x is unavailable (this model has no x)"
    err = await error_of(driver.execute("read_y"))
    assert err.code is ErrorCode.UNKNOWN_ACTION and "has no action 'read_y'" in str(err)


def test_state_version_counts_the_updates_that_changed_the_state() -> None:
    config = DeviceConfig(driver="line", transport="tcp://127.0.0.1:9")  # type: ignore[arg-type]
    published: list[dict[str, Any]] = []
    driver = LineDriver("d", config, published.append)
    driver.update(x=1)
    version = driver.state_version
    driver.update(x=1)
    driver.update({"x": 1})
    assert driver.state_version == version and published == [{"x": 1}]
    driver.update(x=2, y=3)
    assert driver.state_version == version + 1


def test_queue_priority_and_fifo() -> None:
    async def nothing() -> None:
        pass

    queue = WorkQueue()
    for kind, label in [
        (Kind.POLL, "p1"),
        (Kind.CONNECT, "c"),
        (Kind.COMMAND, "u1"),
        (Kind.POLL, "p2"),
        (Kind.COMMAND, "u2"),
    ]:
        queue.put(Work(kind, nothing, label=label))
    order = [work.label for work in iter(queue.take, None)]
    assert order == ["u1", "u2", "c", "p1", "p2"]


async def test_queued_commands_for_one_target_coalesce() -> None:
    async def nothing() -> None:
        pass

    loop = asyncio.get_running_loop()
    queue = WorkQueue()
    first, second, other = loop.create_future(), loop.create_future(), loop.create_future()
    a = queue.put(Work(Kind.COMMAND, nothing, ("set", "level"), "set -10", first))
    b = queue.put(Work(Kind.COMMAND, nothing, ("set", "level"), "set -3", second))
    queue.put(Work(Kind.COMMAND, nothing, ("set", "mute"), "mute", other))
    assert a is b and a.label == "set -3" and len(queue) == 2
    a.resolve("done")
    assert first.result() == second.result() == "done" and not other.done()
    polls = [queue.put(Work(Kind.POLL, nothing, ("poll", "status"))) for _ in range(3)]
    assert polls[0] is polls[2] and len(queue) == 3


def test_backoff_doubles_caps_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    backoff.reset()
    assert backoff.next_delay() == 1
    assert backoff.penalize() == 8
    jittery = Backoff(1.0, 8.0, jitter=0.2)
    delays = []
    for _ in range(20):
        jittery.reset()
        delays.append(jittery.next_delay())
    assert all(0.8 <= d <= 1.2 for d in delays) and len(set(delays)) > 1


class GreetedDriver(LineDriver):
    """LineDriver behind a device that says `hello` first; login waits for it."""

    name = "greeted"

    async def login(self) -> None:
        def greeting(frame: bytes) -> bytes | Wait:
            return frame if frame == b"hello" else NOT_MINE

        await self.request(None, greeting, timeout=0.5)


class LateOpen(TcpTransport):
    """A real TCP transport whose `open` returns only after the first bytes arrived:
    what some event loops do when the device speaks first (uvloop, a busy loop)."""

    async def open(self, receiver: Receiver) -> None:
        arrived = asyncio.Event()

        class Spy:
            def data_received(self, data: bytes) -> None:
                arrived.set()
                receiver.data_received(data)

            def connection_lost(self, exc: Exception | None) -> None:
                receiver.connection_lost(exc)

        await super().open(Spy())
        await asyncio.wait_for(arrived.wait(), 2)


async def test_bytes_that_arrive_while_the_transport_opens_are_not_lost() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        while await reader.readline():
            writer.write(b"value 7\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = DeviceConfig(
        driver="greeted",
        transport=f"tcp://127.0.0.1:{port}",  # type: ignore[arg-type]
        offline_after=1,
    )
    driver = GreetedDriver("d", config, lambda _: None, transport_factory=LateOpen)
    await driver.start(stagger=0)
    try:
        await until(lambda: driver.online, timeout=3)  # the greeting was seen: logged in
        assert await driver.execute("read_x") == 7
    finally:
        await driver.stop()
        server.close()
        await server.wait_closed()


async def test_a_stopped_driver_starts_again_and_reconnects_after_a_drop() -> None:
    """A hub that owns a device again (hub/cluster) starts its stopped driver once more."""
    connections: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.readline():
            writer.write(b"value 1\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = DeviceConfig(driver="line", transport=f"tcp://127.0.0.1:{port}")  # type: ignore[arg-type]
    driver = LineDriver("d", config, lambda _: None)
    try:
        for round_ in (1, 2):
            await driver.start(stagger=0)
            await until(lambda n=round_: len(connections) == n, timeout=3, message="a connection")
            assert await driver.execute("read_x") == 1
            assert driver.conn_state is ConnectionState.ONLINE
            await driver.stop()
            assert driver.conn_state is ConnectionState.CLOSED
        await driver.start(stagger=0)
        await until(lambda: len(connections) == 3, timeout=3, message="a third connection")
        connections[2].close()  # the device hangs up: the restarted driver reconnects by itself
        await until(lambda: len(connections) == 4, timeout=3, message="a reconnect")
        assert await driver.execute("read_x") == 1
    finally:
        await driver.stop()
        server.close()
        await server.wait_closed()


class BrokenIntervalDriver(LineDriver):
    """A poll group whose interval rule raises: a driver bug."""

    name = "broken-interval"

    def poll_groups(self) -> list[PollGroup]:
        def interval() -> float:
            raise ZeroDivisionError("driver bug")

        return [PollGroup("x", self.read_x, interval)]


async def test_a_failing_poll_interval_does_not_stop_commands(
    device: asyncio.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with online(BrokenIntervalDriver, device) as driver:
        assert await asyncio.wait_for(driver.execute("read_x"), 2) == 1
        assert "interval of poll group 'x' failed" in caplog.text


async def test_a_device_that_hangs_up_as_the_timeout_runs_out_is_offline_closed() -> None:
    """The loop is held up past the timeout (a loaded machine) while the device hangs up:
    the timer is due before the close is read, and the device is still `closed`."""
    hang_up = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            if hang_up.is_set():
                time.sleep(0.3)  # noqa: ASYNC251 -- holds the loop past the 0.1 s timeout
                writer.transport.abort()
                return
            writer.write(b"value 1\n")

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = DeviceConfig(
        driver="line",  # type: ignore[arg-type]
        transport=f"tcp://127.0.0.1:{port}",  # type: ignore[arg-type]
        timeout=0.1,
        retries=0,
        offline_after=1,
    )
    updates: list[dict[str, Any]] = []
    driver = LineDriver("d", config, updates.append)
    await driver.start(stagger=0)
    try:
        await until(lambda: driver.online, timeout=3)
        hang_up.set()
        with pytest.raises(AvhubError):
            await driver.execute("read_x")
        reasons = [u["offline_reason"] for u in updates if u.get("offline_reason")]
        assert reasons[:1] == ["closed"], updates
    finally:
        await driver.stop()
        server.close()
        await server.wait_closed()
