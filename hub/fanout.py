"""Fan-out: each room's events to its panels, in commit order, at one write per panel.

This is the one module that leans on python-engineio internals, on purpose: routing
every delivery through Engine.IO's per-socket queue and writer task cost several
times the CPU of the write itself (README, "Performance"). What it uses, all of the
pinned python-engineio 4.15.x / python-socketio 5.18.x (pyproject.toml):

- `AsyncServer.eio._async["websocket"]`: the aiohttp WebSocket driver class, which
  `direct_transports` subclasses to learn each live WebSocket's asyncio transport (and
  to refuse permessage-deflate). Its `__call__(environ)` and attributes `server`,
  `handler` (bound to the Engine.IO socket, whose `sid` it reads) and `_sock` are the
  driver's own; the subclass re-does what the original `__call__` does.
- `AsyncSocket` attributes `queue` (an asyncio.Queue), `upgraded`, `upgrading`, `closed`
  and `sid`, and that its WebSocket writer encodes each queued packet just before
  writing it with the driver's `send(text)`: `_Handoff` relies on that to switch a
  panel to direct writes exactly when everything queued before it has gone out, and
  `direct_transports`' driver skips the text `_Handoff` leaves in place of the
  namespace CONNECT it wrote itself. The CONNECT is found in the queue by its
  encoding (`0<namespace>,`) as Socket.IO puts it there.
- `AsyncServer.manager.is_connected(sid, namespace)` and `eio_sid_from_sid`: public
  enough, but used here to know when Socket.IO has queued a namespace CONNECT.
- `AsyncServer(serializer=cls)` taking a `socketio.packet.Packet` subclass, that class's
  `json` attribute being what `encode` calls `dumps(data, separators=...)` on, and an
  event handler's return value `r` being acknowledged with `data=[r]`: `Packet` and
  `RawJSON` rely on these.
- That Engine.IO queues the OPEN packet before it upgrades, and of aiohttp (3.12+):
  a response whose `_send_headers_immediately` is False leaves its serialized headers
  in its payload writer's `_headers_buf` after `prepare` (`_headers_written` False).
  `_upgrade_with_open` sends that 101 and the OPEN in one write.
- That `AsyncSocket.schedule_ping` starts `AsyncSocket._send_ping`, bound to the socket,
  through the Engine.IO server's `start_background_task` (which returns the task), that
  `AsyncSocket.close` calls the server's `handlers["disconnect"]` (a coroutine function,
  python-socketio's, taking the sid first) while the socket is still in `sockets`, and
  that aiohttp's `WebSocketResponse.exception()` is the error a WebSocket ended with:
  `_keep_ping_tasks`, `_stop_pinging` and `_drop_tracebacks` free a departed panel's
  objects with these.
- For a WebSocket opened directly (not an upgrade from long-polling), whether the door
  (`hub/door.py`) or aiohttp served its opening, `_serve` stands in
  for `AsyncSocket._websocket_handler`, doing what it does with the socket's
  `connected`, `upgraded`, `queue`, `receive(packet)`, `close(wait, abort, reason)` and
  `server.ping_interval`, `ping_timeout`, `max_http_buffer_size`, `reason`; that
  `close(wait=True)` waits on `queue.join()` and that `send` refuses once `closed`.

`tests/test_fanout.py` drives a real WebSocket through the hook and fails when any of
these stops behaving as described.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from typing import Any

import socketio
from aiohttp import web
from engineio import exceptions as engineio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from hub.store import dumps

log = logging.getLogger("avhub.fanout")


def encode_event(namespace: str, event: str, data_json: str) -> eio_packet.Packet:
    """A Socket.IO event whose payload is already compact JSON, as an Engine.IO packet.

    The text is what python-socketio's `Packet(EVENT, [event, data], namespace).encode()`
    gives for JSON data (type digit, namespace and comma, then the array), without its
    walk of the whole payload looking for binary attachments (our payloads are JSON).
    """
    prefix = "2" if namespace == "/" else f"2{namespace},"
    text = f"{prefix}[{dumps(event)},{data_json}]"
    return eio_packet.Packet(eio_packet.MESSAGE, data=text)


class RawJSON(str):
    """Text that is already compact JSON, for an acknowledgement: `Packet` puts it in as is."""

    __slots__ = ()


class _PacketJSON:
    """The standard library's `json` as python-socketio's packets use it, except that the
    arguments of an acknowledgement that is one `RawJSON` are not encoded again."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        if type(obj) is list and len(obj) == 1 and type(obj[0]) is RawJSON:
            return f"[{obj[0]}]"
        return json.dumps(obj, **kwargs)


