"""The room fan-out: direct WebSocket writes, the handoff after CONNECT, slow panels, and the
Engine.IO/Socket.IO internals it leans on (pinned in pyproject.toml)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import weakref
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import aiohttp
import pytest
import socketio
from engineio import packet as eio_packet

from bench.wire import EIO_PATH, WsClient, sio_call, sio_connect
from hub import door as hub_door
from hub import fanout as hub_fanout
from hub.app import Hub
from hub.fanout import Fanout, Packet, RawJSON, direct_transports
from tests.helpers import until

CONFIG = {"rooms": {"lobby": {"devices": {}}}}


class RawPanel:
    """A bare Engine.IO/Socket.IO WebSocket client that records every text packet in order."""

    def __init__(
        self, hub: Hub, auth: dict[str, Any] | None = None, pong: bool = True, header: str = ""
    ) -> None:
        assert hub.address is not None
        self.header = header  # one more request header line (`Sec-WebSocket-Protocol: x`
        # makes it one aiohttp serves rather than the door)
        self.host, self.port = hub.address
        self.auth = auth or {}
        self.pong = pong  # answer Engine.IO's pings
        self.packets: list[str] = []
        self.received: list[tuple[str, Any]] = []
        self.closed = asyncio.Event()
        self.ws: WsClient | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()

        def client() -> WsClient:
            ws = WsClient(self.host, self.port, EIO_PATH, self._on_text, self.closed.set)
            if self.header:
                ws._request = ws._request[:-2] + self.header.encode() + b"\r\n\r\n"
            return ws

        _, self.ws = await loop.create_connection(client, self.host, self.port)
        await self.ws.opened

    def _on_text(self, text: str) -> None:
        self.packets.append(text if len(text) < 200 else text[:200])
        if text.startswith("42/rooms/lobby,"):
            name, data = json.loads(text[len("42/rooms/lobby,") :])
            self.received.append((name, {k: v for k, v in data.items() if k != "state"}))
        assert self.ws is not None
        if text.startswith("0"):
            self.ws.send_text(sio_connect("/rooms/lobby", self.auth))
        elif text == "2" and self.pong:
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
    room = hub.rooms["lobby"].store
    for _ in range(n):
        room.commit("dev", {"probe": room.seq + 1, **({"blob": "x" * size} if size else {})})


async def lobby_hub(hub_factory: Any) -> Hub:
    hub: Hub = await hub_factory(CONFIG)
    hub.rooms["lobby"].store.add_device("dev", "Dev", "test", {"online": True}, {})
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
    room = hub.rooms["lobby"].store
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
    await until(lambda: watcher.seq == hub.rooms["lobby"].store.seq)
    namespace = hub.namespaces["lobby"]
    real = namespace.on_connect
    raced: list[int] = []  # the seq committed by the injection, once it ran

    async def racing(sid: str, environ: Any, auth: Any = None) -> None:
        commit(hub, 1)  # committed in the same loop turn, just before this panel joins
        raced.append(hub.rooms["lobby"].store.seq)
        await real(sid, environ, auth)

    monkeypatch.setattr(namespace, "on_connect", racing)
    late = RawPanel(hub)
    await late.connect()
    await until(lambda: late.events())
    commit(hub, 1)
    room = hub.rooms["lobby"].store
    await until(lambda: late.seq == room.seq and watcher.seq == room.seq)
    assert raced == [room.seq - 1]  # the injection ran, once, for the late panel
    (first, snapshot), *changes = late.events()
    assert first == "snapshot" and snapshot["seq"] == room.seq - 1
    assert [c["seq"] for _, c in changes] == [room.seq]
    watcher.close()
    late.close()


async def test_resume_replays_before_live_changes_over_direct_writes(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    room = hub.rooms["lobby"].store
    commit(hub, 10)
    panel = RawPanel(hub, {"resume": {"epoch": room.epoch, "seq": 4}})
    await panel.connect()
    commit(hub, 5)
    await until(lambda: panel.seq == room.seq)
    assert [c["seq"] for _, c in panel.events()] == list(range(5, room.seq + 1))
    panel.close()


async def test_a_resuming_panel_is_replayed_the_events_as_sent_to_the_others(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay encodes nothing the panels already listening were sent: the namespace keeps
    the last change events as encoded (whatever the store), and only older ones are encoded."""
    hub = await lobby_hub(hub_factory)
    room = hub.rooms["lobby"].store
    commit(hub, 3)  # nobody listens: never encoded
    watcher = RawPanel(hub)
    await watcher.connect()
    await until(lambda: watcher.seq == room.seq)
    commit(hub, 10)
    encoded: list[Any] = []
    event = Fanout.event
    monkeypatch.setattr(Fanout, "event", lambda *a: encoded.append(a[2]["seq"]) or event(*a))
    panel = RawPanel(hub, {"resume": {"epoch": room.epoch, "seq": 1}})
    await panel.connect()
    await until(lambda: panel.seq == room.seq)
    assert [c["seq"] for _, c in panel.events()] == list(range(2, room.seq + 1))
    assert encoded == [2, 3]
    watcher.close()
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
        room = hub.rooms["lobby"].store
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


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_a_departed_panel_leaves_no_ping_task_asleep(
    hub_factory: Any, transports: list[str]
) -> None:
    """Engine.IO sleeps the ping interval (25 s) before each ping; a panel that leaves,
    long-polling or upgraded, must not leave that task holding its socket."""
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None and hub.sio.eio.ping_interval >= 20
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        f"http://127.0.0.1:{hub.address[1]}", namespaces=["/rooms/lobby"], transports=transports
    )
    [socket] = hub.sio.eio.sockets.values()
    ping = socket._avhub_ping
    assert ping is not None and not ping.done()
    leaving = asyncio.create_task(sio.disconnect())
    await until(lambda: socket.closed)
    socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends a pending long-poll GET
    await leaving
    await until(ping.done, message="the ping task still sleeps")
    assert ping.cancelled() and socket._avhub_ping is None


