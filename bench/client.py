"""The panel-client process: many light panels, driven over JSON lines (see `bench.control`).

`python -m bench.client` holds up to thousands of Socket.IO panels on raw WebSockets
(`bench.wire`). Each panel follows the contiguous-seq rule of DESIGN.md §3 (apply a
change only at `seq == last + 1`, `sync` on a gap, resume on reconnect) and counts
what would be a violation; receipts of marked changes (`bench.marks`) are recorded
with `time.time()` taken as the message comes off the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import control
from bench.marks import mark_of
from bench.wire import EIO_PATH, WsClient, sio_call, sio_connect, split_ack, split_namespace

RECONNECT_DELAY = (0.05, 0.25)  # seconds, uniform: a panel's retry delay after losing the hub


class Receipts:
    """Marked changes as received: device key, mark, receive time (compact arrays)."""

    def __init__(self) -> None:
        self.on = False
        self.keys: dict[str, int] = {}
        self.key = array("i")
        self.mark = array("i")
        self.t = array("d")

    def clear(self) -> None:
        self.key, self.mark, self.t = array("i"), array("i"), array("d")

    def add(self, key: str, mark: int, t: float) -> None:
        index = self.keys.get(key)
        if index is None:
            index = self.keys[key] = len(self.keys)
        self.key.append(index)
        self.mark.append(mark)
        self.t.append(t)


class Panel:
    """One panel connection: `(epoch, seq)`, gap/duplicate counters, optional device state."""

    def __init__(self, client: Client, index: int, room: str, watch: bool) -> None:
        self.client = client
        self.index = index
        self.room = room
        self.ns = f"/rooms/{room}"
        self.watch = watch  # keeps device state (for online checks); others track seq only
        self.ws: WsClient | None = None
        self.epoch: str | None = None
        self.seq = -1
        self.snapshots = 0
        self.changes = 0
        self.gaps = 0
        self.duplicates = 0
        self.early = 0  # changes before the first snapshot (DESIGN §3: snapshot, then live)
        self.devices: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}  # action schemas by id, kept across reconnects
        self.unresolved = 0  # action schema ids a snapshot or change named but nobody sent
        self.snapshot_bytes = 0  # size of the last snapshot event's message
        self.auto_reconnect = False
        self.storm_epoch: str | None = None
        self.storm_synced: float | None = None
        self._connected: asyncio.Future[None] | None = None
        self._resume = True
        self._acks: dict[int, Callable[[Any], None]] = {}
        self._next_ack = 0
        self._syncing = False
        self._waiter: tuple[int, asyncio.Future[float]] | None = None

    @property
    def connected(self) -> bool:
        return self._connected is not None and self._connected.done() and self.ws is not None

    # ---- connection ------------------------------------------------------------------

    async def connect(self, resume: bool = True, timeout: float = 10.0) -> None:
        """Open the WebSocket and the room namespace; raises on refusal or timeout."""
        loop = asyncio.get_running_loop()
        self._resume = resume
        self._connected = loop.create_future()
        client = self.client
        ws: WsClient | None = None
        try:
            async with asyncio.timeout(timeout):
                _, ws = await loop.create_connection(
                    lambda: WsClient(client.host, client.port, EIO_PATH, self._on_text, self._lost),
                    client.host,
                    client.port,
                )
                self.ws = ws
                await ws.opened
                await self._connected
        except BaseException:
            if ws is not None:
                ws.close()
            self.ws = None
            raise

    def disconnect(self) -> None:
        self.auto_reconnect = False
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def _lost(self) -> None:
        self.ws = None
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(ConnectionResetError("closed before connect"))
            self._connected.exception()
        if self.auto_reconnect:
            asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        deadline = time.monotonic() + 60
        while self.auto_reconnect and self.ws is None and time.monotonic() < deadline:
            await asyncio.sleep(random.uniform(*RECONNECT_DELAY))
            try:
                await self.connect(resume=True)
                return
            except (OSError, TimeoutError):
                continue

    def _auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {}
        if self.client.token:
            auth["token"] = self.client.token
        if self._resume and self.epoch is not None:
            auth["resume"] = {"epoch": self.epoch, "seq": self.seq}
        if self.schemas:
            auth["schemas"] = list(self.schemas)
        return auth

    # ---- Engine.IO / Socket.IO -------------------------------------------------------

    def _on_text(self, text: str) -> None:
        received = time.time()
        kind = text[0]
        if kind == "4":
            sub = text[1]
            _, body = split_namespace(text)
            if sub == "2":
                name, data = json.loads(body)
                if name == "change":
                    self._on_change(data, received)
                elif name == "snapshot":
                    self.snapshot_bytes = len(text)
                    self._on_snapshot(data, received)
            elif sub == "3":
                ack_id, args = split_ack(body)
                callback = self._acks.pop(ack_id, None)
                if callback is not None:
                    callback(args[0] if args else None)
            elif sub == "0":
                if self._connected is not None and not self._connected.done():
                    self._connected.set_result(None)
            elif sub == "4" and self._connected is not None and not self._connected.done():
                self._connected.set_exception(ConnectionRefusedError(body))
                self._connected.exception()
        elif kind == "2":
            self.ws.send_text("3")  # type: ignore[union-attr]
        elif kind == "0":
            self.ws.send_text(sio_connect(self.ns, self._auth()))  # type: ignore[union-attr]
        elif kind == "1" and self.ws is not None:  # Engine.IO CLOSE: the server is going away
            self.ws.close()

    def _call(self, event: str, data: Any, callback: Callable[[Any], None]) -> None:
        if self.ws is None:
            return
        self._next_ack += 1
        self._acks[self._next_ack] = callback
        self.ws.send_text(sio_call(self.ns, self._next_ack, event, data))

    # ---- the panel algorithm ---------------------------------------------------------

    def _on_snapshot(self, data: dict[str, Any], received: float) -> None:
        self.snapshots += 1
        self.epoch, self.seq = data["epoch"], data["seq"]
        self.schemas.update(data.get("schemas") or {})
        for device in data["devices"].values():
            self._resolve(device.get("actions", {}))
        if self.watch:
            self.devices = {k: dict(v["state"]) for k, v in data["devices"].items()}
        if self.storm_epoch is not None and self.epoch != self.storm_epoch:
            self.storm_synced = self.storm_synced or received
            self.client.storm_progress.set()
        self._check_waiter(received)

    def _on_change(self, change: dict[str, Any], received: float) -> None:
        self.changes += 1
        if self.epoch is None:
            self.early += 1
        state = change["state"]
        if self.client.receipts.on and "errors" in state:
            self.client.receipts.add(
                f"{self.room}/{change['device']}", mark_of(state["errors"]), received
            )
        if change["epoch"] == self.epoch:
            seq = change["seq"]
            if seq == self.seq + 1:
                self._apply(change)
                self._check_waiter(received)
                return
            if seq <= self.seq:
                self.duplicates += 1
                return
        self.gaps += 1
        self._sync()

    def _resolve(self, actions: dict[str, Any]) -> dict[str, Any]:
        """Action name → schema, as a panel draws from (ids looked up; inline schemas kept)."""
        resolved = {}
        for name, schema in actions.items():
            if isinstance(schema, str):
                schema = self.schemas.get(schema)
                if schema is None:
                    self.unresolved += 1
            resolved[name] = schema
        return resolved

    def _apply(self, change: dict[str, Any]) -> None:
        self.seq = change["seq"]
        if "actions" in change:  # a device's action schemas changed
            self.schemas.update(change.get("schemas") or {})
            self._resolve(change["actions"])
        if self.watch:
            self.devices.setdefault(change["device"], {}).update(change["state"])

    def _sync(self) -> None:
        if self._syncing:
            return
        self._syncing = True

        def answered(answer: Any) -> None:
            self._syncing = False
            if isinstance(answer, dict):
                self._take_sync(answer)

        self._call("sync", {"epoch": self.epoch, "seq": self.seq}, answered)

    def _take_sync(self, answer: dict[str, Any]) -> str:
        """Take in a `sync` answer: a snapshot, or the changes (the next seq only); which."""
        if "snapshot" in answer:
            self._on_snapshot(answer["snapshot"], time.time())
            return "snapshot"
        for change in answer.get("changes", []):
            if change["epoch"] == self.epoch and change["seq"] == self.seq + 1:
                self._apply(change)
        self._check_waiter(time.time())
        return "replay"

    # ---- waiting for sync -------------------------------------------------------------

    def wait_seq(self, target: int) -> asyncio.Future[float]:
        """A future resolved with the receive time once `seq >= target`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiter = (target, future)
        self._check_waiter(time.time())
        return future

    def _check_waiter(self, received: float) -> None:
        if self._waiter is not None and self.seq >= self._waiter[0]:
            future = self._waiter[1]
            self._waiter = None
            if not future.done():
                future.set_result(received)


