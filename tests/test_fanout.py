"""The room fan-out: direct WebSocket writes, the handoff after CONNECT, slow panels, and the
Engine.IO/Socket.IO internals it leans on (pinned in pyproject.toml)."""

from __future__ import annotations

import asyncio
import inspect
import json
from importlib import metadata
from typing import Any

import pytest
import socketio
from engineio import async_socket
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from bench.wire import EIO_PATH, WsClient, sio_connect
from hub.app import Hub
from hub.rooms import Fanout, Mode
from tests.helpers import until

CONFIG = {"rooms": {"lobby": {"devices": {}}}}


class RawPanel:
    """A bare Engine.IO/Socket.IO WebSocket client that records every text packet in order."""

    def __init__(self, hub: Hub, auth: dict[str, Any] | None = None) -> None:
        assert hub.address is not None
        self.host, self.port = hub.address
        self.auth = auth or {}
        self.packets: list[str] = []
        self.received: list[tuple[str, Any]] = []
        self.closed = asyncio.Event()
        self.ws: WsClient | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.ws = await loop.create_connection(
            lambda: WsClient(self.host, self.port, EIO_PATH, self._on_text, self.closed.set),
            self.host,
            self.port,
        )
        await self.ws.opened

    def _on_text(self, text: str) -> None:
        self.packets.append(text if len(text) < 200 else text[:200])
        if text.startswith("42/rooms/lobby,"):
            name, data = json.loads(text[len("42/rooms/lobby,") :])
            self.received.append((name, {k: v for k, v in data.items() if k != "state"}))
        assert self.ws is not None
        if text.startswith("0"):
            self.ws.send_text(sio_connect("/rooms/lobby", self.auth))
        elif text == "2":
            self.ws.send_text("3")

    def events(self) -> list[tuple[str, Any]]:
        return self.received

    @property
    def seq(self) -> int:
        return int(self.received[-1][1]["seq"]) if self.received else -1

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


def fanout(hub: Hub) -> Fanout:
    fan = hub.namespaces["lobby"].fanout
    assert fan is not None
    return fan


def commit(hub: Hub, n: int, size: int = 0) -> None:
    room = hub.rooms["lobby"]
    for _ in range(n):
        room.commit("dev", {"probe": room.seq + 1, **({"blob": "x" * size} if size else {})})


async def lobby_hub(hub_factory: Any) -> Hub:
    hub: Hub = await hub_factory(CONFIG)
    hub.rooms["lobby"].add_device("dev", "Dev", "test", {"online": True}, {})
    return hub


async def test_connect_then_snapshot_then_contiguous_changes_while_changes_stream(
    hub_factory: Any,
) -> None:
    """Panels joining mid-stream: CONNECT first, then their snapshot, then every later change."""
    hub = await lobby_hub(hub_factory)
    stop = asyncio.Event()

    async def churn() -> None:
        while not stop.is_set():
            commit(hub, 3)
            await asyncio.sleep(0)

    task = asyncio.create_task(churn())
    panels = [RawPanel(hub) for _ in range(20)]
    try:
        await asyncio.gather(*(p.connect() for p in panels))
        await until(lambda: all(len(p.events()) > 5 for p in panels))
    finally:
        stop.set()
        await task
    room = hub.rooms["lobby"]
    await until(lambda: all(p.seq == room.seq for p in panels))
    for panel in panels:
        kinds = [t[:2] for t in panel.packets if t[0] == "4"]
        assert kinds[0] == "40", panel.packets[:3]  # the namespace CONNECT comes first
        (first, snapshot), *changes = panel.events()
        assert first == "snapshot"
        seqs = [c["seq"] for name, c in changes if name == "change"]
        assert seqs == list(range(snapshot["seq"] + 1, room.seq + 1))
    assert fanout(hub).modes() == {"direct": len(panels)}
    for panel in panels:
        panel.close()