async def stuck_and_fine(hub: Hub) -> tuple[RawPanel, RawPanel]:
    """Two panels served directly, the first of which has stopped reading its socket."""
    stuck, fine = RawPanel(hub), RawPanel(hub)
    await stuck.connect()
    await fine.connect()
    await until(lambda: fanout(hub).modes() == {"direct": 2})
    assert stuck.ws is not None and stuck.ws.transport is not None
    stuck.ws.transport.pause_reading()
    return stuck, fine


async def test_a_panel_that_stops_reading_is_disconnected(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Fanout, "max_buffer", 256 * 1024)
    hub = await lobby_hub(hub_factory)
    stuck, fine = await stuck_and_fine(hub)
    for _ in range(200):  # 20 MB: more than socket buffers and max_buffer hold
        commit(hub, 1, size=100_000)
        await asyncio.sleep(0.005)
        if len(fanout(hub)) == 1:
            break
    await until(lambda: len(fanout(hub)) == 1)
    room = hub.rooms["lobby"].store
    await until(lambda: fine.seq == room.seq, timeout=10)
    stuck.ws.transport.resume_reading()
    await until(lambda: stuck.closed.is_set(), timeout=10)  # the hub hung up on it
    await until(lambda: len(hub.sio.eio.sockets) == 1)
    fine.close()


