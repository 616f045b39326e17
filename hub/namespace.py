"""`/rooms/<room_id>`: the Socket.IO front door of a room (DESIGN.md §3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

import socketio

from drivers.errors import ErrorCode
from hub.commands import Reply, error_reply
from hub.fanout import Event, Fanout, RawJSON
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
        self.removed = False  # the room left the deployment: refuse panels from now on
        self._panels: dict[str, object] = {}  # sid -> the token it came with
        self._recent = RecentEvents()
        # Schema ids every panel of the room holds (or will once what is queued for it is
        # out): the table as it was at the last redraw, and every schema a description
        # change carried since. A redraw's snapshot leaves these out.
        self._shown = frozenset(room.store.schemas)
        self._unsubscribe = room.store.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if self.fanout is not None:
            self.room.counters.changes += 1
            event = self.fanout.broadcast("change", change.to_dict())
            if event is not None:
                self._recent.add(change, event)
        if change.schemas:
            self._shown |= change.schemas.keys()

    # ---- a reload changed the room (hub/reload.py) -----------------------------------

    def redraw(self) -> None:
        """Send every panel a fresh snapshot (same epoch and seq): the device list changed.

        The snapshot leaves out the schemas every panel already holds (`_shown`): only
        those of devices added since are in it. A panel that lacks one anyway (its cache
        was lost) asks for a snapshot with all of them (`sync` naming none).
        """
        self.send_snapshot(self._shown)
        self._shown = frozenset(self.room.store.schemas)

    def send_snapshot(self, held: Collection[str] = ()) -> None:
        """Send every panel a snapshot of the room as it is, without the schemas in `held`."""
        if self.fanout is not None and len(self.fanout):
            snapshot = self.room.store.snapshot_json(held)
            self.fanout.deliver(self.fanout.raw_event("snapshot", snapshot))

    async def send_off(self, code: str, message: str, sids: list[str] | None = None) -> None:
        """Tell panels why (`closing` `{code, message}`), then disconnect them; all by default."""
        sids = list(self._panels) if sids is None else sids
        if self.fanout is not None:
            for sid in sids:
                self.fanout.send(sid, "closing", {"code": code, "message": message})
        await asyncio.gather(*(self._hang_up(sid) for sid in sids))

    async def revoke(self) -> None:
        """Disconnect panels whose token no longer opens the room (its tokens changed)."""
        gone = [sid for sid, token in self._panels.items() if not self.room.authorized(token)]
        if gone:
            log.info("%s: %d panels' token no longer valid", self.namespace, len(gone))
            await self.send_off("unauthorized", "the panel token was withdrawn", gone)

    async def _hang_up(self, sid: str) -> None:
        """Disconnect a panel, waiting the few loop turns until Socket.IO has it connected."""
        manager = self.server.manager
        for _ in range(100):
            if manager.is_connected(sid, self.namespace):
                await self.server.disconnect(sid, namespace=self.namespace)
                return
            if sid not in self._panels:
                return
            await asyncio.sleep(0)

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
        if self.removed:
            raise socketio.exceptions.ConnectionRefusedError(
                "room_removed", {"code": "room_removed", "message": f"no room {room.id!r}"}
            )
        if not room.authorized(auth.get("token")):
            log.info("%s: refused a panel: bad or missing token", self.namespace)
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized",
                {"code": "unauthorized", "message": f"room {room.id!r} needs a valid panel token"},
            )
        assert self.fanout is not None
        resume = auth.get("resume")
        if isinstance(resume, dict):
            behind = room.store.catch_up(resume.get("epoch"), resume.get("seq"))
            if behind is not None:
                await behind
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        # Nothing awaits from here on: the panel joins the fan-out at the exact seq
        # its snapshot or replay ends with.
        changes = None
        if isinstance(resume, dict):
            changes = room.store.since(resume.get("epoch"), resume.get("seq"))
        fanout = self.fanout
        if changes is None:
            held = held_ids(auth.get("schemas"))
            first = [fanout.raw_event("snapshot", room.store.snapshot_json(held))]
            room.counters.snapshots += 1
        else:
            first = [self._change_event(c) for c in changes]
            room.counters.resumed += 1
        if isinstance(resume, dict):
            room.counters.resumes["snapshot" if changes is None else "replay"] += 1
        fanout.join(sid, eio_sid, first)
        self._panels[sid] = auth.get("token")
        room.counters.panels = len(self._panels)
        room.counters.joined += 1
        log.debug(
            "%s: panel %s joined (%s)",
            self.namespace,
            sid,
            "snapshot" if changes is None else f"replayed {len(changes)}",
        )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.fanout is not None:
            self.fanout.leave(sid)
        if sid in self._panels:
            del self._panels[sid]
            self.room.counters.left += 1
        self.room.counters.panels = len(self._panels)

    async def on_sync(self, sid: str, *args: Any) -> Reply | RawJSON:
        """`{"epoch", "seq", "schemas"?}` → the missed changes, or a snapshot when they are gone.

        The snapshot leaves out the action schemas whose ids `schemas` lists. Both answers
        are sent as encoded already, not built and encoded again: the snapshot as
        `snapshot_json` has it (each device's state once per change of it), the changes
        as their `change` events were (`RecentEvents`).
        """
        data = args[0] if len(args) == 1 else None
        if not isinstance(data, dict):
            return error_reply(ErrorCode.INVALID_ARGS, "sync takes {epoch, seq}")
        behind = self.room.store.catch_up(data.get("epoch"), data.get("seq"))
        if behind is not None:
            await behind
        changes = self.room.store.since(data.get("epoch"), data.get("seq"))
        self.room.counters.resumes["snapshot" if changes is None else "replay"] += 1
        if changes is None:
            snapshot = self.room.store.snapshot_json(held_ids(data.get("schemas")))
            return RawJSON(f'{{"snapshot":{snapshot}}}')
        texts = ",".join(self._change_event(c).data_json for c in changes)
        return RawJSON(f'{{"changes":[{texts}]}}')

    def _change_event(self, change: Change) -> Event:
        """`change` as its `change` event was sent to the panels, or encoded now if it is
        no longer among the recent ones (or was sent to nobody)."""
        assert self.fanout is not None
        return self._recent.get(change) or self.fanout.event("change", change.to_dict())

    async def on_command(self, sid: str, *args: Any) -> Reply:
        """`{"device", "action", "args"}` → `{"ok": true, "result"}` or an error."""
        data = args[0] if len(args) == 1 else None
        return await self.room.command(data, self.namespace)
