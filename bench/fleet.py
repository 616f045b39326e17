"""The panel clients of a run: one or more `bench.client` processes, rooms split between them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bench.proc import Child, ChildError, Children
from bench.stacks import Layout


class Fleet:
    """Panels for every room of a layout, spread over `processes` client processes."""

    def __init__(self, children: Children, rundir: Path, processes: int = 1) -> None:
        self.children_ = children
        self.rundir = rundir
        self.processes = processes
        self.clients: list[Child] = []
        self.per_room = 0
        self._dumps = 0

    async def start(self) -> None:
        for i in range(self.processes):
            self.clients.append(await self.children_.python(f"client{i}", "bench.client"))

    @property
    def children(self) -> dict[str, Child]:
        return {c.name: c for c in self.clients}

    async def _all(self, op: str, **args: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(c.call(op, **args) for c in self.clients)))

    async def connect(self, url: str, layout: Layout, per_room: int, **kw: Any) -> dict[str, Any]:
        """`per_room` panels in every room; rooms are dealt to the client processes in turn."""
        self.per_room += per_room
        rooms = layout.room_ids
        replies = await asyncio.gather(
            *(
                c.call(
                    "connect", url=url, rooms=rooms[i :: len(self.clients)], per_room=per_room, **kw
                )
                for i, c in enumerate(self.clients)
            )
        )
        failed = sum(r["failed"] for r in replies)
        if failed:
            raise ChildError(f"{failed} panels could not connect: {replies[0]['errors']}")
        return {"seconds": max(r["seconds"] for r in replies)}

    async def status(self) -> dict[str, Any]:
        merged: dict[str, Any] = {"online": {}, "seqs": {}}
        for reply in await self._all("status"):
            for key in (
                "panels",
                "connected",
                "snapshot",
                "changes",
                "gaps",
                "duplicates",
                "early",
                "unresolved",
            ):
                merged[key] = merged.get(key, 0) + reply[key]
            merged["online"].update(reply["online"])
            merged["seqs"].update(reply["seqs"])
        return merged

    async def wait_online(self, layout: Layout, timeout: float = 120.0) -> None:
        """Until every device is online in the panels' view and the rooms stop changing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: dict[str, int] = {}
        stable_since = loop.time()
        while loop.time() < deadline:
            status = await self.status()
            online = status["online"]
            ready = len(online) == layout.rooms and all(
                on == layout.devices == total for on, total in online.values()
            )
            if status["seqs"] != last:
                last, stable_since = status["seqs"], loop.time()
            if (
                ready
                and status["snapshot"] == status["panels"]
                and loop.time() - stable_since > 1.0
            ):
                return
            await asyncio.sleep(0.2)
        raise ChildError(f"devices not all online after {timeout}s: {online}")

    async def record(self, on: bool) -> int:
        return sum(r["receipts"] for r in await self._all("record", on=on))

    async def drain(self, expected: int, timeout: float = 15.0) -> None:
        """Wait until `expected` receipts arrived, or none arrived for a second."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        count, since = -1, loop.time()
        while loop.time() < deadline:
            now = sum(r["receipts"] for r in await self._all("count"))
            if now >= expected:
                return
            if now != count:
                count, since = now, loop.time()
            elif loop.time() - since > 1.0:
                return
            await asyncio.sleep(0.05)

    async def collect(self) -> list[dict[str, Any]]:
        """Stop recording; every client's receipts."""
        await self.record(False)
        self._dumps += 1
        paths = [self.rundir / f"receipts-{c.name}-{self._dumps}.json" for c in self.clients]
        await asyncio.gather(
            *(c.call("dump", path=str(p)) for c, p in zip(self.clients, paths, strict=True))
        )
        dumps = []
        for path in paths:
            dumps.append(json.loads(path.read_text()))
            path.unlink()
        return dumps

    async def drop(self) -> None:
        await self._all("drop")
