"""A test panel: a real python-socketio client that follows the panel algorithm of DESIGN.md §3."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio


class Deliveries:
    """What the hub sent one panel, per connection, in arrival order, and where it broke order.

    On each connection the hub sends a snapshot, or replays from the `resume` point, and then
    every change at seq + 1, + 2, ...: a change repeated, skipped or out of order, a change
    before any snapshot, or a second snapshot lands in `errors`.
    """

    def __init__(self) -> None:
        self.log: list[tuple[int, str, int]] = []  # (connection, "snapshot" or "change", seq)
        self.errors: list[str] = []
        self.connection = 0
        self._last: int | None = None  # the seq this connection has reached
        self._fresh = True  # nothing delivered on this connection yet

    def connecting(self, resume_seq: int | None) -> None:
        """A new connection, resuming after `resume_seq` (None: without `resume`)."""
        self.connection += 1
        self._last = resume_seq
        self._fresh = True

    def snapshot(self, seq: int) -> None:
        self.log.append((self.connection, "snapshot", seq))
        if not self._fresh:
            self.errors.append(f"connection {self.connection}: a second snapshot, at seq {seq}")
        self._last, self._fresh = seq, False

    def change(self, seq: int) -> None:
        self.log.append((self.connection, "change", seq))
        if self._last is None:
            self.errors.append(f"connection {self.connection}: change {seq} before a snapshot")
        elif seq != self._last + 1:
            self.errors.append(f"connection {self.connection}: change {seq} after {self._last}")
        self._last, self._fresh = seq, False


class Panel:
    """Keeps `(epoch, seq, state)`; loads snapshots; applies a change only at `seq == last + 1`.

    Early changes wait in a buffer; a gap or an unknown epoch triggers `sync`. On
    reconnect it sends `resume`. Every applied `(epoch, seq)` is remembered, so a
    change applied twice or out of order lands in `violations`; the algorithm hides
    a hub's repeated or reordered delivery, so `deliveries` records each one as it came.
    Action schemas are kept by id across reconnects and named in `auth.schemas` (unless
    `keep_schemas` is off), so snapshots send only the ones it lacks.
    """

    def __init__(
        self,
        url: str,
        room: str,
        token: str | None = None,
        resume: bool = True,
        keep_schemas: bool = True,
    ) -> None:
        self.url = url
        self.namespace = f"/rooms/{room}"
        self.token = token
        self.resume = resume
        self.keep_schemas = keep_schemas
        self.schemas: dict[str, Any] = {}  # action schema id → schema
        self.epoch: str | None = None
        self.seq = -1
        self.devices: dict[str, dict[str, Any]] = {}
        self.snapshot: dict[str, Any] | None = None
        self.snapshots = 0
        self.received: list[dict[str, Any]] = []  # every change event, as received
        self.applied: set[tuple[str, int]] = set()
        self.violations: list[str] = []  # must stay empty: a change applied twice or out of order
        self.deliveries = Deliveries()  # `deliveries.errors` must stay empty too
        self.connects = 0
        self.connect_error: Any = None
        self.closing: list[Any] = []  # `closing` events: why the hub is about to disconnect us
        self._early: dict[int, dict[str, Any]] = {}
        self._syncing = False
        self._sync_task: asyncio.Task[None] | None = None
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("snapshot", self._on_snapshot, namespace=self.namespace)
        self.sio.on("change", self._on_change, namespace=self.namespace)
        self.sio.on("connect_error", self._on_connect_error, namespace=self.namespace)
        self.sio.on("closing", self.closing.append, namespace=self.namespace)

    def _auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {}
        if self.token is not None:
            auth["token"] = self.token
        if self.resume and self.epoch is not None:
            auth["resume"] = {"epoch": self.epoch, "seq": self.seq}
        if self.keep_schemas and self.schemas:
            auth["schemas"] = sorted(self.schemas)
        return auth

    async def connect(self, timeout: float = 5.0) -> None:
        """Connect (resuming when there is something to resume); raises on refusal."""
        self.connect_error = None
        self.connects += 1
        auth = self._auth()
        self.deliveries.connecting(auth["resume"]["seq"] if "resume" in auth else None)
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=timeout,
        )

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def command(self, device: str, action: str, timeout: float = 10.0, **args: Any) -> Any:
        """Send a command and return its ack."""
        return await self.sio.call(
            "command",
            {"device": device, "action": action, "args": args},
            namespace=self.namespace,
            timeout=timeout,
        )

    async def call(self, event: str, data: Any, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def state(self, device: str) -> dict[str, Any]:
        return self.devices[device]["state"]

    def actions(self, device: str) -> dict[str, Any]:
        """The device's action name → schema, looked up by id (KeyError: never sent)."""
        refs: dict[str, str] = self.devices[device]["actions"]
        return {name: self.schemas[ref] for name, ref in refs.items()}

    @property
    def in_sync(self) -> bool:
        return self.epoch is not None and not self._early and not self._syncing

    # ---- the algorithm -----------------------------------------------------------

    def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        self.snapshots += 1
        self.deliveries.snapshot(data["seq"])
        self._load(data)

    def _load(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        self.schemas.update(snapshot["schemas"])
        self.epoch = snapshot["epoch"]
        self.seq = snapshot["seq"]
        self.devices = {k: {**v, "state": dict(v["state"])} for k, v in snapshot["devices"].items()}
        self._early = {s: c for s, c in self._early.items() if s > self.seq}
        self._drain()

    def _on_change(self, change: dict[str, Any]) -> None:
        self.received.append(change)
        self.deliveries.change(change["seq"])
        if change["epoch"] != self.epoch:
            self._start_sync()
            return
        seq = change["seq"]
        if seq <= self.seq:
            return  # already have it
        self._early[seq] = change
        self._drain()
        if self._early:
            self._start_sync()

    def _drain(self) -> None:
        for stale in [s for s in self._early if s <= self.seq]:
            del self._early[stale]
        while self.seq + 1 in self._early:
            self._apply(self._early.pop(self.seq + 1))

    def _apply(self, change: dict[str, Any]) -> None:
        key = (change["epoch"], change["seq"])
        if key in self.applied or change["seq"] != self.seq + 1:
            self.violations.append(f"bad apply of {key} at seq {self.seq}")
        self.applied.add(key)
        device = self.devices.get(change["device"])
        if device is not None:  # not in its snapshot (another hub's newer file): nothing to show
            device["state"].update(change["state"])
            if "actions" in change:  # a description change: the device's new action schemas
                self.schemas.update(change["schemas"])
                device["actions"] = change["actions"]
        self.seq = change["seq"]

    def _start_sync(self) -> None:
        if not self._syncing:
            self._syncing = True
            self._sync_task = asyncio.get_running_loop().create_task(self._sync())

    async def _sync(self) -> None:
        try:
            asked: dict[str, Any] = {"epoch": self.epoch, "seq": self.seq}
            if self.keep_schemas:
                asked["schemas"] = sorted(self.schemas)
            answer = await self.call("sync", asked)
            if "snapshot" in answer:
                self._load(answer["snapshot"])
            else:
                for change in answer["changes"]:
                    if change["seq"] == self.seq + 1 and change["epoch"] == self.epoch:
                        self._apply(change)
                self._drain()
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            pass  # disconnected meanwhile; the next connect resumes
        finally:
            self._syncing = False
        if self._early and self.sio.connected:
            self._start_sync()