async def test_a_panel_that_asks_but_does_not_read_the_answers_is_disconnected(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers (acks) go through Engine.IO's queue, which has no bound: a panel that keeps
    asking `sync` and reads nothing is cut off once `MAX_UNSENT` wait for it."""
    monkeypatch.setattr(hub_fanout, "MAX_UNSENT", 20)
    hub = await lobby_hub(hub_factory)
    commit(hub, 1, size=200_000)  # each snapshot answer 200 KB
    stuck, fine = await stuck_and_fine(hub)
    assert stuck.ws is not None
    asking = {"epoch": "gone", "seq": 0}  # answered with a snapshot
    for ack in range(400):  # 80 MB of answers: more than socket buffers hold
        if stuck.closed.is_set() or len(hub.sio.eio.sockets) == 1:
            break
        stuck.ws.send_text(sio_call("/rooms/lobby", ack, "sync", asking))
        await asyncio.sleep(0.002)
    await until(lambda: len(hub.sio.eio.sockets) == 1, message="the panel is still connected")
    assert len(fanout(hub)) == 1
    commit(hub, 1)
    room = hub.rooms["lobby"].store
    await until(lambda: fine.seq == room.seq)  # the other panel is served as before
    fine.close()


async def test_the_engineio_internals_the_fanout_leans_on_behave_as_it_expects(
    hub_factory: Any,
) -> None:
    """What `hub/fanout.py` lists of python-engineio, checked through a real WebSocket.

    The hook learns each live WebSocket's transport under its Engine.IO sid and forgets
    it when the socket ends; it refuses permessage-deflate; the handoff found the
    namespace CONNECT in the socket's queue and took its place, so the CONNECT and the
    snapshot go out in one write and Engine.IO writes nothing after them.
    """
    assert metadata.version("python-engineio").startswith("4.15.")
    assert metadata.version("python-socketio").startswith("5.18.")
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    transports = direct_transports(hub.sio)
    assert direct_transports(hub.sio) is transports  # installed once per server
    url = f"http://127.0.0.1:{hub.address[1]}{EIO_PATH}"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=15) as ws,
    ):
        assert ws.compress == 0  # the offer of permessage-deflate was refused
        opened = json.loads((await ws.receive_str())[1:])
        sid = opened["sid"]
        await until(lambda: sid in transports)
        local = ws.get_extra_info("sockname")
        assert transports[sid].get_extra_info("peername")[:2] == local[:2]
        sock = hub.sio.eio.sockets[sid]
        assert isinstance(sock.queue, asyncio.Queue)
        assert sock.upgraded and not sock.upgrading and not sock.closed and sock.sid == sid
        writes: list[bytes] = []
        write = transports[sid].write
        transports[sid].write = lambda data: writes.append(bytes(data)) or write(data)  # type: ignore[method-assign]
        await ws.send_str(sio_connect("/rooms/lobby", {}))
        connect = await ws.receive_str()
        assert connect.startswith("40/rooms/lobby,")  # the CONNECT, from Engine.IO's queue
        # The handoff took the CONNECT's place in the queue: encoded just before Engine.IO
        # would write it, it wrote the CONNECT and the snapshot in one write itself, and
        # left Engine.IO nothing to send (no NOOP, "6", ever goes out).
        assert (await ws.receive_str()).startswith('42/rooms/lobby,["snapshot"')
        assert fanout(hub).modes() == {"direct": 1}
        commit(hub, 1)
        change = json.loads((await ws.receive_str())[len("42/rooms/lobby,") :])
        assert change[0] == "change" and change[1]["seq"] == hub.rooms["lobby"].store.seq
        [both] = [w for w in writes if b"40/rooms/lobby," in w]
        assert b'42/rooms/lobby,["snapshot"' in both
        assert not any(w.endswith(b"\x016") for w in writes)  # a one-byte text frame "6"
    await until(lambda: sid not in transports)
    await until(lambda: len(fanout(hub)) == 0)


@pytest.mark.parametrize("header", ["", "Sec-WebSocket-Protocol: x"], ids=["door", "aiohttp"])
async def test_the_101_and_engineio_open_leave_in_one_write(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    """The upgrade's `101 Switching Protocols` and Engine.IO's OPEN packet reach the panel
    in one write (one segment, one read), and Engine.IO does not send the OPEN again."""
    hub = await lobby_hub(hub_factory)
    writes: list[bytes] = []
    write = asyncio.selector_events._SelectorSocketTransport.write

    def recording(transport: Any, data: Any) -> None:
        writes.append(bytes(data))
        write(transport, data)

    monkeypatch.setattr(asyncio.selector_events._SelectorSocketTransport, "write", recording)
    panel = RawPanel(hub, header=header)
    await panel.connect()
    await until(lambda: any(p.startswith("40/rooms/lobby,") for p in panel.packets))
    [upgrade] = [w for w in writes if w.startswith(b"HTTP/1.1 101 ")]
    frames = upgrade.partition(b"\r\n\r\n")[2]
    assert frames[:1] == b"\x81" and frames[2:9] == b'0{"sid"', upgrade  # the OPEN, whole
    assert len(frames) == 2 + frames[1]
    assert [p for p in panel.packets if p.startswith("0")] == [frames[2:].decode()]
    assert sum(b'0{"sid"' in w for w in writes) == 1
    panel.close()


async def test_a_packet_engineio_cannot_read_is_skipped_and_the_panel_stays(
    hub_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are no Engine.IO packet (an empty text, a letter for a type) are
    logged and skipped; the panel's next request is answered on the same socket."""
    hub = await lobby_hub(hub_factory)
    panel = RawPanel(hub)
    await panel.connect()
    await until(lambda: panel.events())
    assert panel.ws is not None
    panel.ws.send_text("")
    panel.ws.send_text("x-not-a-packet")
    panel.ws.send_text(sio_call("/rooms/lobby", 7, "sync", {"epoch": "other", "seq": 0}))
    await until(lambda: any(p.startswith("43/rooms/lobby,7[") for p in panel.packets))
    assert not panel.closed.is_set()
    skipped = [r.getMessage() for r in caplog.records if "skipped a packet" in r.getMessage()]
    assert len(skipped) == 2 and "x-not-a-packet" in skipped[1], skipped
    panel.close()


async def test_a_server_disconnect_after_the_writer_stopped_returns(hub_factory: Any) -> None:
    """Engine.IO's disconnect of a socket (`close(wait=True)`) queues a CLOSE and waits
    until the queue is done. When the panel has just hung up, the socket's writer may
    have stopped already (the `None` that ends it is queued first): the disconnect must
    return, not wait for ever on a packet nobody will send."""
    hub = await lobby_hub(hub_factory)
    panel = RawPanel(hub)
    await panel.connect()
    await until(lambda: panel.events())
    [sock] = hub.sio.eio.sockets.values()
    sock.queue.put_nowait(None)  # what the reader queues when the panel hangs up
    await until(panel.closed.is_set)  # the writer stopped, and closed the WebSocket
    sock.queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))  # a server disconnect's
    async with asyncio.timeout(5):
        await sock.queue.join()  # what the disconnect then waits on
    await until(lambda: len(fanout(hub)) == 0)


