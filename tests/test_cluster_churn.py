"""The randomized reconnect test of tests/test_panel_churn.py across three hubs on one Redis.

Panels hop between hub processes at random (resuming, or now and then fresh) while the
projectors' state churns; at the end every panel holds exactly the room's state, with
no change lost and none applied twice.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from simulators.pjlink import PjlinkSimulator
from tests.cluster import (
    HubProcess,
    HubStarter,
    RedisServer,
    cluster_config,
    hub_processes,
    redis_server,
)
from tests.panel import Panel
from tests.test_cluster import cluster_up, in_sync, settled

__all__ = ["hub_processes", "redis_server"]  # fixtures

PANELS = 6
STEPS = 25


async def churn(sims: list[PjlinkSimulator], rng: random.Random, stop: asyncio.Event) -> int:
    """Front-panel changes on the simulators, as fast as the hubs poll them."""
    count = 0
    while not stop.is_set():
        sim = rng.choice(sims)
        pick = rng.random()
        if pick < 0.5:
            sim.set_input(rng.choice(["11", "31", "32", "51"]))
        elif pick < 0.8:
            sim.set_mutes(video=rng.random() < 0.5, audio=rng.random() < 0.5)
        else:
            sim.set_errors("".join(rng.choice("012") for _ in range(6)))
        count += 1
        await asyncio.sleep(rng.uniform(0, 0.01))
    return count


async def hop(panel: Panel, hubs: list[HubProcess], rng: random.Random, devices: list[str]) -> None:
    """Disconnect and reconnect to another hub (resuming, or fresh), sync, send commands."""
    for _ in range(STEPS):
        await asyncio.sleep(rng.uniform(0, 0.05))
        pick = rng.random()
        if pick < 0.4 and panel.sio.connected:
            await panel.disconnect()
            await asyncio.sleep(rng.uniform(0, 0.2))
            panel.url = rng.choice([h.url for h in hubs if h.url != panel.url])
            panel.resume = rng.random() < 0.8
            await panel.connect()
        elif pick < 0.6 and panel.sio.connected:
            panel._start_sync()
        elif pick < 0.8 and panel.sio.connected:
            ack = await panel.command(
                rng.choice(devices), "set_audio_mute", mute=rng.random() < 0.5
            )
            assert ack["ok"], ack
        elif not panel.sio.connected:
            await panel.connect()
    panel.resume = True


async def test_panels_hopping_between_three_hubs_under_churn_end_in_exact_sync(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    seed = int(os.environ.get("AVHUB_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(3)]
    devices = [f"proj{i}" for i in range(len(sims))]
    text = cluster_config(redis_server.url, [s.port for s in sims], replay_size=40)
    hubs = await hub_processes(text, 3)
    await cluster_up(hubs, len(sims))
    crowd = [Panel(hubs[i % 3].url, "lab") for i in range(PANELS)]
    await asyncio.gather(*(p.connect() for p in crowd))
    stop = asyncio.Event()
    changing = asyncio.create_task(churn(sims, rng, stop))
    await asyncio.gather(*(hop(p, hubs, random.Random(rng.random()), devices) for p in crowd))
    stop.set()
    changes = await changing
    for p in crowd:
        if not p.sio.connected:
            await p.connect()
    truth = await settled(hubs[0])
    await in_sync(crowd, truth)  # same epoch, seq and state; nothing applied twice
    for hub in hubs[1:]:
        assert await hub.snapshot("lab") == truth, f"seed {seed}"
    connects = sum(p.connects for p in crowd)
    snapshots = sum(p.snapshots for p in crowd)
    assert changes > 200 and truth["seq"] > 100, (changes, truth["seq"])
    # Both resync paths ran across hubs: some reconnects were replays, some snapshots.
    assert PANELS < snapshots < connects, (snapshots, connects, f"seed {seed}")
    for hub in hubs:
        await hub.stop()
