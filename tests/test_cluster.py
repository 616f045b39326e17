"""Scale-out: several `avhub run` processes share one building over a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from simulators.pjlink import PjlinkSimulator
from tests.cluster import (
    HubProcess,
    HubStarter,
    RedisServer,
    cluster_config,
    hub_processes,
    node_ids,
    owners,
    redis_server,
)
from tests.conftest import until
from tests.panel import Panel

__all__ = ["hub_processes", "redis_server"]  # fixtures

INPUTS = itertools.cycle(["11", "31", "32", "51"])


async def cluster_up(hubs: list[HubProcess], devices: int, timeout: float = 15) -> None:
    """Every device owned by one hub, spread evenly, and online in every hub's view."""

    async def ready() -> bool:
        owned = []
        for hub in hubs:
            health = await hub.health()
            owned.append(health["owned"])
            if health["online"] != devices or health["store"] != "ok":
                return False
        return sum(owned) == devices and max(owned) - min(owned) <= 1

    await until(ready, timeout=timeout, interval=0.1, message="every device owned and online")


def changes_of(panel: Panel) -> dict[int, Any]:
    """The change events a panel received, by seq (the same seq must mean the same change)."""
    return {c["seq"]: (c["epoch"], c["device"], c["state"]) for c in panel.received}


async def in_sync(panels: list[Panel], truth: dict[str, Any], timeout: float = 10) -> None:
    await until(
        lambda: all(p.in_sync and p.seq == truth["seq"] for p in panels),
        timeout=timeout,
        message=f"panels at seq {truth['seq']}",
    )
    for p in panels:
        assert p.epoch == truth["epoch"]
        assert p.devices == truth["devices"]
        assert p.violations == []


async def settled(hub: HubProcess, room: str = "lab") -> dict[str, Any]:
    """The room's snapshot once no change has come for a few polls."""
    last: dict[str, Any] = {"seq": -1}
    while True:
        snapshot = await hub.snapshot(room)
        if snapshot["seq"] == last["seq"]:
            return snapshot
        last = snapshot
        await asyncio.sleep(0.5)


async def test_three_hubs_share_one_order_and_commands_reach_the_owner(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(6)]
    devices = [f"proj{i}" for i in range(len(sims))]
    hubs = await hub_processes(cluster_config(redis_server.url, [s.port for s in sims]), 3)
    await cluster_up(hubs, len(sims))
    redis = redis_server.client()
    held = await owners(redis, "lab", devices)
    nodes = await node_ids(hubs)
    assert set(held.values()) == set(nodes), held  # spread over all three
    assert sorted(list(held.values()).count(n) for n in nodes) == [2, 2, 2], held
    panels = [Panel(h.url, "lab") for h in hubs]
    await asyncio.gather(*(p.connect() for p in panels))
    first = max(p.seq for p in panels)

    for _ in range(5):  # front-panel changes, polled by whichever hub owns each projector
        for sim in sims:
            sim.set_input(next(INPUTS))
        await asyncio.sleep(0.05)
    for hub, panel in zip(hubs, panels, strict=True):  # every node commands every device
        for device, sim in zip(devices, sims, strict=True):
            mute = not sim.audio_mute
            ack = await panel.command(device, "set_audio_mute", mute=mute)
            assert ack["ok"], (hub.name, device, ack)
            assert sim.audio_mute is mute
        refused = await panel.command("proj0", "warp", timeout=10)
        assert refused["error"]["code"] == "unknown_action"  # the owner's own error, relayed

    truth = await settled(hubs[0])
    await in_sync(panels, truth)
    assert all(p.snapshots == 1 for p in panels)
    # Every panel saw the same change under the same seq, and one epoch.
    seen = [changes_of(p) for p in panels]
    for seq in range(first + 1, truth["seq"] + 1):
        assert len({repr(s.get(seq)) for s in seen}) == 1, seq
        assert seen[0][seq][0] == truth["epoch"]
    await redis.aclose()
    for hub in hubs:
        await hub.stop()
