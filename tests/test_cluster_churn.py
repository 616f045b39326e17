"""The randomized reconnect test of tests/test_panel_churn.py across three hubs on one Redis.

Panels hop between hub processes at random (resuming, or now and then fresh) while the
projectors' state churns; at the end every panel holds exactly the room's state, with
no change lost and none applied twice.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable
from typing import Any

from redis.asyncio import Redis

from hub.cluster.scripts import RoomKeys
from simulators.pjlink import PjlinkSimulator
from tests.cluster import (
    HubProcess,
    HubStarter,
    RedisServer,
    cluster_config,
    hub_processes,
    redis_server,
)
from tests.helpers import until
from tests.panel import Panel
from tests.test_cluster import cluster_up, in_sync, settled

__all__ = ["hub_processes", "redis_server"]  # fixtures

PANELS = 6
STEPS = 25


LAB = RoomKeys.of("lab")


async def churn(sims: list[PjlinkSimulator], rng: random.Random, stop: asyncio.Event) -> None:
    """Front-panel changes on the simulators, as fast as the hubs poll them."""
    while not stop.is_set():
        sim = rng.choice(sims)
        pick = rng.random()
        if pick < 0.5:
            sim.set_input(rng.choice(["11", "31", "32", "51"]))
        elif pick < 0.8:
            sim.set_mutes(video=rng.random() < 0.5, audio=rng.random() < 0.5)
        else:
            sim.set_errors("".join(rng.choice("012") for _ in range(6)))
        await asyncio.sleep(rng.uniform(0, 0.01))


async def after_changes(redis: Redis, count: int) -> None:
    """Wait until the room has committed `count` more changes (its seq in Redis)."""

    async def seq() -> int:
        return int(await redis.hget(LAB.meta, "seq") or 0)

    target = await seq() + count
    await until(lambda: _at_least(seq(), target), timeout=30, interval=0.05)


async def _at_least(value: Awaitable[int], target: int) -> bool:
    return await value >= target


async def hop(
    panel: Panel, hubs: list[HubProcess], rng: random.Random, devices: list[str], redis: Redis
) -> None:
    """Disconnect and reconnect to another hub (resuming, or fresh), sync, send commands,
    paced by the room's changes rather than the clock: a loaded machine makes it slower."""
    for _ in range(STEPS):
        await after_changes(redis, rng.randrange(0, 8))
        pick = rng.random()
        if pick < 0.4 and panel.sio.connected:
            await panel.disconnect()
            await after_changes(redis, rng.randrange(0, 50))  # the replay ring holds 40
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
    print(f"AVHUB_TEST_SEED={seed} repeats this run")  # shown when the test fails
    rng = random.Random(seed)
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(3)]
    devices = [f"proj{i}" for i in range(len(sims))]
    config = cluster_config(redis_server.url, [s.port for s in sims], replay_size=40)
    hubs = await hub_processes(config, 3)
    await cluster_up(hubs, len(sims))
    crowd = [Panel(hubs[i % 3].url, "lab") for i in range(PANELS)]
    await asyncio.gather(*(p.connect() for p in crowd))
    stop = asyncio.Event()
    changing = asyncio.create_task(churn(sims, rng, stop))
    redis = redis_server.client()
    try:
        await asyncio.gather(
            *(hop(p, hubs, random.Random(rng.random()), devices, redis) for p in crowd)
        )
    finally:
        stop.set()
        await changing
        await redis.aclose()
    for p in crowd:
        if not p.sio.connected:
            await p.connect()
    truth = await settled(hubs[0])
    await in_sync(crowd, truth)  # same epoch, seq and state; nothing applied twice
    for hub in hubs[1:]:
        assert await hub.snapshot("lab") == truth, f"seed {seed}"
    connects = sum(p.connects for p in crowd)
    snapshots = sum(p.snapshots for p in crowd)
    # Both kinds of change reached the panels: front-panel ones (polled) and commands.
    received = [c["state"] for p in crowd for c in p.received]
    inputs, mutes = (sum(key in state for state in received) for key in ("input", "audio_mute"))
    assert inputs > 20 and mutes > 5, (inputs, mutes, f"seed {seed}")
    # Both resync paths ran across hubs: some reconnects were replays, some snapshots.
    assert PANELS < snapshots < connects, (snapshots, connects, f"seed {seed}")
    for hub in hubs:
        await hub.stop()
