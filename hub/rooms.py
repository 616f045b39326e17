"""Room namespaces: panel auth, resync (snapshot or replay), commands, ordered fan-out."""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import socketio
from aiohttp import web
from engineio import packet as eio_packet

from drivers.base import Driver
from drivers.errors import AvhubError, CommandError, ErrorCode
from hub.store import Change, RoomState, dumps

log = logging.getLogger("avhub.rooms")


def encode_event(namespace: str, event: str, data_json: str) -> eio_packet.Packet:
    """A Socket.IO event whose payload is already compact JSON, as an Engine.IO packet.

    The text is what python-socketio's `Packet(EVENT, [event, data], namespace).encode()`
    gives for JSON data (type digit, namespace and comma, then the array), without its
    walk of the whole payload looking for binary attachments (our payloads are JSON).
    """
    prefix = "2" if namespace == "/" else f"2{namespace},"
    text = f"{prefix}[{dumps(event)},{data_json}]"
    return eio_packet.Packet(eio_packet.MESSAGE, data=text)


def error_reply(code: ErrorCode, message: str) -> dict[str, Any]:
    """The failed-ack shape shared by `command` (and the HTTP API)."""
    return {"ok": False, "error": {"code": code.value, "message": message}}


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented server→client WebSocket text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class Event:
    """One event, encoded once: the Engine.IO packet, and its WebSocket frame on first use."""

    __slots__ = ("_frame", "packet")

    def __init__(self, namespace: str, event: str, data_json: str) -> None:
        self.packet = encode_event(namespace, event, data_json)
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = ws_text_frame(self.packet.encode().encode())
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


class _Handoff(eio_packet.Packet):  # type: ignore[misc]
    """An Engine.IO NOOP that switches a member to direct writes as Engine.IO sends it.

    Engine.IO's WebSocket writer encodes each queued packet just before writing it,
    so when this one is encoded everything queued before it (the namespace CONNECT
    among them) is already in the transport: frames written now come after.
    """

    def __init__(self, fanout: Fanout, member: Member) -> None:
        super().__init__(eio_packet.NOOP)
        self._switch = (fanout, member)

    def encode(self, b64: bool = False) -> Any:
        fanout, member = self._switch
        fanout._go_direct(member)
        return super().encode(b64)


class Fanout:
    """Delivers one room's events to its panels, each panel in commit order.

    Everything is synchronous: `broadcast` runs inside `RoomState.commit`, so the
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

    def broadcast(self, event: str, data: Any) -> None:
        """Send an event to every current member."""
        if not self._members:
            return
        ev = self.event(event, data)
        for member in tuple(self._members.values()):
            if member.mode is Mode.DIRECT:
                self._write(member, ev.frame)
            elif member.mode is Mode.QUEUED:
                self._enqueue(member, ev)
            else:
                member.pending.append(ev)
                if len(member.pending) > self.max_pending:
                    self._drop(member, f"{len(member.pending)} events waiting")

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

    def _enqueue(self, member: Member, ev: Event) -> None:
        sock = self._server.eio.sockets.get(member.eio_sid)
        if sock is None or sock.closed:
            return
        sock.queue.put_nowait(ev.packet)
        if len(sock.queue._queue) > self.max_pending:
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
        if self._try_handoff(member, sock):
            return
        member.mode = Mode.QUEUED
        pending, member.pending = member.pending, []
        for ev in pending:
            sock.queue.put_nowait(ev.packet)

    def _try_handoff(self, member: Member, sock: Any) -> bool:
        """Once the panel's WebSocket is in place, queue the switch to direct writes."""
        if not (sock.upgraded and not sock.upgrading and sock.sid in self._transports):
            return False
        member.mode = Mode.HANDOFF
        sock.queue.put_nowait(_Handoff(self, member))
        return True

    def _go_direct(self, member: Member) -> None:
        """Engine.IO is writing the handoff marker: flush `pending`, write directly from now."""
        if self._members.get(member.sid) is not member or member.mode is not Mode.HANDOFF:
            return
        member.transport = self._transports.get(member.eio_sid)
        member.mode = Mode.DIRECT
        pending, member.pending = member.pending, []
        if pending:
            self._write(member, b"".join(ev.frame for ev in pending))

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

    class PanelWebSocket(existing):  # type: ignore[misc, valid-type]
        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request: web.Request = environ["aiohttp.request"]
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False
            )
            await self._sock.prepare(request)
            self.environ = environ
            sid = self.handler.__self__.sid
            if request.transport is not None:
                transports[sid] = request.transport
            try:
                await self.handler(self)
            finally:
                transports.pop(sid, None)
            return self._sock

    PanelWebSocket.transports = transports
    eio._async = {**eio._async, "websocket": PanelWebSocket}
    return transports


class RoomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """`/rooms/<room_id>`: the panel protocol of DESIGN.md §3 for one room."""

    def __init__(
        self,
        room: RoomState,
        drivers: Mapping[str, Driver[Any]],
        tokens: Sequence[str],
        admin_token: str | None = None,
    ) -> None:
        super().__init__(f"/rooms/{room.room_id}")
        self.room = room
        self.drivers = drivers
        self.tokens = [t for t in (*tokens, admin_token) if t]
        self.open_room = not tokens
        self.fanout: Fanout | None = None
        self.command_results: Counter[str] = Counter()  # "ok" or error code -> commands
        self._unsubscribe = room.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if self.fanout is not None:
            self.fanout.broadcast("change", change.to_dict())

    def attach(self, server: socketio.AsyncServer) -> None:
        """Bind to the server once it exists (python-socketio sets `self.server` later)."""
        self.fanout = Fanout(server, self.namespace)

    def authorized(self, token: object) -> bool:
        """True when the room is open or `token` is one of its tokens (or the admin token)."""
        if self.open_room:
            return True
        if not isinstance(token, str):
            return False
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        if not self.authorized(auth.get("token")):
            log.info("%s: refused a panel: bad or missing token", self.namespace)
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized",
                {
                    "code": "unauthorized",
                    "message": f"room {self.room.room_id!r} needs a valid panel token",
                },
            )
        assert self.fanout is not None
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        # Nothing awaits from here on: the panel joins the fan-out at the exact seq
        # its snapshot or replay ends with.
        resume = auth.get("resume")
        changes = None
        if isinstance(resume, dict):
            changes = self.room.since(resume.get("epoch"), resume.get("seq"))
        fanout = self.fanout
        if changes is None:
            first = [fanout.raw_event("snapshot", self.room.snapshot_json())]
        else:
            first = [fanout.event("change", change.to_dict()) for change in changes]
        fanout.join(sid, eio_sid, first)
        log.debug(
            "%s: panel %s joined (%s)",
            self.namespace,
            sid,
            "snapshot" if changes is None else f"replayed {len(changes)}",
        )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.fanout is not None:
            self.fanout.leave(sid)

    async def on_sync(self, sid: str, *args: Any) -> dict[str, Any]:
        """`{"epoch", "seq"}` → the missed changes, or a snapshot when they are gone."""
        data = args[0] if len(args) == 1 else None
        if not isinstance(data, dict):
            return error_reply(ErrorCode.INVALID_ARGS, "sync takes {epoch, seq}")
        changes = self.room.since(data.get("epoch"), data.get("seq"))
        if changes is None:
            return {"snapshot": self.room.snapshot()}
        return {"changes": [c.to_dict() for c in changes]}

    async def on_command(self, sid: str, *args: Any) -> dict[str, Any]:
        """`{"device", "action", "args"}` → `{"ok": true, "result"}` or an error."""
        data = args[0] if len(args) == 1 else None
        reply = await run_command(self.drivers, data, self.namespace)
        self.count_result(reply)
        return reply

    def count_result(self, reply: dict[str, Any]) -> None:
        """Count one command reply of this room (panels and HTTP) for `/metrics`."""
        self.command_results["ok" if reply["ok"] else reply["error"]["code"]] += 1


async def run_command(drivers: Mapping[str, Driver[Any]], data: Any, where: str) -> dict[str, Any]:
    """Validate and run one command; every failure becomes an error reply, never a raise."""
    try:
        if not isinstance(data, dict):
            raise CommandError(
                ErrorCode.INVALID_ARGS, "a command is an object {device, action, args}"
            )
        device, action = data.get("device"), data.get("action")
        if not isinstance(device, str) or not isinstance(action, str):
            raise CommandError(ErrorCode.INVALID_ARGS, "device and action must be strings")
        driver = drivers.get(device)
        if driver is None:
            raise CommandError(ErrorCode.UNKNOWN_DEVICE, f"no device {device!r} in this room")
        result = await driver.execute(action, data.get("args"))
    except AvhubError as err:
        return error_reply(err.code, str(err))
    except Exception as err:
        log.exception("%s: command %r failed", where, data)
        return error_reply(ErrorCode.INTERNAL, f"internal error: {type(err).__name__}")
    return {"ok": True, "result": result}