class Packet(socketio.packet.Packet):  # type: ignore[misc]
    """The hub's Socket.IO packet class (`AsyncServer(serializer=Packet)`): python-socketio's,
    with `_PacketJSON`. A handler that returns a `RawJSON` (a snapshot encoded once, by
    `snapshot_json`) has it sent without building and encoding the object again."""

    json = _PacketJSON


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, unfragmented server→client WebSocket frame (RFC 6455 §5.2): text by
    default, or the `opcode` given (a close, a pong)."""
    first = 0x80 | opcode
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


class Event:
    """One event, encoded once: its data's JSON, the Engine.IO packet, and its WebSocket
    frame on first use."""

    __slots__ = ("_frame", "data_json", "packet")

    def __init__(self, namespace: str, event: str, data_json: str) -> None:
        self.data_json = data_json
        self.packet = encode_event(namespace, event, data_json)
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = ws_frame(self.packet.encode().encode())
        return self._frame


class Mode(enum.Enum):
    JOINING = "joining"  # waiting for Socket.IO to queue the namespace CONNECT
    HANDOFF = "handoff"  # waiting for Engine.IO to write everything queued before
    QUEUED = "queued"  # through the Engine.IO queue (long-polling, or no direct transport)
    DIRECT = "direct"  # frames written straight to the WebSocket's transport


class Member:
    """One panel of a room and how its bytes currently reach it."""

    __slots__ = ("eio_sid", "mode", "pending", "sid", "transport")

    def __init__(self, sid: str, eio_sid: str, first: list[Event]) -> None:
        self.sid = sid
        self.eio_sid = eio_sid
        self.mode = Mode.JOINING
        self.pending: list[Event] = first
        self.transport: asyncio.Transport | None = None


class _Sent(str):
    """What a `_Handoff` leaves for Engine.IO's writer when it wrote its bytes itself."""

    __slots__ = ()


SENT = _Sent("6")  # a NOOP, were it ever written; the panel's WebSocket driver skips it


class _Handoff(eio_packet.Packet):  # type: ignore[misc]
    """A packet in Engine.IO's queue that switches a member to direct writes as it is sent.

    Engine.IO's WebSocket writer encodes each queued packet just before writing it,
    so when this one is encoded everything queued before it is already in the
    transport: frames written now come after. It takes the place of the namespace
    CONNECT (`carried`) when that is still queued, and then writes the CONNECT and
    the member's first events in one write, leaving nothing for Engine.IO to send;
    otherwise it is a NOOP queued last.
    """

    def __init__(self, fanout: Fanout, member: Member, carried: Any = None) -> None:
        super().__init__(eio_packet.NOOP)
        self._switch = (fanout, member, carried)

    def encode(self, b64: bool = False) -> Any:
        fanout, member, carried = self._switch
        if fanout._go_direct(member, carried):
            return SENT
        return super().encode(b64) if carried is None else carried.encode(b64)


