"""Room namespaces: panel auth, resync (snapshot or replay), commands, ordered fan-out."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from drivers.base import Driver
from drivers.errors import AvhubError, CommandError, ErrorCode
from hub.store import Change, RoomState

log = logging.getLogger("avhub.rooms")


def encode_event(namespace: str, event: str, data: Any) -> eio_packet.Packet:
    """A Socket.IO event as an Engine.IO packet, JSON-encoded once for every recipient."""
    text = sio_packet.Packet(sio_packet.EVENT, data=[event, data], namespace=namespace).encode()
    return eio_packet.Packet(eio_packet.MESSAGE, data=text)


def error_reply(code: ErrorCode, message: str) -> dict[str, Any]:
    """The failed-ack shape shared by `command` (and the HTTP API)."""
    return {"ok": False, "error": {"code": code.value, "message": message}}


class Fanout:
    """Delivers one room's events to its panels in exactly the order they were queued.

    Queueing is synchronous, so a panel that joins while a change is being committed
    gets its snapshot and the changes after it in `seq` order. One task per room does
    the sending, and each event is encoded once for all recipients.
    """

    def __init__(self, server: socketio.AsyncServer, namespace: str) -> None:
        self._server = server
        self._namespace = namespace
        self._members: dict[str, str] = {}  # sid -> Engine.IO sid
        self._outbox: deque[tuple[eio_packet.Packet, str | None]] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._members)

    def join(self, sid: str, eio_sid: str) -> None:
        self._members[sid] = eio_sid

    def leave(self, sid: str) -> None:
        self._members.pop(sid, None)

    def broadcast(self, event: str, data: Any) -> None:
        """Queue an event for every member at the time it is sent."""
        if self._members:
            self._push(encode_event(self._namespace, event, data), None)

    def send(self, sid: str, event: str, data: Any) -> None:
        """Queue an event for one member, behind everything already queued."""
        self._push(encode_event(self._namespace, event, data), sid)

    def _push(self, pkt: eio_packet.Packet, target: str | None) -> None:
        self._outbox.append((pkt, target))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"fanout{self._namespace}")
        self._ready.set()

    async def _drain(self) -> None:
        eio = self._server.eio
        outbox = self._outbox
        while True:
            while outbox:
                pkt, target = outbox.popleft()
                if target is None:
                    recipients: Sequence[str] = tuple(self._members.values())
                else:
                    one = self._members.get(target)
                    recipients = (one,) if one is not None else ()
                for eio_sid in recipients:
                    try:
                        await eio.send_packet(eio_sid, pkt)
                    except Exception as err:  # a closing socket must not stop the room
                        log.debug("%s: dropped packet for %s: %s", self._namespace, eio_sid, err)
            self._ready.clear()
            await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


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
        # From here to the end nothing awaits: the panel joins the fan-out at the
        # exact seq its snapshot or replay ends with.
        self.fanout.join(sid, eio_sid)
        resume = auth.get("resume")
        changes = None
        if isinstance(resume, dict):
            changes = self.room.since(resume.get("epoch"), resume.get("seq"))
        if changes is None:
            self.fanout.send(sid, "snapshot", self.room.snapshot())
        else:
            for change in changes:
                self.fanout.send(sid, "change", change.to_dict())
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
