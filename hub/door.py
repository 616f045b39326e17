"""The hub's listening socket: a panel's WebSocket straight to Engine.IO skips aiohttp's
request machinery; every other connection is aiohttp's, as it arrived.

A panel (the touch panel, `socket.io-client` with the WebSocket transport, or any
Socket.IO client told to use WebSocket only) opens its connection with one request:
`GET /socket.io/?EIO=4&transport=websocket` asking to upgrade. Served by aiohttp, that
request costs a protocol object and a task per connection, a `Request`, the middlewares
and the router, Engine.IO's translation of the request into an environ and a
`WebSocketResponse` with its reader, writer and heartbeat: on the 2-CPU machine of the
README about a third of what a bare reconnect cost the hub above the floor of
`bench.floor` (0.13 of 0.39 ms at p50; bench/RESULTS.md, item 17).

`Door` is the protocol of every accepted connection until its first request head is in:

- The head of exactly that request (`read_upgrade`: HTTP/1.1, the path `/socket.io/`,
  `EIO=4`, `transport=websocket`, no `sid`, a WebSocket version 13 upgrade with a valid
  key, no subprotocol, no body, nothing repeated, printable ASCII) from an origin the hub
  allows: `Panels.open` answers it itself. Engine.IO gets its socket as its own connect
  would make it (same sid, OPEN and ping task; Socket.IO's connect handler sees an
  environ), the `101` and the OPEN go out in one write, and `hub.fanout._serve` serves
  it over a `PanelStream`, which reads frames with aiohttp's WebSocket reader.
- Anything else (any other path, long-polling, an upgrade from long-polling, a head
  that is not exactly that, a refused origin, a head over `HEAD_LIMIT`, or no whole head
  within `HEAD_WAIT`): the connection is handed to aiohttp's protocol with the bytes
  read so far, and served, answered, timed out or refused exactly as without the door.

Like aiohttp, the door turns TCP keepalive on for what it accepts. At `Hub.stop` it hangs
up on connections still sending their head, and drops the panels it served that have not
read their goodbye within `CLOSE_WAIT`.

What is taken from aiohttp (pinned to 3.14.x in pyproject.toml): `web.Server` being the
protocol factory of its sites, `BaseSite`'s `_runner` and `_server`, `tcp_keepalive`, and the WebSocket
frame reader `WebSocketReader(queue, max_msg_size, compress=, decode_text=)` with its
queue `aiohttp._websocket.reader.WebSocketDataQueue` (which calls the protocol's
`pause_reading`/`resume_reading` and reads `_reading_paused`). From python-engineio
4.15: what `AsyncServer._handle_connect` does for a new socket (the service task, the
sid, `sockets`, the OPEN packet's fields, the `connect` handler, `schedule_ping`).
`tests/test_door.py` fails when any of these stops behaving as described.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import socketio
from aiohttp import EofStream, web
from aiohttp._websocket.reader import WebSocketDataQueue
from aiohttp.http_websocket import WS_KEY, WebSocketError, WebSocketReader, WSMsgType
from aiohttp.tcp_helpers import tcp_keepalive
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from hub.fanout import _serve, direct_transports, ws_frame

log = logging.getLogger("avhub.door")

FAST_PREFIX = b"GET /socket.io/?"
HEAD_LIMIT = 8190
"""Bytes of a request head the door reads before leaving it to aiohttp (its line limit)."""

HEAD_WAIT = 5.0
"""Seconds the door waits for a connection's first request head; then the connection is
aiohttp's, with its timeouts (a panel sends its head at once, in one segment)."""
MAX_HEADERS = 100
"""Header lines beyond which a head is left to aiohttp (which refuses more than 128)."""
CLOSE_WAIT = 1.0
"""Seconds `Panels.close` gives the panels it served to take their goodbye and go; those
still there (not reading) are then dropped."""

_TARGET = re.compile(r"[!-~]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")


class Upgrade:
    """A panel's request to open a WebSocket to Engine.IO, as `read_upgrade` read it."""

    __slots__ = ("headers", "key", "query", "target")

    def __init__(self, target: str, query: str, headers: dict[str, str], key: str) -> None:
        self.target = target
        self.query = query
        self.headers = headers
        self.key = key

    def environ(self, peer: Any) -> dict[str, Any]:
        """The WSGI-style environ Engine.IO's and Socket.IO's handlers are given."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/socket.io/",
            "QUERY_STRING": self.query,
            "RAW_URI": self.target,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": peer[0] if isinstance(peer, tuple) else "",
            "wsgi.url_scheme": "http",
        }
        for name, value in self.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ


def read_upgrade(head: bytes) -> Upgrade | None:
    """The request head (without its blank line) if it is exactly a panel's WebSocket
    opening to Engine.IO; None for anything else, which aiohttp is left to serve."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    target = parts[1]
    path, _, query = target.partition("?")
    if path != "/socket.io/" or not _TARGET.fullmatch(target) or len(lines) > MAX_HEADERS + 1:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            return None
        lower = name.lower()
        if lower in headers:
            return None
        headers[lower] = value.strip(" \t")
    if (
        "host" not in headers
        or headers.get("upgrade", "").lower() != "websocket"
        or "upgrade" not in (t.strip().lower() for t in headers.get("connection", "").split(","))
        or headers.get("sec-websocket-version") != "13"
        or not _KEY.fullmatch(headers.get("sec-websocket-key", ""))
        or "sec-websocket-protocol" in headers
        or "content-length" in headers
        or "transfer-encoding" in headers
    ):
        return None
    args = parse_qs(query)
    if (
        args.get("EIO") != ["4"]
        or args.get("transport") != ["websocket"]
        or "sid" in args
        or "j" in args
    ):
        return None
    return Upgrade(target, query, headers, headers["sec-websocket-key"])