class Client:
    """The panels of one client process and the control operations on them."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.token: str | None = None
        self.panels: list[Panel] = []
        self.receipts = Receipts()
        self.storm_progress = asyncio.Event()

    async def op_connect(
        self,
        url: str,
        rooms: list[str],
        per_room: int,
        token: str | None = None,
        concurrency: int = 100,
        wait: float = 30.0,
    ) -> dict[str, Any]:
        """Add `per_room` panels to each room and connect them, `concurrency` at a time."""
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname or "127.0.0.1", parts.port or 80, token
        fresh = []
        for room in rooms:
            for i in range(per_room):
                panel = Panel(self, len(self.panels), room, watch=i == 0)
                self.panels.append(panel)
                fresh.append(panel)
        gate = asyncio.Semaphore(concurrency)
        failures: list[str] = []

        async def one(panel: Panel) -> None:
            async with gate:
                try:
                    await panel.connect(timeout=wait)
                except (OSError, TimeoutError) as err:
                    failures.append(f"{panel.room}: {type(err).__name__}: {err}")

        started = time.monotonic()
        await asyncio.gather(*(one(p) for p in fresh))
        seconds = time.monotonic() - started
        gc.collect()
        gc.freeze()  # the panels live all run: keep them out of collections (fewer pauses)
        return {
            "ids": [p.index for p in fresh],
            "failed": len(failures),
            "errors": failures[:5],
            "seconds": seconds,
        }

    async def op_status(self) -> dict[str, Any]:
        """Counts over all panels, and per room what its watcher panel knows."""
        online: dict[str, list[int]] = {}
        for panel in self.panels:
            if panel.watch:
                states = panel.devices.values()
                online[panel.room] = [sum(1 for s in states if s.get("online")), len(states)]
        return {
            "panels": len(self.panels),
            "connected": sum(p.connected for p in self.panels),
            "snapshot": sum(p.epoch is not None for p in self.panels),
            "changes": sum(p.changes for p in self.panels),
            "gaps": sum(p.gaps for p in self.panels),
            "duplicates": sum(p.duplicates for p in self.panels),
            "early": sum(p.early for p in self.panels),
            "unresolved": sum(p.unresolved for p in self.panels),
            "online": online,
            "seqs": {p.room: p.seq for p in self.panels if p.watch},
        }

    async def op_record(self, on: bool) -> dict[str, Any]:
        """Start (clearing earlier receipts) or stop recording marked changes."""
        if on:
            self.receipts.clear()
        self.receipts.on = on
        return {"receipts": len(self.receipts.t)}

    async def op_count(self) -> dict[str, Any]:
        return {"receipts": len(self.receipts.t)}

    async def op_dump(self, path: str) -> dict[str, Any]:
        """Write the receipts to `path` as JSON."""
        r = self.receipts
        keys = sorted(r.keys, key=r.keys.__getitem__)
        text = json.dumps(
            {"keys": keys, "key": r.key.tolist(), "mark": r.mark.tolist(), "t": r.t.tolist()}
        )
        await asyncio.to_thread(Path(path).write_text, text)
        return {"receipts": len(r.t)}

    async def op_disconnect(self, ids: list[int]) -> dict[str, Any]:
        for i in ids:
            self.panels[i].disconnect()
        await asyncio.sleep(0)
        return {}

    async def op_wait_seq(self, id: int, seq: int, wait: float = 10.0) -> dict[str, Any]:
        """Wait until panel `id` is at `seq` or later."""
        async with asyncio.timeout(wait):
            await self.panels[id].wait_seq(seq)
        return {"seq": self.panels[id].seq}

    async def op_reconnect(
        self, id: int, resume: bool, target: int, schemas: bool = True, wait: float = 10.0
    ) -> dict[str, Any]:
        """Reconnect panel `id`; seconds from opening the socket until it is connected to the
        room and holds `seq >= target`.

        Without `resume` the panel forgets its state first, so it takes a snapshot;
        without `schemas` it forgets the action schemas it keeps too.
        """
        panel = self.panels[id]
        if not resume:
            panel.epoch, panel.seq = None, -1
        if not schemas:
            panel.schemas.clear()
        snapshots = panel.snapshots
        started = time.time()
        async with asyncio.timeout(wait):
            waiting = panel.wait_seq(target) if resume else None
            await panel.connect(resume=resume, timeout=wait)
            connected = time.time()
            done = await (waiting if waiting is not None else panel.wait_seq(target))
        took = panel.snapshots > snapshots
        return {
            "seconds": max(done, connected) - started,
            "path": "snapshot" if took else "replay",
            "seq": panel.seq,
            "bytes": panel.snapshot_bytes if took else 0,
        }

    async def op_sync(self, id: int, behind: int | None, wait: float = 10.0) -> dict[str, Any]:
        """Panel `id` asks `sync` over its open connection for the last `behind` changes
        again, or (None) for a snapshot, naming the action schemas it keeps; seconds from
        sending until the answer is taken in, and what came back."""
        panel = self.panels[id]
        future: asyncio.Future[tuple[float, str, int]] = asyncio.get_running_loop().create_future()

        def answered(answer: Any) -> None:
            path = panel._take_sync(answer)
            future.set_result((time.time(), path, len(answer.get("changes", []))))

        data: dict[str, Any]
        if behind is None:
            data = {"epoch": None, "seq": 0, "schemas": list(panel.schemas)}
        else:
            data = {"epoch": panel.epoch, "seq": panel.seq - behind}
        started = time.time()
        panel._call("sync", data, answered)
        async with asyncio.timeout(wait):
            done, path, replayed = await future
        return {"seconds": done - started, "path": path, "replayed": replayed}

    async def op_snapshot(self, room: str, wait: float = 10.0) -> dict[str, Any]:
        """A fresh snapshot of `room` (a `sync` from an unknown epoch) and its size in bytes."""
        panel = next(p for p in self.panels if p.room == room and p.connected)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        panel._call("sync", {"epoch": None, "seq": 0}, future.set_result)
        async with asyncio.timeout(wait):
            answer = await future
        snapshot = answer["snapshot"]
        return {"snapshot": snapshot, "bytes": len(json.dumps(snapshot, separators=(",", ":")))}

    async def op_storm_arm(self) -> dict[str, Any]:
        """From now on panels reconnect by themselves; note the epoch they hold."""
        for panel in self.panels:
            panel.storm_epoch, panel.storm_synced = panel.epoch, None
            panel.auto_reconnect = True
        return {"armed": len(self.panels)}

    async def op_storm_report(self, wait: float) -> dict[str, Any]:
        """Wait until every panel holds a snapshot of a new epoch; their receive times."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while any(p.storm_synced is None for p in self.panels):
                    self.storm_progress.clear()
                    await self.storm_progress.wait()
        for panel in self.panels:
            panel.storm_epoch = None
        return {
            "synced": [p.storm_synced for p in self.panels if p.storm_synced is not None],
            "missing": sum(p.storm_synced is None for p in self.panels),
        }

    async def op_drop(self) -> dict[str, Any]:
        """Disconnect every panel and forget them."""
        for panel in self.panels:
            panel.disconnect()
        self.panels.clear()
        await asyncio.sleep(0.05)
        return {}


async def main() -> None:
    client = Client()
    try:
        await control.serve(client, {"pid": os.getpid()})
    finally:
        await client.op_drop()


if __name__ == "__main__":
    control.setup_logging()
    asyncio.run(main())