async def test_a_silent_panel_is_let_go(hub_factory: Any) -> None:
    """A panel that answers no ping is disconnected once the ping interval and timeout
    have passed without a packet from it."""
    hub = await lobby_hub(hub_factory)
    hub.sio.eio.ping_interval, hub.sio.eio.ping_timeout = 0.2, 0.2
    silent = RawPanel(hub, pong=False)
    await silent.connect()
    await until(lambda: any(p.startswith("40/rooms/lobby,") for p in silent.packets))
    await until(lambda: silent.closed.is_set(), timeout=5)
    assert "2" in silent.packets  # it was pinged, and did not answer
    await until(lambda: len(fanout(hub)) == 0)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Only reference counting frees objects meanwhile: what a cycle holds stays."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("door", [True, False], ids=["door", "aiohttp"])
async def test_a_panel_that_hangs_up_is_freed_as_it_goes(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch, door: bool
) -> None:
    """A panel that drops its connection without a close frame leaves nothing to the cycle
    collector: its Engine.IO socket is not held for the ping interval by a sleeping ping
    task; served by the door, its stream (with aiohttp's reader and queue) is in no
    reference cycle; served by aiohttp, its WebSocket (with the request and handler behind
    it) is not kept in a reference cycle by the traceback of the error it ended with."""
    made: list[weakref.ref[Any]] = []
    if door:
        init = hub_door.PanelStream.__init__

        def recording_stream(self: hub_door.PanelStream, *args: Any) -> None:
            made.append(weakref.ref(self))
            init(self, *args)

        monkeypatch.setattr(hub_door.PanelStream, "__init__", recording_stream)
    else:
        prepare = hub_fanout._HeldUpgrade.prepare

        async def recording(
            self: aiohttp.web.WebSocketResponse, request: aiohttp.web.BaseRequest
        ) -> Any:
            if not made or made[-1]() is not self:  # aiohttp prepares it again when it returns
                made.append(weakref.ref(self))
            return await prepare(self, request)

        monkeypatch.setattr(hub_fanout._HeldUpgrade, "prepare", recording)
    header = "" if door else "Sec-WebSocket-Protocol: x"
    lobby = await lobby_hub(hub_factory)
    assert lobby.sio.eio.ping_interval >= 20  # the default: a leftover ping task outlives the test
    # Engine.IO's service task walks a copy of the sockets it had when it started, one per
    # ping timeout: the first panel's stays in it, later ones do not.
    first = RawPanel(lobby, header=header)
    await first.connect()
    await until(lambda: first.events())
    kept = set(lobby.sio.eio.sockets)
    with no_cycle_collection():
        for _ in range(2):
            panel = RawPanel(lobby, header=header)
            await panel.connect()
            await until(panel.events)
            [sid] = set(lobby.sio.eio.sockets) - kept
            socket = weakref.ref(lobby.sio.eio.sockets[sid])
            panel.close()  # the TCP connection only
            await until(lambda: len(fanout(lobby)) == 1)
            await until(lambda s=socket: s() is None, message="the Engine.IO socket is still held")
            await until(lambda: made[-1]() is None, message="the WebSocket is still held")
    assert len(made) == 3
    first.close()