class Fanout:
    """Delivers one room's events to its panels, each panel in commit order.

    Everything is synchronous: `broadcast` runs inside the store's `commit`, so the
    recipients of a change are exactly the panels that have joined when it is
    committed, and a joining panel's snapshot or replay is queued at the same instant.
    Each event is encoded once, as an Engine.IO packet and as one WebSocket frame.

    A panel connected over WebSocket gets its frames written straight to the socket's
    transport: the per-recipient cost is one `transport.write`. Until the namespace
    CONNECT and everything before it has gone out (see `_Handoff`), its events wait
    in `pending`; a long-polling panel goes through Engine.IO's queue instead. A panel
    that stops reading is disconnected once `max_buffer` bytes or `max_pending`
    events wait for it; it resumes when it reconnects.
    """

    max_buffer = 4 * 1024 * 1024
    max_pending = 10_000

    def __init__(self, server: socketio.AsyncServer, namespace: str) -> None:
        self._server = server
        self._namespace = namespace
        self._transports = direct_transports(server)
        self._members: dict[str, Member] = {}
        self._hangups: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        return len(self._members)

    def modes(self) -> dict[str, int]:
        """How many members are in each mode (for tests and metrics)."""
        counts: dict[str, int] = {}
        for member in self._members.values():
            counts[member.mode.value] = counts.get(member.mode.value, 0) + 1
        return counts

    def event(self, event: str, data: Any) -> Event:
        """An event of this namespace, encoded once."""
        return self.raw_event(event, dumps(data))

    def raw_event(self, event: str, data_json: str) -> Event:
        """An event of this namespace whose payload is already compact JSON."""
        return Event(self._namespace, event, data_json)

    def join(self, sid: str, eio_sid: str, first: list[Event]) -> None:
        """Add a panel; `first` (its snapshot or replay) goes out before any later event."""
        member = Member(sid, eio_sid, first)
        self._members[sid] = member
        asyncio.get_running_loop().call_soon(self._activate, member, 0)

    def leave(self, sid: str) -> None:
        member = self._members.pop(sid, None)
        if member is not None:
            member.pending.clear()
            member.transport = None

    def broadcast(self, event: str, data: Any) -> Event | None:
        """Send an event to every current member; the event as encoded (None: nobody)."""
        if not self._members:
            return None
        ev = self.event(event, data)
        self.deliver(ev)
        return ev

    def deliver(self, ev: Event) -> None:
        """Send an already encoded event to every current member."""
        for member in tuple(self._members.values()):
            if member.mode is Mode.DIRECT:
                self._write(member, ev.frame)
            else:
                self._later(member, ev)

    def send(self, sid: str, event: str, data: Any) -> None:
        """Send an event to one member, after everything sent to it before."""
        member = self._members.get(sid)
        if member is None:
            return
        ev = self.event(event, data)
        if member.mode is Mode.DIRECT:
            self._write(member, ev.frame)
        else:
            self._later(member, ev)

    async def close(self) -> None:
        for sid in list(self._members):
            self.leave(sid)

    # ---- how bytes reach one member ------------------------------------------------

    def _write(self, member: Member, frame: bytes) -> None:
        transport = member.transport
        if transport is None or transport.is_closing():
            return  # the socket is going away; its disconnect removes the member
        if transport.get_write_buffer_size() > self.max_buffer:
            self._drop(member, f"{transport.get_write_buffer_size()} bytes unsent")
            return
        transport.write(frame)

    def _later(self, member: Member, ev: Event) -> None:
        """An event for a member not (yet) written to directly: queued or pending."""
        if member.mode is Mode.QUEUED:
            self._enqueue(member, ev)
        else:
            member.pending.append(ev)
            if len(member.pending) > self.max_pending:
                self._drop(member, f"{len(member.pending)} events waiting")

    def _enqueue(self, member: Member, ev: Event) -> None:
        sock = self._server.eio.sockets.get(member.eio_sid)
        if sock is None or sock.closed:
            return
        sock.queue.put_nowait(ev.packet)
        if sock.queue.qsize() > self.max_pending:
            self._drop(member, f"{sock.queue.qsize()} packets queued")
        else:
            self._try_handoff(member, sock)

    def _activate(self, member: Member, tries: int) -> None:
        """After on_connect: once Socket.IO has queued the CONNECT, start delivering."""
        if self._members.get(member.sid) is not member:
            return
        if not self._server.manager.is_connected(member.sid, self._namespace):
            if tries < 1000:  # Socket.IO queues the CONNECT right after on_connect returns
                asyncio.get_running_loop().call_soon(self._activate, member, tries + 1)
            else:
                self.leave(member.sid)
            return
        sock = self._server.eio.sockets.get(member.eio_sid)
        if sock is None or sock.closed:
            self.leave(member.sid)
            return
        if self._try_handoff(member, sock, connect=True):
            return
        member.mode = Mode.QUEUED
        pending, member.pending = member.pending, []
        for ev in pending:
            sock.queue.put_nowait(ev.packet)

    def _try_handoff(self, member: Member, sock: Any, *, connect: bool = False) -> bool:
        """Once the panel's WebSocket is in place, queue the switch to direct writes.

        With `connect`, the switch takes the place of this namespace's CONNECT when that
        still waits in the queue, and writes it (with the member's first events).
        """
        if not (sock.upgraded and not sock.upgrading and sock.sid in self._transports):
            return False
        member.mode = Mode.HANDOFF
        queue: asyncio.Queue[Any] = sock.queue
        queued = _drain(queue) if connect else []
        at = self._connect_in(queued)
        if at is None:
            queued.append(_Handoff(self, member))
        else:
            queued[at] = _Handoff(self, member, queued[at])
        for pkt in queued:
            queue.put_nowait(pkt)
        return True

    def _connect_in(self, packets: list[Any]) -> int | None:
        """Where this namespace's CONNECT is among Engine.IO packets, if there."""
        prefix = f"0{self._namespace},"
        for i, pkt in enumerate(packets):
            if (
                type(pkt) is eio_packet.Packet
                and pkt.packet_type == eio_packet.MESSAGE
                and isinstance(pkt.data, str)
                and pkt.data.startswith(prefix)
            ):
                return i
        return None

    def _go_direct(self, member: Member, carried: Any = None) -> bool:
        """Engine.IO is writing the handoff marker: write `carried` (the CONNECT) and
        `pending` in one write, and directly from now on; False if the member is gone."""
        if self._members.get(member.sid) is not member or member.mode is not Mode.HANDOFF:
            return False
        member.transport = self._transports.get(member.eio_sid)
        member.mode = Mode.DIRECT
        pending, member.pending = member.pending, []
        frames = [ev.frame for ev in pending]
        if carried is not None:
            frames.insert(0, ws_frame(carried.encode().encode()))
        if frames:
            self._write(member, b"".join(frames))
        return True

    def _drop(self, member: Member, why: str) -> None:
        """Disconnect a panel that does not keep up; it resyncs when it reconnects."""
        log.warning(
            "%s: disconnecting panel %s, it is not reading (%s)", self._namespace, member.sid, why
        )
        self.leave(member.sid)
        transport = self._transports.get(member.eio_sid)
        if transport is not None:
            transport.abort()
        else:
            task = asyncio.ensure_future(
                self._server.disconnect(member.sid, namespace=self._namespace)
            )
            self._hangups.add(task)
            task.add_done_callback(self._hangups.discard)


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    """Take everything out of `queue` (the caller puts it back before it yields).

    A writer woken for an item it has not taken yet simply finds the queue full again:
    `asyncio.Queue.get` re-checks after every wake-up.
    """
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
        queue.task_done()
    return items