async def test_a_change_committed_as_a_panel_joins_is_in_its_snapshot_only(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipients of a change are the panels joined when it is committed, not when sent."""
    hub = await lobby_hub(hub_factory)
    watcher = RawPanel(hub)
    await watcher.connect()
    await until(lambda: watcher.seq == hub.rooms["lobby"].seq)
    namespace = hub.namespaces["lobby"]
    real = namespace.on_connect
    raced: list[int] = []  # the seq committed by the injection, once it ran

    async def racing(sid: str, environ: Any, auth: Any = None) -> None:
        commit(hub, 1)  # committed in the same loop turn, just before this panel joins
        raced.append(hub.rooms["lobby"].seq)
        await real(sid, environ, auth)

    monkeypatch.setattr(namespace, "on_connect", racing)
    late = RawPanel(hub)
    await late.connect()
    await until(lambda: late.events())
    commit(hub, 1)
    room = hub.rooms["lobby"]
    await until(lambda: late.seq == room.seq and watcher.seq == room.seq)
    assert raced == [room.seq - 1]  # the injection ran, once, for the late panel
    (first, snapshot), *changes = late.events()
    assert first == "snapshot" and snapshot["seq"] == room.seq - 1
    assert [c["seq"] for _, c in changes] == [room.seq]
    watcher.close()
    late.close()


async def test_resume_replays_before_live_changes_over_direct_writes(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    room = hub.rooms["lobby"]
    commit(hub, 10)
    panel = RawPanel(hub, {"resume": {"epoch": room.epoch, "seq": 4}})
    await panel.connect()
    commit(hub, 5)
    await until(lambda: panel.seq == room.seq)
    assert [c["seq"] for _, c in panel.events()] == list(range(5, room.seq + 1))
    panel.close()


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_long_polling_panels_are_served_through_engineio_in_order(
    hub_factory: Any, transports: list[str]
) -> None:
    """A long-polling panel stays on Engine.IO's queue; one that upgrades goes direct."""
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    seen: list[int] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("snapshot", lambda data: seen.append(data["seq"]), namespace="/rooms/lobby")
    sio.on("change", lambda data: seen.append(data["seq"]), namespace="/rooms/lobby")
    await sio.connect(
        f"http://127.0.0.1:{hub.address[1]}", namespaces=["/rooms/lobby"], transports=transports
    )
    try:
        room = hub.rooms["lobby"]
        for _ in range(20):
            commit(hub, 2)
            await asyncio.sleep(0.02)
        await until(lambda: seen and seen[-1] == room.seq)
        assert seen == list(range(seen[0], room.seq + 1))
        expected = "queued" if transports == ["polling"] else "direct"
        await until(lambda: fanout(hub).modes() == {expected: 1}, message=str(fanout(hub).modes()))
    finally:
        sockets = list(hub.sio.eio.sockets.values())
        leaving = asyncio.create_task(sio.disconnect())
        await until(lambda: all(s.closed for s in sockets))
        for sock in sockets:  # a long-poll GET returns on a packet or after pingInterval
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
        await leaving
    await until(lambda: len(fanout(hub)) == 0)


async def test_a_panel_that_stops_reading_is_disconnected(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Fanout, "max_buffer", 256 * 1024)
    hub = await lobby_hub(hub_factory)
    stuck, fine = RawPanel(hub), RawPanel(hub)
    await stuck.connect()
    await fine.connect()
    await until(lambda: fanout(hub).modes() == {"direct": 2})
    assert stuck.ws is not None and stuck.ws.transport is not None
    stuck.ws.transport.pause_reading()
    for _ in range(200):  # 20 MB: more than socket buffers and max_buffer hold
        commit(hub, 1, size=100_000)
        await asyncio.sleep(0.005)
        if len(fanout(hub)) == 1:
            break
    await until(lambda: len(fanout(hub)) == 1)
    room = hub.rooms["lobby"]
    await until(lambda: fine.seq == room.seq, timeout=10)
    stuck.ws.transport.resume_reading()
    await until(lambda: stuck.closed.is_set(), timeout=10)  # the hub hung up on it
    await until(lambda: len(hub.sio.eio.sockets) == 1)
    fine.close()


def test_engineio_internals_the_fanout_relies_on() -> None:
    """Fails when a python-engineio release moves what `hub.rooms.Fanout` leans on."""
    assert metadata.version("python-engineio").startswith("4.15.")
    assert metadata.version("python-socketio").startswith("5.18.")
    driver = eio_aiohttp._async["websocket"]
    call = inspect.signature(driver.__call__)
    assert list(call.parameters) == ["self", "environ"]
    assert list(inspect.signature(driver.__init__).parameters) == ["self", "handler", "server"]
    source = inspect.getsource(async_socket.AsyncSocket._websocket_handler)
    # Each queued packet is encoded right before it is written: the handoff marker's hook.
    assert "await ws.send(pkt.encode())" in source
    assert "self.upgraded = True" in source
    sock = async_socket.AsyncSocket(type("S", (), {"create_queue": asyncio.Queue})(), "sid")
    for name in ("queue", "upgraded", "upgrading", "closed", "sid"):
        assert hasattr(sock, name), name
    assert isinstance(sock.queue, asyncio.Queue)
    assert Mode.DIRECT.value == "direct"


async def test_hub_stop_hangs_up_on_connected_panels_promptly(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    panels = [RawPanel(hub) for _ in range(3)]
    for panel in panels:
        await panel.connect()
    await until(lambda: all(p.events() for p in panels))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hub.stop()
    assert loop.time() - started < 1.5
    for panel in panels:
        await until(lambda p=panel: p.closed.is_set())
        assert "1" in panel.packets  # an Engine.IO CLOSE, not just a dropped connection