def test_dropping_tracebacks_follows_the_chain_and_ends() -> None:
    def raised(error: BaseException) -> BaseException:
        try:
            raise error
        except BaseException as caught:
            return caught

    first, second = raised(ValueError("first")), raised(OSError("second"))
    second.__context__ = first
    first.__context__ = second  # a loop: the walk must still end
    hub_fanout._drop_tracebacks(second)
    assert first.__traceback__ is None and second.__traceback__ is None
    hub_fanout._drop_tracebacks(None)


async def test_hub_stop_hangs_up_on_connected_panels_promptly(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    panels = [RawPanel(hub) for _ in range(3)]
    for panel in panels:
        await panel.connect()
    await until(lambda: all(p.events() for p in panels))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hub.stop()
    assert loop.time() - started < 5  # not the minute a web server gives open websockets
    for panel in panels:
        await until(lambda p=panel: p.closed.is_set())
        assert "1" in panel.packets  # an Engine.IO CLOSE, not just a dropped connection


async def test_a_stopped_hub_leaves_no_engineio_service_task(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    panel = RawPanel(hub)
    await panel.connect()
    await until(lambda: panel.events())

    def service_tasks() -> list[asyncio.Task[Any]]:
        return [
            t
            for t in asyncio.all_tasks()
            if t.get_coro().__qualname__ == "AsyncServer._service_task"  # type: ignore[union-attr]
        ]

    assert len(service_tasks()) == 1  # Engine.IO starts it with the first request
    await hub.stop()
    await until(lambda: not service_tasks(), message="the service task ended with the hub")


def test_an_acknowledgement_of_raw_json_is_sent_as_it_is() -> None:
    raw = RawJSON('{"snapshot":{"seq":3,"name":"Ünïcode"}}')
    ack = Packet(socketio.packet.ACK, namespace="/rooms/x", id=7, data=[raw])
    assert ack.encode() == f"3/rooms/x,7[{raw}]"
    for data in ([{"a": [1, "b"]}], ["text"], [RawJSON("1"), 2], {"a": RawJSON("1")}):
        ours = Packet(socketio.packet.EVENT, namespace="/rooms/x", id=7, data=data).encode()
        theirs = socketio.packet.Packet(
            socketio.packet.EVENT, namespace="/rooms/x", id=7, data=data
        )
        assert ours == theirs.encode()  # anything else: encoded as python-socketio does