class _HeldUpgrade(web.WebSocketResponse):
    """A WebSocket response whose `101 Switching Protocols` stays in aiohttp's buffer
    after `prepare`, for `_upgrade_with_open` to send with Engine.IO's OPEN."""

    _send_headers_immediately = False


def _upgrade_with_open(
    response: web.WebSocketResponse, queue: asyncio.Queue[Any], transport: Any
) -> None:
    """Write the held 101 and the OPEN packet waiting in the socket's queue in one write.

    Engine.IO queues OPEN before it upgrades and its writer task would send it on a later
    turn of the loop, in a second write: one segment now, one read for the panel, instead
    of two of each. Whatever else is queued stays for the writer. Without an OPEN first
    in the queue (not how python-engineio 4.15 connects) the 101 goes out alone.
    """
    writer: Any = response._payload_writer
    headers = getattr(writer, "_headers_buf", None)
    if not headers or writer._headers_written:
        return  # aiohttp sent the 101 itself: nothing held
    writer._headers_buf, writer._headers_written = None, True
    if transport is None or transport.is_closing():
        return  # the panel left during the handshake; its handler sees the socket closed
    queued = _drain(queue)
    if queued and type(queued[0]) is eio_packet.Packet and queued[0].packet_type == eio_packet.OPEN:
        headers += ws_frame(queued.pop(0).encode().encode())
    for pkt in queued:
        queue.put_nowait(pkt)
    transport.write(headers)


MAX_UNSENT = 1000
"""Packets (answers, pings) waiting in a directly served panel's Engine.IO queue beyond which
the panel, sending but not reading, is disconnected: the queue has no bound of its own."""


