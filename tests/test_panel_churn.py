"""Randomized: panels come and go while device state churns; every panel ends exactly in sync."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from typing import Any

from hub.app import Hub
from tests.helpers import until
from tests.panel import Panel

PANELS = 6
STEPS = 30


def churn_config(ports: list[int]) -> dict[str, Any]:
    devices = {
        f"proj{i}": {
            "driver": "pjlink",
            "transport": f"tcp://127.0.0.1:{port}",
            "poll_interval": 0.03,
            "lamp_interval": 0.05,
            "timeout": 0.5,
        }
        for i, port in enumerate(ports)
    }
    return {"hub": {"replay_size": 150}, "rooms": {"lab": {"devices": devices}}}


async def churn_devices(hub: Hub, sims: list[Any], rng: random.Random, stop: asyncio.Event) -> None:
    """Front-panel changes on the simulators plus direct commits: hundreds of changes a second."""
    room = hub.rooms["lab"].store
    count = 0
    while not stop.is_set():
        sim = rng.choice(sims)
        pick = rng.random()
        if pick < 0.3:
            sim.set_input(rng.choice(["11", "31", "32", "51"]))
        elif pick < 0.5:
            sim.set_mutes(video=rng.random() < 0.5, audio=rng.random() < 0.5)
        elif pick < 0.6:
            sim.set_errors("".join(rng.choice("012") for _ in range(6)))
        elif pick < 0.7:
            sim.set_lamp_hours(rng.randrange(10_000))
        else:
            room.commit(f"proj{rng.randrange(len(sims))}", {"churn": count})
        count += 1
        await asyncio.sleep(rng.uniform(0, 0.004))


async def after_changes(room: Any, count: int) -> None:
    """Wait until the room has committed `count` more changes."""
    target = room.seq + count
    await until(lambda: room.seq >= target, timeout=30, message=f"room seq {target}")


async def wander(panel: Panel, rng: random.Random, devices: list[str], room: Any) -> None:
    """Disconnect, resume, reconnect fresh, sync and send commands at random, paced by the
    room's changes rather than the clock: a loaded machine makes it slower, not different."""
    for _ in range(STEPS):
        await after_changes(room, rng.randrange(0, 8))
        pick = rng.random()
        if pick < 0.35 and panel.sio.connected:
            await panel.disconnect()
            await after_changes(room, rng.randrange(0, 50))
            panel.resume = rng.random() < 0.8  # now and then a panel comes back without resume
            await panel.connect()
        elif pick < 0.55 and panel.sio.connected:
            panel._start_sync()  # an extra sync at a random moment must not hurt
        elif pick < 0.75 and panel.sio.connected:
            mute = rng.random() < 0.5
            await panel.command(rng.choice(devices), "set_audio_mute", mute=mute)
        elif not panel.sio.connected:
            await panel.connect()
    panel.resume = True


async def test_random_reconnects_under_churn_end_in_exact_sync(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    seed = int(os.environ.get("AVHUB_TEST_SEED", random.randrange(1 << 30)))
    print(f"AVHUB_TEST_SEED={seed} repeats this run")  # shown when the test fails
    rng = random.Random(seed)
    sims = [await pjlink_sims(power="on") for _ in range(2)]
    hub: Hub = await hub_factory(churn_config([s.port for s in sims]))
    room = hub.rooms["lab"].store
    await until(lambda: all(d.online for d in hub.rooms["lab"].drivers.values()))
    crowd: list[Panel] = [panels(hub, "lab") for _ in range(PANELS)]
    await asyncio.gather(*(p.connect() for p in crowd))
    stop = asyncio.Event()
    churn = asyncio.create_task(churn_devices(hub, sims, rng, stop))
    devices = list(hub.rooms["lab"].drivers)
    try:
        await asyncio.gather(
            *(wander(p, random.Random(rng.random()), devices, room) for p in crowd)
        )
    finally:
        stop.set()
        await churn
    # Let the last polls land, then every panel must hold exactly the store's state.
    for p in crowd:
        if not p.sio.connected:
            await p.connect()
    settled = -1
    while settled != room.seq:
        settled = room.seq
        await asyncio.sleep(0.2)
    await until(lambda: all(p.seq == room.seq and p.in_sync for p in crowd), timeout=10)
    truth = room.snapshot()
    for p in crowd:
        assert p.epoch == truth["epoch"]
        assert p.devices == truth["devices"], f"seed {seed}"
        assert p.violations == [], f"seed {seed}: {p.violations}"
        assert p.deliveries.errors == [], f"seed {seed}: {p.deliveries.errors}"
    connects = sum(p.connects for p in crowd)
    snapshots = sum(p.snapshots for p in crowd)
    # Both kinds of churn reached the panels: front-panel changes (through polls) and commits.
    kinds = Counter("churn" in c["state"] for p in crowd for c in p.received)
    assert kinds[True] > 20 and kinds[False] > 20, (kinds, f"seed {seed}")
    # Both resync paths really ran: some reconnects were replays, some got snapshots.
    assert PANELS < snapshots < connects, (snapshots, connects, f"seed {seed}")
