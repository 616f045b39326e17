"""`/rooms/<room_id>`: the Socket.IO front door of a room (DESIGN.md §3)."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from drivers.errors import ErrorCode
from hub.commands import Reply, error_reply
from hub.fanout import Event, Fanout
from hub.room import Room
from hub.schemas import held_ids
from hub.store import Change

log = logging.getLogger("avhub.rooms")


class RecentEvents:
    """The last `size` change events sent to the room's panels, as encoded for them.

    A panel that resumes is replayed these instead of encoding its missed changes
    again; whatever the store keeps, replay costs a few lookups and one write.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._epoch: str | None = None
        self._events: dict[int, Event] = {}

    def add(self, change: Change, event: Event) -> None:
        if change.epoch != self._epoch:
            self._epoch, self._events = change.epoch, {}
        self._events[change.seq] = event
        if len(self._events) > self.size:
            del self._events[next(iter(self._events))]

    def get(self, change: Change) -> Event | None:
        return self._events.get(change.seq) if change.epoch == self._epoch else None


class RoomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Panel auth, resync (snapshot or replay), commands and ordered fan-out for one room."""

    def __init__(self, room: Room) -> None:
        super().__init__(f"/rooms/{room.id}")
        self.room = room
        self.fanout: Fanout | None = None
        self._panels: set[str] = set()
        self._recent = RecentEvents()
        self._unsubscribe = room.store.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if self.fanout is not None:
            event = self.fanout.broadcast("change", change.to_dict())
            if event is not None:
                self._recent.add(change, event)

    def attach(self, server: socketio.AsyncServer) -> None:
        """Bind to the server once it exists (python-socketio sets `self.server` later)."""
        self.fanout = Fanout(server, self.namespace)

    async def close(self) -> None:
        """Stop forwarding changes and let go of every panel."""
        self._unsubscribe()
        if self.fanout is not None:
            await self.fanout.close()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        room = self.room
        if not room.authorized(auth.get("token")):
            log.info("%s: refused a panel: bad or missing token", self.namespace)
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized",
                {"code": "unauthorized", "message": f"room {room.id!r} needs a valid panel token"},
            )
        assert self.fanout is not None
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        # Nothing awaits from here on: the panel joins the fan-out at the exact seq
        # its snapshot or replay ends with.
        resume = auth.get("resume")
        changes = None
        if isinstance(resume, dict):
            changes = room.store.since(resume.get("epoch"), resume.get("seq"))
        fanout = self.fanout
        if changes is None:
            held = held_ids(auth.get("schemas"))
            first = [fanout.raw_event("snapshot", room.store.snapshot_json(held))]
            room.counters.snapshots += 1
        else:
            recent = self._recent
            first = [recent.get(c) or fanout.event("change", c.to_dict()) for c in changes]
            room.counters.resumed += 1
        fanout.join(sid, eio_sid, first)
        self._panels.add(sid)
        room.counters.panels = len(self._panels)
        log.debug(
            "%s: panel %s joined (%s)",
            self.namespace,
            sid,
            "snapshot" if changes is None else f"replayed {len(changes)}",
        )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.fanout is not None:
            self.fanout.leave(sid)
        self._panels.discard(sid)
        self.room.counters.panels = len(self._panels)

    async def on_sync(self, sid: str, *args: Any) -> Reply:
        """`{"epoch", "seq", "schemas"?}` → the missed changes, or a snapshot when they are gone.

        The snapshot leaves out the action schemas whose ids `schemas` lists.
        """
        data = args[0] if len(args) == 1 else None
        if not isinstance(data, dict):
            return error_reply(ErrorCode.INVALID_ARGS, "sync takes {epoch, seq}")
        changes = self.room.store.since(data.get("epoch"), data.get("seq"))
        if changes is None:
            return {"snapshot": self.room.store.snapshot(held_ids(data.get("schemas")))}
        return {"changes": [c.to_dict() for c in changes]}

    async def on_command(self, sid: str, *args: Any) -> Reply:
        """`{"device", "action", "args"}` → `{"ok": true, "result"}` or an error."""
        data = args[0] if len(args) == 1 else None
        return await self.room.command(data, self.namespace)