async def _serve(link: Any, socket: Any) -> None:
    """Engine.IO's WebSocket handler (python-engineio 4.15 `_websocket_handler`) for a
    WebSocket the panel opened directly, without a task and a timer per packet.

    `link` is the panel's WebSocket: `transport` (its asyncio transport), `receive()` (the
    next message's text or bytes; None once it is closed or failed), `send(text)` and
    `close()`. That is `direct_transports`' driver on aiohttp, or `hub.door`'s stream.

    Engine.IO reads each packet in a new task under `wait_for`, and its writer takes each
    batch from the queue under `wait_for` too: a task, a timer and two more turns of the
    event loop per packet each way. Here the reader awaits the WebSocket itself, under
    one deadline moved on at every packet (silent for the ping interval plus the ping
    timeout, the panel is gone, as Engine.IO has it), and the writer awaits the queue
    itself: it needs no deadline of its own, the reader's ends the socket. The rest is
    Engine.IO's: packets go to `socket.receive`, a bad one is logged and skipped, and at
    the end the writer is stopped, the WebSocket closed and the socket closed with the
    reason `TRANSPORT_CLOSE` (its disconnect handlers run). Two differences: a packet that
    does not decode is skipped with a warning (Engine.IO let the error end the socket), and
    a panel that keeps asking (`sync`, `command`) without reading the answers is cut off
    once `MAX_UNSENT` packets wait for it (Engine.IO let its queue grow).
    """
    server = socket.server
    loop = asyncio.get_running_loop()
    limit = server.ping_interval + server.ping_timeout
    transport = link.transport
    socket.connected = True
    socket.upgraded = True
    writer = asyncio.ensure_future(_write_queued(link, socket))
    try:
        async with asyncio.timeout(limit) as silence:
            while True:
                data = await link.receive()
                if not isinstance(data, str | bytes) or len(data) > server.max_http_buffer_size:
                    break  # closed, failed, or more than Engine.IO takes
                silence.reschedule(loop.time() + limit)
                try:
                    await socket.receive(eio_packet.Packet(encoded_packet=data))
                except engineio_exceptions.SocketIsClosedError:
                    break
                except Exception as err:  # a packet Engine.IO cannot take; the panel stays
                    log.warning(
                        "panel %s: skipped a packet Engine.IO cannot read (%s): %.80r",
                        socket.sid,
                        type(err).__name__,
                        data,
                    )
                if socket.queue.qsize() > MAX_UNSENT and transport is not None:
                    log.warning(
                        "panel %s: disconnecting it, it asks but does not read the answers "
                        "(%d packets unsent)",
                        socket.sid,
                        socket.queue.qsize(),
                    )
                    transport.abort()  # the writer, waiting for the panel to read, ends too
                    break
    except (TimeoutError, asyncio.CancelledError):
        pass  # silent too long, or the hub is stopping: closed below, as Engine.IO does
    except Exception:
        log.debug("panel %s: the WebSocket failed", socket.sid, exc_info=True)
    socket.queue.put_nowait(None)
    await writer
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _write_queued(link: Any, socket: Any) -> None:
    """Engine.IO's writer: each queued packet encoded and sent in order, until the `None`
    that ends the socket or a send fails; then the WebSocket is closed.

    Nothing is sent after that, so what is queued is taken out and the socket gets a
    queue that drops what is put in it: a server disconnect racing the panel's hang-up
    (`close(wait=True)` waits for the queue to be done) returns instead of waiting on a
    packet nobody will send. A `_Handoff` has written its bytes itself: its `SENT` is
    skipped.
    """
    queue = socket.queue
    try:
        while True:
            pkt = await queue.get()
            queue.task_done()
            if pkt is None:
                break
            text = pkt.encode()
            if text is not SENT:
                await link.send(text)
    except Exception:
        log.debug("panel %s: a send failed, closing", socket.sid, exc_info=True)
    finally:
        _drain(queue)
        socket.queue = _Spent()
    await link.close()


class _Spent(asyncio.Queue[Any]):
    """The queue of a socket whose writer has stopped: what is put is dropped."""

    def put_nowait(self, item: Any) -> None:
        pass


