"""The hub's door (hub/door.py): a panel's WebSocket straight to Engine.IO is served without
aiohttp's request machinery, everything else is handed to aiohttp as it arrived; and the
aiohttp and python-engineio pieces the door is built from (pinned in pyproject.toml)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from typing import Any

import aiohttp
import pytest
import socketio

from bench.wire import EIO_PATH, OP_CLOSE, OP_PING, sio_call, ws_frame
from hub import door as hub_door
from hub.app import Hub
from hub.door import HEAD_LIMIT, MAX_HEADERS, read_upgrade
from hub.fanout import Fanout
from tests.helpers import until
from tests.test_fanout import RawPanel, commit, lobby_hub

KEY = base64.b64encode(b"0123456789abcdef").decode()
HEAD = (
    f"GET {EIO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13"
)


def served_by_door(hub: Hub) -> list[bool]:
    """For each connected panel, whether the door served it (its environ has no aiohttp
    request) or aiohttp did."""
    return ["aiohttp.request" not in environ for environ in hub.sio.environ.values()]


def test_a_panels_websocket_opening_is_read() -> None:
    many = "".join(f"\r\nX-{i}: x" for i in range(MAX_HEADERS - 5))  # 100 lines in all
    assert read_upgrade((HEAD + many).encode()) is not None
    upgrade = read_upgrade(HEAD.encode())
    assert upgrade is not None
    assert upgrade.key == KEY and upgrade.headers["host"] == "127.0.0.1:8080"
    environ = upgrade.environ(("127.0.0.1", 5000))
    assert environ["QUERY_STRING"] == "EIO=4&transport=websocket"
    assert environ["HTTP_SEC_WEBSOCKET_VERSION"] == "13" and environ["REMOTE_ADDR"] == "127.0.0.1"
    with_origin = read_upgrade((HEAD + "\r\nOrigin: http://127.0.0.1:8080").encode())
    assert with_origin is not None and with_origin.headers["origin"] == "http://127.0.0.1:8080"
    keep_alive = read_upgrade(
        HEAD.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade").encode()
    )
    assert keep_alive is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("GET /socket.io/", "POST /socket.io/"),
        ("HTTP/1.1", "HTTP/1.0"),
        ("GET /socket.io/", "GET /socket.io/x/"),
        ("transport=websocket", "transport=polling"),
        ("transport=websocket", "transport=websocket&sid=abc"),
        ("EIO=4", "EIO=3"),
        ("transport=websocket", "transport=websocket&j=1"),
        ("Host: 127.0.0.1:8080\r\n", ""),
        ("Upgrade: websocket", "Upgrade: h2c"),
        ("Connection: Upgrade", "Connection: keep-alive"),
        ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        (f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Key: short"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nHost: elsewhere"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nSec-WebSocket-Protocol: chat"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nContent-Length: 0"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nTransfer-Encoding: chunked"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\n folded"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nX-Name: caf\u00e9"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nX-Name: a\x00b"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nBad Name: x"),
        ("Host: 127.0.0.1:8080", "Host: 127.0.0.1:8080\r\nno colon"),
        ("transport=websocket", "transport=websocket&x=\x01"),
        ("transport=websocket", "transport=websocket&x=\x7f"),
        (
            "Host: 127.0.0.1:8080",
            "Host: 127.0.0.1:8080" + "".join(f"\r\nX-{i}: x" for i in range(96)),
        ),
    ],
)
def test_anything_but_exactly_that_is_left_to_aiohttp(old: str, new: str) -> None:
    assert old in HEAD
    assert read_upgrade(HEAD.replace(old, new, 1).encode("utf-8")) is None


async def open_raw(hub: Hub, head: str, chunks: int = 1) -> tuple[Any, Any]:
    """Send `head` (and its blank line) in `chunks` pieces; the reader and writer."""
    assert hub.address is not None
    reader, writer = await asyncio.open_connection(*hub.address)
    data = (head + "\r\n\r\n").encode()
    step = max(1, len(data) // chunks)
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
        await writer.drain()
        await asyncio.sleep(0.005)
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


async def test_a_panel_is_served_by_the_door_with_the_accept_and_open_in_one_answer(
    hub_factory: Any,
) -> None:
    """The head sent in pieces: the door waits for all of it, answers `101` with the key's
    accept and Engine.IO's OPEN, and the panel joins its room and gets its snapshot."""
    hub = await lobby_hub(hub_factory)
    reader, writer = await open_raw(hub, HEAD, chunks=5)
    status = await reader.readuntil(b"\r\n\r\n")
    accept = base64.b64encode(
        hashlib.sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    assert status.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: " + accept + b"\r\n" in status
    opcode, payload = await read_frame(reader)
    assert opcode == 0x1
    opened = json.loads(payload[1:])
    assert payload[:1] == b"0" and opened["upgrades"] == []
    assert opened["pingInterval"] == 25000 and opened["maxPayload"] == 1_000_000
    writer.write(ws_frame(0x1, b"40/rooms/lobby,{}"))
    _, connected = await read_frame(reader)
    assert connected.startswith(b"40/rooms/lobby,{")
    _, snapshot = await read_frame(reader)
    assert snapshot.startswith(b'42/rooms/lobby,["snapshot",')
    assert served_by_door(hub) == [True]
    assert opened["sid"] in hub.sio.eio.sockets
    writer.close()
    await until(lambda: not hub.sio.eio.sockets)


async def test_frames_sent_with_the_head_are_read_after_the_open(hub_factory: Any) -> None:
    """A client that does not wait for the OPEN: its CONNECT, in the same segment as the
    head, is taken as the first message."""
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    reader, writer = await asyncio.open_connection(*hub.address)
    writer.write((HEAD + "\r\n\r\n").encode() + ws_frame(0x1, b"40/rooms/lobby,{}"))
    await reader.readuntil(b"\r\n\r\n")
    assert (await read_frame(reader))[1].startswith(b"0{")
    assert (await read_frame(reader))[1].startswith(b"40/rooms/lobby,{")
    assert (await read_frame(reader))[1].startswith(b'42/rooms/lobby,["snapshot",')
    writer.close()


async def test_fallbacks_are_served_by_aiohttp_as_before(hub_factory: Any) -> None:
    """A WebSocket asking a subprotocol, long-polling and its upgrade, the panel page and
    `/healthz` are aiohttp's; the panels among them work as through the door."""
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    url = f"http://127.0.0.1:{hub.address[1]}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
        async with session.ws_connect(
            f"{url}{EIO_PATH}", protocols=("chat",), autoping=False
        ) as ws:
            assert (await ws.receive_str()).startswith("0{")
            await ws.send_str("40/rooms/lobby,{}")
            assert (await ws.receive_str()).startswith("40/rooms/lobby,")
            assert served_by_door(hub) == [False]
            commit(hub, 1)
            texts = [await ws.receive_str(), await ws.receive_str()]
            assert texts[0].startswith('42/rooms/lobby,["snapshot",')
            assert texts[1].startswith('42/rooms/lobby,["change",')
        await until(lambda: not hub.sio.eio.sockets)
    sio = socketio.AsyncClient(reconnection=False)
    seen: list[str] = []
    sio.on("snapshot", lambda data: seen.append("snapshot"), namespace="/rooms/lobby")
    await sio.connect(url, namespaces=["/rooms/lobby"], transports=["polling", "websocket"])
    try:
        await until(lambda: seen == ["snapshot"] and sio.transport() == "websocket")
        assert served_by_door(hub) == [False]
    finally:
        await sio.disconnect()


async def test_a_foreign_origin_is_refused_as_engineio_refuses_it(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    reader, writer = await open_raw(hub, HEAD + "\r\nOrigin: http://elsewhere.example")
    status = await reader.readuntil(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400"), status
    writer.close()
    reader, writer = await open_raw(hub, HEAD + "\r\nOrigin: http://127.0.0.1:8080")
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 101")  # its own page
    writer.close()


async def test_a_hub_taking_no_websockets_refuses_them_as_engineio_does(
    hub_factory: Any,
) -> None:
    hub = await lobby_hub(hub_factory)
    hub.sio.eio.transports = ["polling"]
    reader, writer = await open_raw(hub, HEAD)
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 400")
    writer.close()
    assert not hub.sio.eio.sockets


async def test_frames_the_door_reads(hub_factory: Any) -> None:
    """A ping is answered with its pong; a message in fragments is put together; a close is
    answered with a close and the panel let go."""
    hub = await lobby_hub(hub_factory)
    reader, writer = await open_raw(hub, HEAD)
    await reader.readuntil(b"\r\n\r\n")
    await read_frame(reader)  # OPEN
    writer.write(ws_frame(OP_PING, b"hi"))
    assert await read_frame(reader) == (0xA, b"hi")
    message = b"40/rooms/lobby,{}"
    writer.write(bytes((0x01, 0x80 | 5)) + b"\0\0\0\0" + message[:5])  # TEXT, not FIN
    writer.write(bytes((0x80, 0x80 | (len(message) - 5))) + b"\0\0\0\0" + message[5:])
    _, connected = await read_frame(reader)
    assert connected.startswith(b"40/rooms/lobby,")
    await read_frame(reader)  # snapshot
    assert len(hub.namespaces["lobby"].fanout or ()) == 1
    writer.write(ws_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
    assert await read_frame(reader) == (OP_CLOSE, (1000).to_bytes(2, "big"))
    assert await reader.read() == b""
    await until(lambda: not hub.sio.eio.sockets and not hub.namespaces["lobby"].fanout)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (ws_frame(0x1, b"4\xff\xfe"), 1007),  # text that is not UTF-8
        (bytes((0x81, 0x80 | 127)) + (2_000_000).to_bytes(8, "big") + b"\0\0\0\0", 1009),
        (bytes((0x80, 0x80 | 2)) + b"\0\0\0\0" + b"40", 1002),  # a continuation, nothing begun
    ],
)
async def test_a_frame_the_door_cannot_take_closes_the_panel_with_its_code(
    hub_factory: Any, frame: bytes, code: int
) -> None:
    hub = await lobby_hub(hub_factory)
    reader, writer = await open_raw(hub, HEAD)
    await reader.readuntil(b"\r\n\r\n")
    await read_frame(reader)  # OPEN
    await until(lambda: hub.sio.eio.sockets)
    writer.write(frame)
    assert await read_frame(reader) == (OP_CLOSE, code.to_bytes(2, "big"))
    assert await reader.read() == b""
    await until(lambda: not hub.sio.eio.sockets)


async def test_a_head_too_long_for_the_door_goes_to_aiohttp(hub_factory: Any) -> None:
    hub = await lobby_hub(hub_factory)
    padding = "\r\n".join(f"X-Pad-{i}: {'x' * 100}" for i in range(HEAD_LIMIT // 100))
    reader, writer = await open_raw(hub, HEAD + "\r\n" + padding)
    status = await reader.readuntil(b"\r\n")
    assert status.startswith(b"HTTP/1.1 101")  # aiohttp takes a head of this size
    assert served_by_door(hub) == [False]
    writer.close()


async def test_hub_stop_hangs_up_on_a_connection_still_sending_its_head(
    hub_factory: Any,
) -> None:
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    reader, writer = await asyncio.open_connection(*hub.address)
    writer.write(HEAD.encode()[:30])
    await writer.drain()
    panel = RawPanel(hub)
    await panel.connect()
    await until(lambda: panel.events())
    await until(lambda: len(hub._panels.waiting) == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hub.stop()
    assert loop.time() - started < 5
    assert await asyncio.wait_for(reader.read(), 5) == b""
    await until(lambda: panel.closed.is_set())
    writer.close()


async def test_a_connection_slow_to_send_its_head_is_left_to_aiohttp(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No whole head within `HEAD_WAIT`: aiohttp takes the connection with what came, and
    its own timeouts; the door keeps TCP keepalive on what it accepts, as aiohttp does."""
    monkeypatch.setattr(hub_door, "HEAD_WAIT", 0.05)
    hub = await lobby_hub(hub_factory)
    assert hub.address is not None
    reader, writer = await asyncio.open_connection(*hub.address)
    sock = writer.get_extra_info("socket")
    assert sock is not None
    writer.write(HEAD.encode()[:40])
    await writer.drain()
    await until(lambda: len(hub._panels.waiting) == 1)
    [transport] = hub._panels.waiting
    assert transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    await until(lambda: not hub._panels.waiting, message="handed to aiohttp")
    writer.write(HEAD.encode()[40:] + b"\r\n\r\n")
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 101")
    await until(lambda: served_by_door(hub) == [False])
    writer.close()


async def test_hub_stop_drops_a_door_panel_that_does_not_read(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A panel that stopped reading keeps its goodbye unsent: the stop waits `CLOSE_WAIT`
    for it, then drops the connection, and leaves no task serving it."""
    monkeypatch.setattr(Fanout, "max_buffer", 256 * 1024 * 1024)  # not dropped before the stop
    hub = await lobby_hub(hub_factory)
    stuck = RawPanel(hub)
    await stuck.connect()
    await until(lambda: len(hub.namespaces["lobby"].fanout or ()) == 1)
    assert stuck.ws is not None and stuck.ws.transport is not None
    stuck.ws.transport.pause_reading()
    [transport] = hub._panels._serving.values()
    for _ in range(400):  # until the kernel's buffers are full (at most 40 MB)
        commit(hub, 1, size=100_000)
        await asyncio.sleep(0.001)
        if transport.get_write_buffer_size() > 0:
            break
    assert transport.get_write_buffer_size() > 0
    for i in range(5):  # answers (snapshots) for the writer, which waits for the panel to read
        stuck.ws.send_text(sio_call("/rooms/lobby", i, "sync", {"epoch": "other", "seq": 0}))
    [sock] = hub.sio.eio.sockets.values()
    stream = transport.get_protocol()
    assert isinstance(stream, hub_door.PanelStream)
    await until(
        lambda: stream._drained is not None and sock.queue.qsize() > 0,
        message="the writer waits for the panel to read",
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hub.stop()
    assert loop.time() - started < hub_door.CLOSE_WAIT + 2
    assert not hub._panels._serving and transport.is_closing()
    stuck.ws.transport.resume_reading()
    await until(lambda: stuck.closed.is_set())
