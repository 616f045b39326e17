"""`/metrics`: the hub's live objects read at scrape time into a per-hub Prometheus registry.

Nothing on the hot path touches prometheus-client: drivers count in their `DeviceStats`
(drivers/stats.py), rooms in their `RoomCounters`, and `HubCollector` turns what it finds
in `hub.rooms` at each scrape into metric families, so rooms and devices added or removed
by a reload appear and disappear by themselves. One registry per `Hub`: several hubs in
one process (the tests) do not share series.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from drivers.errors import ErrorCode
from drivers.stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.cluster.node import ClusterNode

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
RESULTS = ("ok", *(code.value for code in ErrorCode))
DEVICE = ("room", "device", "driver")

__all__ = ["CONTENT_TYPE", "HubCollector", "HubMetrics", "ReloadCounts"]


class ReloadCounts:
    """Reloads of the deployment file by outcome: `ok`, `invalid` (problems), `failed`."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = {"ok": 0, "invalid": 0, "failed": 0}


class HubMetrics:
    """The hub's registry: `HubCollector` plus the library's process, platform and GC metrics."""

    def __init__(self, hub: Hub) -> None:
        self.reloads = ReloadCounts()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HubCollector(hub, self.reloads))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text format (0.0.4)."""
        return generate_latest(self.registry)


class HubCollector:
    """Rooms, devices, panels, commands and reloads of one hub, read when scraped."""

    def __init__(self, hub: Hub, reloads: ReloadCounts) -> None:
        self.hub = hub
        self.reloads = reloads

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        yield from self._hub_families()
        yield from self._room_families()
        yield from _device_families(
            (room_id, device_id, driver, room.device_online(device_id))
            for room_id, room in hub.rooms.items()
            for device_id, driver in room.drivers.items()
        )
        if hub.cluster is not None:
            yield from _cluster_families(hub.cluster)

    def _hub_families(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("avhub_rooms", "Rooms in the configuration.", len(self.hub.rooms))
        reloads = CounterMetricFamily(
            "avhub_reloads", "Reloads of the deployment file by outcome.", labels=["result"]
        )
        for result, count in self.reloads.counts.items():
            reloads.add_metric([result], count)
        yield reloads
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped from outside the loop (a test's direct call)
            tasks = 0
        yield GaugeMetricFamily(
            "avhub_asyncio_tasks", "Tasks alive in the hub's event loop.", tasks
        )
        heap = self.hub.heap
        if heap is not None:
            yield GaugeMetricFamily(
                "avhub_gc_frozen_objects",
                "Objects the last settle (start, sweep, reload) froze out of full collections.",
                heap.frozen,
            )
            yield CounterMetricFamily(
                "avhub_gc_sweeps", "Sweeps of frozen objects after panels left.", heap.sweeps
            )

    def _room_families(self) -> Iterator[Metric]:
        devices = GaugeMetricFamily(
            "avhub_devices",
            "Devices per room by status (online/offline).",
            labels=["room", "status"],
        )
        panels = GaugeMetricFamily(
            "avhub_panels_connected", "Socket.IO panels connected per room.", labels=["room"]
        )
        seq = GaugeMetricFamily("avhub_room_seq", "The room's current seq.", labels=["room"])
        changes = CounterMetricFamily(
            "avhub_changes", "State changes published to the room's panels.", labels=["room"]
        )
        resumes = CounterMetricFamily(
            "avhub_resumes",
            "Panels catching up (connect with resume, or sync) by how they were served: "
            "replay of the missed changes or a whole snapshot.",
            labels=["room", "served"],
        )
        commands = CounterMetricFamily(
            "avhub_commands",
            "Commands per room (Socket.IO and HTTP) by result: ok or the error code.",
            labels=["room", "result"],
        )
        for room_id, room in self.hub.rooms.items():
            online = room.online()
            devices.add_metric([room_id, "online"], online)
            devices.add_metric([room_id, "offline"], len(room.drivers) - online)
            counters = room.counters
            panels.add_metric([room_id], counters.panels)
            seq.add_metric([room_id], room.store.seq)
            changes.add_metric([room_id], counters.changes)
            for served in ("replay", "snapshot"):
                resumes.add_metric([room_id, served], counters.resumes[served])
            for result in RESULTS:
                commands.add_metric([room_id, result], counters.commands[result])
        yield from (devices, panels, seq, changes, resumes, commands)


def _device_families(devices: Iterable[tuple[str, str, Any, bool]]) -> Iterator[Metric]:
    """Per device (labels room, device, driver): online, transitions, latency, faults, queue.

    With `store: redis://` a device is polled by its owner: `online` is the room's (as
    the owner committed it), the other counts are this hub's while it owned the device.
    """
    online = GaugeMetricFamily(
        "avhub_device_online", "1 while the device is online.", labels=DEVICE
    )
    offline = CounterMetricFamily(
        "avhub_device_offline_transitions",
        "Times the device went offline, by offline reason.",
        labels=[*DEVICE, "reason"],
    )
    latency = HistogramMetricFamily(
        "avhub_device_request_seconds",
        "Time from sending a request to the device's reply (answered requests).",
        labels=DEVICE,
    )
    timeouts = CounterMetricFamily(
        "avhub_device_timeouts", "Requests the device did not answer in time.", labels=DEVICE
    )
    retries = CounterMetricFamily(
        "avhub_device_retries",
        "Requests tried again after a timeout or a lost connection.",
        labels=DEVICE,
    )
    reconnects = CounterMetricFamily(
        "avhub_device_reconnects", "Connections opened after the first one.", labels=DEVICE
    )
    queue = GaugeMetricFamily(
        "avhub_device_queue_depth", "Work waiting for the device (commands, polls).", labels=DEVICE
    )
    commands = CounterMetricFamily(
        "avhub_device_commands", "Commands for the device by result.", labels=[*DEVICE, "result"]
    )
    for room_id, device_id, driver, is_online in devices:
        labels = [room_id, device_id, driver.config.driver]
        stats = driver.stats
        online.add_metric(labels, 1 if is_online else 0)
        for reason, count in stats.offline.items():
            offline.add_metric([*labels, reason], count)
        latency.add_metric(labels, _cumulative(stats.buckets), stats.latency_sum)
        timeouts.add_metric(labels, stats.timeouts)
        retries.add_metric(labels, stats.retries)
        reconnects.add_metric(labels, stats.reconnects)
        queue.add_metric(labels, driver.queued)
        for result, count in stats.commands.items():
            commands.add_metric([*labels, result], count)
    yield from (online, offline, latency, timeouts, retries, reconnects, queue, commands)


def _cluster_families(node: ClusterNode) -> Iterator[Metric]:
    """With `store: redis://`: whether Redis answers, live hubs, what this hub owns."""
    yield GaugeMetricFamily(
        "avhub_store_available", "1 while the hub reaches Redis (hub.store).", int(node.available)
    )
    yield GaugeMetricFamily(
        "avhub_cluster_hubs",
        "Hubs live in the cluster, as of this hub's last lease tick.",
        len(node.ownership.live),
    )
    owned = GaugeMetricFamily(
        "avhub_cluster_owned_devices",
        "Devices of the room this hub owns (runs), the room device included.",
        labels=["room"],
    )
    counts = Counter(room_id for room_id, _ in node.ownership.owned())
    refused = CounterMetricFamily(
        "avhub_store_refused_changes",
        "Changes not committed: of a device not owned here (a lost lease, a notification "
        "that reached this hub) or refused by Redis (a lost lease, an ended epoch).",
        labels=["room"],
    )
    for room_id, store in node.stores.items():
        owned.add_metric([room_id], counts[room_id])
        refused.add_metric([room_id], store.refused)
    yield from (owned, refused)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts → Prometheus's cumulative `le` buckets, ending with +Inf."""
    out, total = [], 0
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), buckets, strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
    return out