def direct_transports(server: socketio.AsyncServer) -> dict[str, asyncio.Transport]:
    """Engine.IO sid → transport of each live WebSocket of `server` (installed once).

    Engine.IO's aiohttp driver builds a `WebSocketResponse` per connection and keeps it
    to itself; this swaps in a subclass that records the transport while the socket
    lives, and that refuses permessage-deflate, whose per-connection compression would
    make every recipient's bytes different.
    """
    eio = server.eio
    existing = eio._async["websocket"]
    registry: dict[str, asyncio.Transport] | None = getattr(existing, "transports", None)
    if registry is not None:
        return registry
    transports: dict[str, asyncio.Transport] = {}
    _keep_ping_tasks(eio)

    class PanelWebSocket(existing):  # type: ignore[misc, valid-type]
        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request: web.Request = environ["aiohttp.request"]
            self._sock = _HeldUpgrade(max_msg_size=self.server.max_http_buffer_size, compress=False)
            await self._sock.prepare(request)
            self.environ = environ
            socket = self.handler.__self__
            sid = socket.sid
            _upgrade_with_open(self._sock, socket.queue, request.transport)
            self.transport = request.transport
            if request.transport is not None:
                transports[sid] = request.transport
            try:
                if socket.connected:  # an upgrade from long-polling: Engine.IO's own handler
                    await self.handler(self)
                else:
                    await _serve(self, socket)
            finally:
                transports.pop(sid, None)
                _drop_tracebacks(self._sock.exception())
            return self._sock

        async def send(self, message: Any) -> None:
            if message is SENT:
                return  # a _Handoff wrote its bytes itself
            await super().send(message)

        async def receive(self) -> str | bytes | None:
            """The next message's data: None once the WebSocket is closed or failed."""
            data = (await self._sock.receive()).data
            return data if isinstance(data, str | bytes) else None

    PanelWebSocket.transports = transports
    eio._async = {**eio._async, "websocket": PanelWebSocket}
    return transports


def _keep_ping_tasks(eio: Any) -> None:
    """Keep each Engine.IO socket's ping task on the socket, and stop it when the panel goes.

    `AsyncSocket.schedule_ping` starts `_send_ping` (sleep the ping interval, then send a
    PING unless closed) through `start_background_task` and keeps no handle. A panel
    that leaves would leave that task asleep for the ping interval (25 s), holding its
    socket, queue and all: garbage the collector counts and walks, its young collections
    coming round every few reconnects. This wraps the server's `start_background_task`
    to note a ping task as the socket's `_avhub_ping`, and its `disconnect` handler
    (python-socketio's), which `AsyncSocket.close` calls once per socket whatever the
    transport and whoever hangs up, to cancel that task (`_stop_pinging`) as it returns.
    """
    start = eio.start_background_task
    send_ping = AsyncSocket._send_ping

    def start_background_task(target: Any, *args: Any, **kwargs: Any) -> Any:
        task = start(target, *args, **kwargs)
        if getattr(target, "__func__", None) is send_ping:
            target.__self__._avhub_ping = task
        return task

    eio.start_background_task = start_background_task
    disconnected = eio.handlers["disconnect"]

    async def on_disconnect(sid: str, *args: Any) -> Any:
        socket = eio.sockets.get(sid)
        try:
            return await disconnected(sid, *args)
        finally:
            if socket is not None:
                _stop_pinging(socket)

    eio.handlers["disconnect"] = on_disconnect


def _stop_pinging(socket: Any) -> None:
    """Cancel a closing socket's sleeping ping task (`_keep_ping_tasks`), freeing the socket."""
    task = getattr(socket, "_avhub_ping", None)
    if task is not None:
        socket._avhub_ping = None
        task.cancel()


def _drop_tracebacks(error: BaseException | None) -> None:
    """Let an ended WebSocket's last error (`WebSocketResponse.exception()`), and the errors
    it was raised while handling, go without their tracebacks.

    A panel that hangs up without a close frame: aiohttp's reader raises `EofStream`,
    `receive` answers it by closing, the close frame cannot be written to the closing
    transport, and the response keeps that error. Its traceback holds the frames of
    `close` and `receive`, whose `self` is the response: a reference cycle through the
    request, its handler, the WebSocket reader and writer, some 50 objects per reconnect
    that only the cycle collector frees (a young collection every dozen reconnects).
    Without the tracebacks they go as the panel does.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
