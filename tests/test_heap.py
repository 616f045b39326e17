"""hub/heap.py with a real hub and real Socket.IO panels: what lives long is frozen out of
full collections, and what a leaving panel or a reload drops is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.app import Hub
from hub.automation.clock import ManualClock
from hub.heap import Heap
from hub.reload import Reloader
from tests.helpers import until
from tests.panel import Panel

HubFactory = Callable[..., Awaitable[Hub]]


def deployment(*devices: str) -> dict[str, Any]:
    """One room of PJLink projectors that never answer (nothing listens on port 9)."""
    device = {"driver": "pjlink", "transport": "tcp://127.0.0.1:9", "reconnect_min": 5}
    return {"rooms": {"lobby": {"devices": {d: dict(device) for d in devices}}}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def heap(clock: ManualClock) -> Iterator[Heap]:
    """A heap on the test's clock; the collector is given everything back after the test."""
    try:
        yield Heap(sweep_after=3, sweep_every=60.0, clock=clock.time)
    finally:
        gc.unfreeze()


def panel_websockets() -> list[weakref.ref[Any]]:
    """Weak references to the hub's side of its panels' WebSockets: the door's streams
    (hub/door.py), or the WebSocket drivers of those aiohttp serves (hub/fanout.py).
    Frozen objects are not listed: call before a freeze."""
    kinds = ("PanelStream", "PanelWebSocket")
    return [weakref.ref(o) for o in gc.get_objects() if type(o).__name__ in kinds]


class Leftover:
    """Something a panel leaves behind in a reference cycle, which only the cycle
    collector frees (python-engineio's own WebSocket handler left its tasks, request and
    driver so; hub/fanout.py's leaves nothing, see the last test here)."""

    def __init__(self) -> None:
        self.me = self


async def test_joined_panels_are_frozen_and_collected_after_they_leave(
    hub_factory: HubFactory, panels: Callable[..., Panel], heap: Heap
) -> None:
    hub = await hub_factory(deployment("proj"))
    room = hub.rooms["lobby"]
    heap.settle()
    assert heap.step(hub.rooms.values()) is None  # nobody joined: nothing to do
    joined = [panels(hub, "lobby") for _ in range(3)]
    for panel in joined:
        await panel.connect()
    await until(lambda: all(p.in_sync for p in joined), message="panels in sync")
    kept = [Leftover() for _ in joined]
    leftovers = [weakref.ref(o) for o in kept]
    before = gc.get_freeze_count()
    assert heap.step(hub.rooms.values()) == "froze"
    assert gc.get_freeze_count() > before + 3 * 50  # each panel's connection, now frozen
    await joined[0].disconnect()
    await until(lambda: len(hub.sio.eio.sockets) == 2, message="one panel gone")
    del kept[0]
    gc.collect()
    # Frozen, what the leaving panel left in a cycle outlives a full collection: only a
    # sweep gives it back.
    assert all(ref() is not None for ref in leftovers)
    assert heap.step(hub.rooms.values()) is None  # one of three left: no sweep yet
    for panel in joined[1:]:
        await panel.disconnect()
    kept.clear()
    await until(lambda: not hub.sio.eio.sockets, message="all panels gone")
    assert room.counters.left == 3
    assert heap.step(hub.rooms.values()) == "swept"
    assert [ref() for ref in leftovers] == [None, None, None]
    assert heap.sweeps == 1


async def test_a_panel_that_left_long_ago_is_swept_even_alone(
    hub_factory: HubFactory, panels: Callable[..., Panel], heap: Heap, clock: ManualClock
) -> None:
    hub = await hub_factory(deployment("proj"))
    heap.settle()
    panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.in_sync, message="panel in sync")
    kept = [Leftover()]
    leftovers = [weakref.ref(kept[0])]
    assert heap.step(hub.rooms.values()) == "froze"
    await panel.disconnect()
    kept.clear()
    await until(lambda: not hub.sio.eio.sockets, message="panel gone")
    assert heap.step(hub.rooms.values()) is None  # 1 < sweep_after: it waits
    await clock.advance(59.0)
    assert heap.step(hub.rooms.values()) is None
    await clock.advance(1.0)
    assert heap.step(hub.rooms.values()) == "swept"
    assert leftovers[0]() is None


async def test_a_reload_thaws_so_removed_devices_are_collected(
    hub_factory: HubFactory, heap: Heap, tmp_path: Path
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(deployment("left", "right")))
    hub = await hub_factory(deployment("left", "right"))
    reloader = Reloader(hub, path, heap=heap)
    removed = weakref.ref(hub.rooms["lobby"].drivers["right"])
    heap.settle()
    path.write_text(yaml.safe_dump(deployment("left")))
    outcome = await reloader.reload()
    assert outcome.ok, outcome
    assert removed() is None  # collected: without the thaw it would stay frozen
    assert heap.frozen > 1000 and gc.get_freeze_count() > 1000  # settled again after it


async def test_without_a_heap_nothing_is_frozen(hub_factory: HubFactory) -> None:
    """Hubs inside another program (here, the tests) leave the collector alone."""
    await hub_factory(deployment("proj"))
    assert gc.get_freeze_count() == 0


async def test_a_leaving_panels_websocket_is_freed_at_once_frozen_or_not(
    hub_factory: HubFactory, panels: Callable[..., Panel], heap: Heap
) -> None:
    """The hub's side of a panel's WebSocket (the door's stream with aiohttp's reader and
    queue, and its tasks) is in no reference cycle once the panel leaves: freed as it goes, with no collection and
    no sweep, although it was frozen."""
    hub = await hub_factory(deployment("proj"))
    heap.settle()
    panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.in_sync, message="panel in sync")
    [websocket] = panel_websockets()
    assert heap.step(hub.rooms.values()) == "froze"
    gc.disable()  # no collection of any generation from here on
    try:
        await panel.disconnect()
        await until(lambda: websocket() is None, message="the panel's WebSocket freed")
    finally:
        gc.enable()
    assert heap.sweeps == 0
