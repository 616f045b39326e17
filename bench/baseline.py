"""The baseline: a bare python-socketio `AsyncServer` on aiohttp, default settings.

`python -m bench.baseline --port P` serves the same namespaces (`/rooms/<id>`) and
sends the same payloads as the hub: on connect a snapshot (a template captured from
the hub's own snapshot of such a room: its devices, and the action schemas they
refer to when the hub sends them apart) or, for a resume it can serve, the missed
changes; then `change` events emitted with `await sio.emit(...)` to every panel of
the room. The change loop is the device process's (`bench.churn`), with each change
stamped just before its `emit` call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from collections import deque
from typing import Any

import socketio
from aiohttp import web

from bench import control
from bench.churn import Marks, churn
from bench.marks import errors_state

RING = 1000


class Room:
    """What the baseline keeps per room: seq and a ring of recent change payloads."""

    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self.namespace = f"/rooms/{room_id}"
        self.seq = 0
        self.ring: deque[dict[str, Any]] = deque(maxlen=RING)


class Baseline:
    """The server, its rooms, and the device list the change loop cycles over."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.rooms: dict[str, Room] = {}
        self.devices: list[tuple[Room, str]] = []
        self.template: dict[str, Any] = {}
        self.marks = Marks(0)
        self.sio: socketio.AsyncServer | None = None

    async def op_setup(
        self, rooms: list[str], devices: list[str], snapshot: dict[str, Any]
    ) -> dict[str, Any]:
        """Rooms, the device ids of each room, and the snapshot template (`devices`, ...)."""
        self.rooms = {r: Room(r) for r in rooms}
        self.devices = [(self.rooms[r], d) for r in rooms for d in devices]
        self.template = snapshot
        self.marks = Marks(len(self.devices))
        return {"devices": len(self.devices)}

    def snapshot(self, room: Room) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": room.seq,
            "room": {"id": room.room_id, "name": room.room_id},
            **self.template,
        }

    async def _emit(self, index: int, mark: int) -> float:
        """Emit one change to its room; returns the time just before the `emit` call."""
        room, device = self.devices[index]
        room.seq += 1
        emitted = time.time()
        change = {
            "epoch": self.epoch,
            "seq": room.seq,
            "device": device,
            "state": {"errors": errors_state(mark)},
            "ts": emitted,
        }
        room.ring.append(change)
        assert self.sio is not None
        await self.sio.emit("change", change, namespace=room.namespace)
        return emitted

    async def op_churn(
        self, rate: float, seconds: float, order: list[int] | None = None
    ) -> dict[str, Any]:
        order = order if order is not None else list(range(len(self.devices)))
        return await churn(self._emit, self.marks, order, rate, seconds)

    async def op_bump(self, targets: list[int]) -> dict[str, Any]:
        writes = []
        for index in targets:
            mark = self.marks.next(index)
            writes.append((index, mark, await self._emit(index, mark)))
        return {"writes": writes}

    async def greet(self, namespace: str, sid: str, resume: Any) -> None:
        """Snapshot, or the missed changes when `resume` is within the ring."""
        assert self.sio is not None
        room = self.rooms[namespace.rsplit("/", 1)[1]]
        if isinstance(resume, dict) and resume.get("epoch") == self.epoch:
            seq = resume.get("seq")
            if isinstance(seq, int) and room.ring and room.ring[0]["seq"] <= seq + 1:
                for change in room.ring:
                    if change["seq"] > seq:
                        await self.sio.emit("change", change, to=sid, namespace=namespace)
                return
        await self.sio.emit("snapshot", self.snapshot(room), to=sid, namespace=namespace)


async def main(port: int, rooms: int) -> None:
    baseline = Baseline(secrets.token_hex(8))
    sio = socketio.AsyncServer(
        async_mode="aiohttp", namespaces=[f"/rooms/r{i:03d}" for i in range(rooms)]
    )
    baseline.sio = sio

    async def connect(namespace: str, sid: str, environ: Any, auth: Any = None) -> None:
        resume = auth.get("resume") if isinstance(auth, dict) else None
        # Events for a client in its connect handler would go out before the CONNECT packet.
        sio.start_background_task(baseline.greet, namespace, sid, resume)

    sio.on("connect", connect, namespace="*")
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0]
    try:
        await control.serve(baseline, {"pid": os.getpid(), "url": f"http://127.0.0.1:{bound[1]}"})
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rooms", type=int, required=True, help="rooms r000 .. r<N-1>")
    args = parser.parse_args()
    control.setup_logging()
    asyncio.run(main(args.port, args.rooms))