def switching(key: str) -> bytes:
    """The `101 Switching Protocols` answer to a WebSocket key (RFC 6455 §4.2.2)."""
    accept = base64.b64encode(hashlib.sha1(key.encode() + WS_KEY).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


class Door(asyncio.Protocol):
    """An accepted connection until its first request head is read (see the module)."""

    def __init__(self, aiohttp_server: web.Server, panels: Panels) -> None:
        self._aiohttp = aiohttp_server
        self._panels = panels
        self._transport: asyncio.Transport | None = None
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tcp_keepalive(transport)  # as aiohttp does: a peer that vanishes is found out
        self._panels.waiting.add(transport)
        self._timer = asyncio.get_running_loop().call_later(HEAD_WAIT, self._slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._decided()

    def _slow(self) -> None:
        """No whole head in `HEAD_WAIT`: not a panel; aiohttp's timeouts take over."""
        self._timer = None
        self._hand_over(self._head)

    def _decided(self) -> None:
        """The connection is no longer the door's to wait on."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._panels.waiting.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        head = self._head + data if self._head else data
        n = min(len(head), len(FAST_PREFIX))
        if head[:n] != FAST_PREFIX[:n]:
            self._hand_over(head)
            return
        end = head.find(b"\r\n\r\n", 0, HEAD_LIMIT + 4)
        if end < 0:
            if len(head) >= HEAD_LIMIT + 4:
                self._hand_over(head)
            else:
                self._head = head
            return
        upgrade = read_upgrade(head[:end])
        if upgrade is None or not self._panels.admits(upgrade):
            self._hand_over(head)
            return
        assert self._transport is not None
        self._decided()
        self._panels.open(self._transport, upgrade, head[end + 4 :])

    def eof_received(self) -> bool | None:
        # Half-closed before a whole head: aiohttp answers it as it would.
        return self._hand_over(self._head).eof_received()

    def _hand_over(self, data: bytes) -> asyncio.Protocol:
        assert self._transport is not None
        self._decided()
        protocol = self._aiohttp()
        self._transport.set_protocol(protocol)
        protocol.connection_made(self._transport)
        if data:
            protocol.data_received(data)
        return protocol


class _Valve:
    """Reading paused and resumed for aiohttp's WebSocket queue, which holds too much
    that is not read yet (the protocol face it expects)."""

    __slots__ = ("_reading_paused", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._reading_paused = False
        if not self._transport.is_closing():
            self._transport.resume_reading()


class PanelStream(asyncio.Protocol):
    """A panel's WebSocket once upgraded by the door: frames in through aiohttp's reader,
    text frames out; what `hub.fanout._serve` serves as its link."""

    def __init__(self, transport: asyncio.Transport, max_msg_size: int) -> None:
        self.transport: asyncio.Transport = transport
        loop = asyncio.get_running_loop()
        # The queue pauses reading through a valve on the transport, not through this
        # protocol: no reference cycle (asyncio lets go of the protocol when the
        # connection is lost), so a panel's objects go as it does.
        self._queue = WebSocketDataQueue(_Valve(transport), 2**16, loop=loop)  # type: ignore[arg-type]
        self._reader = WebSocketReader(self._queue, max_msg_size, compress=False, decode_text=True)
        self._drained: asyncio.Future[None] | None = None
        self._closed = False

    # ---- asyncio's side -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def eof_received(self) -> bool | None:
        self._queue.feed_eof()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._queue.feed_eof()
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    # ---- the link `_serve` uses -----------------------------------------------------

    async def receive(self) -> str | bytes | None:
        """The next text or binary message; None once the WebSocket is closed or failed
        (a ping is answered, a pong ignored, a close answered with a close)."""
        while True:
            try:
                msg = await self._queue.read()
            except EofStream:
                return None
            except WebSocketError as err:
                self._close(err.code)
                return None
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                return msg.data  # type: ignore[no-any-return]
            if kind is WSMsgType.PING:
                self._write(ws_frame(msg.data, WSMsgType.PONG))
            elif kind is WSMsgType.CLOSE:
                self._close(1000)
                return None

    async def send(self, text: str) -> None:
        if self._closed or self.transport.is_closing():
            raise ConnectionResetError("the panel's WebSocket is closed")
        self.transport.write(ws_frame(text.encode()))
        if self._drained is not None:
            await self._drained

    async def close(self) -> None:
        self._close(1000)

    def _write(self, data: bytes) -> None:
        if not self._closed and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self, code: int) -> None:
        self._write(ws_frame(code.to_bytes(2, "big"), WSMsgType.CLOSE))
        self._closed = True
        self.transport.close()


class Panels:
    """Opens the WebSockets the door takes, as Engine.IO's connect would."""

    def __init__(
        self, sio: socketio.AsyncServer, origin_allowed: Callable[[str, dict[str, Any]], bool]
    ) -> None:
        self._sio = sio
        self._origin_allowed = origin_allowed
        self._transports = direct_transports(sio)
        self._serving: dict[asyncio.Future[None], asyncio.Transport] = {}
        """The task serving each WebSocket the door opened, and its transport."""
        self.waiting: set[asyncio.Transport] = set()
        """Connections whose first request head is not read yet."""

    async def close(self) -> None:
        """Hang up on connections still sending their first request, and wait for the
        panels served here to be let go (the caller has told them and closed their
        transports); after `CLOSE_WAIT`, drop those that are not reading."""
        for transport in list(self.waiting):
            transport.close()
        self.waiting.clear()
        if not self._serving:
            return
        _, stuck = await asyncio.wait(set(self._serving), timeout=CLOSE_WAIT)
        if stuck:
            log.warning(
                "dropping %d panel(s) not reading their WebSocket %.0f s after the hub hung up",
                len(stuck),
                CLOSE_WAIT,
            )
            for task in stuck:
                self._serving[task].abort()  # lost: the reader and the writer end
            _, stuck = await asyncio.wait(stuck, timeout=CLOSE_WAIT)
            for task in stuck:
                task.cancel()

    def admits(self, upgrade: Upgrade) -> bool:
        """Whether the door serves it: Engine.IO takes WebSockets, and the request has no
        Origin (not a browser) or one the hub allows. What is refused is aiohttp's to
        refuse, with Engine.IO's 400 and log line."""
        if "websocket" not in self._sio.eio.transports:
            return False
        origin = upgrade.headers.get("origin")
        if origin is None:
            return True
        return self._origin_allowed(origin, {"HTTP_HOST": upgrade.headers["host"]})

    def open(self, transport: asyncio.Transport, upgrade: Upgrade, tail: bytes) -> None:
        """Open Engine.IO's socket for the panel and answer at once (`101` and OPEN in one
        write); Engine.IO's `connect` handler, the pings and the serving follow in a task."""
        eio = self._sio.eio
        if eio.start_service_task:
            eio.start_service_task = False
            eio.service_task_handle = eio.start_background_task(eio._service_task)
        sid = eio.generate_id()
        socket = AsyncSocket(eio, sid)
        eio.sockets[sid] = socket
        opened = eio_packet.Packet(
            eio_packet.OPEN,
            {
                "sid": sid,
                "upgrades": [],
                "pingTimeout": int(eio.ping_timeout * 1000),
                "pingInterval": int(eio.ping_interval + eio.ping_interval_grace_period) * 1000,
                "maxPayload": eio.max_http_buffer_size,
            },
        )
        stream = PanelStream(transport, eio.max_http_buffer_size)
        transport.set_protocol(stream)
        transport.write(switching(upgrade.key) + ws_frame(opened.encode().encode()))
        if tail:
            stream.data_received(tail)
        environ = upgrade.environ(transport.get_extra_info("peername"))
        task = asyncio.ensure_future(self._serve(stream, socket, environ))
        self._serving[task] = transport
        task.add_done_callback(self._serving.pop)

    async def _serve(
        self, stream: PanelStream, socket: AsyncSocket, environ: dict[str, Any]
    ) -> None:
        eio = self._sio.eio
        sid = socket.sid
        try:
            accepted = await eio._trigger_event("connect", sid, environ, run_async=False)
        except BaseException:
            eio.sockets.pop(sid, None)
            stream.transport.abort()
            raise
        if accepted is not None and accepted is not True:
            # python-socketio accepts every Engine.IO connect (it refuses at the namespace
            # CONNECT); were one refused here, after the 101, the WebSocket is closed.
            del eio.sockets[sid]
            log.warning("panel %s refused by Engine.IO's connect handler: %r", sid, accepted)
            await stream.close()
            return
        socket.schedule_ping()
        self._transports[sid] = stream.transport
        try:
            await _serve(stream, socket)
        finally:
            self._transports.pop(sid, None)
            if socket.closed:
                eio.sockets.pop(sid, None)


class DoorSite(web.BaseSite):
    """aiohttp's TCP site with every accepted connection going through a `Door`."""

    __slots__ = ("_host", "_panels", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, panels: Panels) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._panels = panels

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert isinstance(server, web.Server)
        panels = self._panels
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Door(server, panels), self._host, self._port, reuse_address=True
        )
