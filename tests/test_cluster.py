"""Scale-out: several `avhub run` processes share one building over a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from typing import Any

from simulators.pjlink import PjlinkSimulator
from tests.cluster import (
    HubProcess,
    HubStarter,
    LinkCutter,
    RedisServer,
    cluster_config,
    hub_processes,
    node_ids,
    owners,
    redis_server,
)
from tests.helpers import until
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


async def flip_inputs(
    sims: list[PjlinkSimulator], stop: asyncio.Event, flipped: list[str] | None = None
) -> None:
    """Front-panel input changes on every projector until `stop`, each noted in `flipped`."""
    while not stop.is_set():
        for sim in sims:
            code = next(INPUTS)
            sim.set_input(code)
            if flipped is not None:
                flipped.append(code)
        await asyncio.sleep(0.03)


async def test_kill_9_of_a_hub_survivors_take_over_and_its_panels_resume_elsewhere(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    ttl = 1.5
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(6)]
    devices = [f"proj{i}" for i in range(len(sims))]
    hubs = await hub_processes(cluster_config(redis_server.url, [s.port for s in sims], ttl), 3)
    await cluster_up(hubs, len(sims))
    redis = redis_server.client()
    victim, survivors = hubs[0], hubs[1:]
    nodes = await node_ids(hubs)
    dead_node = next(n for n, h in nodes.items() if h is victim)
    orphans = [d for d, n in (await owners(redis, "lab", devices)).items() if n == dead_node]
    assert orphans
    panels = [Panel(h.url, "lab") for h in hubs for _ in range(2)]
    await asyncio.gather(*(p.connect() for p in panels))
    stop, flipped = asyncio.Event(), []
    flow = asyncio.create_task(flip_inputs(sims, stop, flipped))
    await until(lambda: len(flipped) >= 2 * len(sims), message="changes flowing")

    await victim.kill()
    killed = time.monotonic()
    # Commands through a survivor for the dead hub's devices wait for the takeover.
    acks = await asyncio.gather(
        *(panels[2].command(d, "set_audio_mute", mute=True, timeout=15) for d in orphans)
    )
    assert all(ack["ok"] for ack in acks), acks
    assert all(sims[devices.index(d)].audio_mute for d in orphans)

    async def taken_over() -> bool:
        held = await owners(redis, "lab", devices)
        return all(n is not None and n != dead_node for n in held.values())

    await until(taken_over, timeout=10, message="survivors to own every device")
    took = time.monotonic() - killed
    assert took < ttl * 1.2 + 1.0, took  # expiry, then the next tick of a survivor
    flowed = len(flipped)
    await until(lambda: len(flipped) >= flowed + 2 * len(sims), message="changes still flowing")
    stop.set()
    await flow

    dead_panels = panels[:2]
    await until(lambda: not any(p.sio.connected for p in dead_panels))
    for i, panel in enumerate(dead_panels):  # they reconnect to a survivor and resume
        panel.url = survivors[i % 2].url
        await panel.connect()
    for sim in sims:  # the orphans are polled again: their new input reaches every panel
        sim.set_input("32")
    truth = await settled(survivors[0])
    assert {d: s["state"]["input"] for d, s in truth["devices"].items()} == dict.fromkeys(
        devices, "HDMI 2"
    )  # code 32
    await in_sync(panels, truth)
    assert [p.snapshots for p in panels] == [1] * len(panels)  # resumed by replay
    await redis.aclose()
    for hub in survivors:
        await hub.stop()


async def test_rolling_restart_of_every_hub_costs_panels_a_replay_not_a_snapshot(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(4)]
    config = cluster_config(redis_server.url, [s.port for s in sims])
    hubs = await hub_processes(config, 3)
    await cluster_up(hubs, len(sims))
    panels = [Panel(hubs[i % 3].url, "lab") for i in range(6)]
    await asyncio.gather(*(p.connect() for p in panels))
    epoch = panels[0].epoch
    stop = asyncio.Event()
    flow = asyncio.create_task(flip_inputs(sims, stop))
    for round_ in range(3):  # restart each hub in turn; its panels move to the others
        old = hubs.pop(0)
        await old.stop()
        for i, panel in enumerate(panels):
            if panel.url == old.url:
                await until(lambda p=panel: not p.sio.connected)  # type: ignore[misc]
                panel.url = hubs[i % 2].url
                await panel.connect()
        (new,) = await hub_processes(config, 1, name=f"restarted{round_}-")
        hubs.append(new)
        await cluster_up(hubs, len(sims))
    stop.set()
    await flow
    truth = await settled(hubs[0])
    assert truth["epoch"] == epoch  # one epoch for the cluster, across every restart
    await in_sync(panels, truth)
    assert [p.snapshots for p in panels] == [1] * len(panels)
    assert sum(p.connects for p in panels) > len(panels)
    for hub in hubs:
        await hub.stop()


def store_events(panel: Panel) -> list[dict[str, Any]]:
    """Record the `store` events a panel gets (Redis gone, Redis back)."""
    events: list[dict[str, Any]] = []
    panel.sio.on("store", events.append, namespace=panel.namespace)
    return events


def input_of(panel: Panel, device: str) -> Any:
    return panel.devices.get(device, {}).get("state", {}).get("input")


async def store_status(hubs: list[HubProcess]) -> set[str]:
    return {(await h.health())["store"] for h in hubs}


async def test_redis_paused_then_lost_panels_are_told_and_end_without_gaps_or_duplicates(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(4)]
    devices = [f"proj{i}" for i in range(len(sims))]
    hubs = await hub_processes(cluster_config(redis_server.url, [s.port for s in sims], 5), 2)
    await cluster_up(hubs, len(sims))
    redis = redis_server.client()
    held = await owners(redis, "lab", devices)
    await redis.aclose()
    nodes = await node_ids(hubs)
    panels = [Panel(h.url, "lab") for h in hubs for _ in range(2)]
    told = [store_events(p) for p in panels]
    await asyncio.gather(*(p.connect() for p in panels))
    epoch = panels[0].epoch

    # 1. Redis stops answering (paused) for less than a lease: same data when it is back.
    redis_server.send(signal.SIGSTOP)
    for sim in sims:
        sim.set_input("31")
    await until(lambda: all(t for t in told), timeout=5, message="panels told")
    assert all(t == [{"available": False, "code": "store_unavailable"}] for t in told)
    assert await store_status(hubs) == {"store_unavailable"}
    # A device this hub owns still takes commands: its connection is kept.
    local = next(d for d, n in held.items() if nodes[n] is hubs[0])
    ack = await panels[0].command(local, "set_video_mute", mute=True)
    assert ack["ok"], ack
    remote = next(d for d, n in held.items() if nodes[n] is hubs[1])
    ack = await panels[0].command(remote, "set_video_mute", mute=True)
    assert ack["error"]["code"] == "store_unavailable"
    redis_server.send(signal.SIGCONT)
    await until(lambda: all(len(t) == 2 for t in told), timeout=10, message="panels told again")
    assert all(t[1] == {"available": True} for t in told)
    assert await store_status(hubs) == {"ok"}
    # What changed meanwhile was committed once Redis answered: replayed as changes.
    truth = await settled(hubs[0])
    assert truth["epoch"] == epoch
    assert {s["state"]["input"] for s in truth["devices"].values()} == {"HDMI 1"}  # code 31
    assert truth["devices"][local]["state"]["video_mute"] is True
    await in_sync(panels, truth)
    assert [p.snapshots for p in panels] == [1] * len(panels)

    # 2. Redis dies and comes back empty (no persistence): a new epoch, one snapshot each.
    await redis_server.stop(signal.SIGKILL)
    for sim in sims:
        sim.set_input("51")
    await until(lambda: all(len(t) == 3 for t in told), timeout=5, message="panels told")
    await redis_server.start()
    await until(lambda: all(len(t) == 4 for t in told), timeout=10, message="panels told again")
    truth = await settled(hubs[0])
    assert truth["epoch"] != epoch
    assert {s["state"]["input"] for s in truth["devices"].values()} == {"Network 1"}  # code 51
    assert all(s["state"]["online"] for s in truth["devices"].values())
    await in_sync(panels, truth)
    assert [p.snapshots for p in panels] == [2] * len(panels)
    for hub in hubs:
        assert "Traceback" not in hub.log()
        await hub.stop()


async def test_split_brain_a_hub_cut_off_from_redis_stops_and_its_late_changes_reach_no_panel(
    redis_server: RedisServer, hub_processes: HubStarter, pjlink_sims: Any
) -> None:
    ttl = 1.5
    sims: list[PjlinkSimulator] = [await pjlink_sims(power="on") for _ in range(2)]
    devices = [f"proj{i}" for i in range(len(sims))]
    ports = [s.port for s in sims]
    link = await LinkCutter(redis_server.port).start()
    try:
        (cut_off,) = await hub_processes(
            cluster_config(f"redis://127.0.0.1:{link.port}/0", ports, ttl), 1, name="cut"
        )
        (other,) = await hub_processes(cluster_config(redis_server.url, ports, ttl), 1)
        await cluster_up([cut_off, other], len(sims))
        redis = redis_server.client()
        nodes = await node_ids([cut_off, other])
        cut_node = next(n for n, h in nodes.items() if h is cut_off)
        device = next(d for d, n in (await owners(redis, "lab", devices)).items() if n == cut_node)
        sim = sims[devices.index(device)]
        panels = [Panel(h.url, "lab") for h in (cut_off, other)]
        await asyncio.gather(*(p.connect() for p in panels))
        sim.set_input("32")
        await until(lambda: all(input_of(p, device) == "HDMI 2" for p in panels))

        link.cut()
        sim.set_input("31")  # the cut-off hub polls this while it still trusts its lease
        await until(lambda: "unreachable" in cut_off.log(), message="the cut noticed")

        async def taken_over() -> bool:
            return (await owners(redis, "lab", [device]))[device] not in (None, cut_node)

        await until(taken_over, timeout=ttl * 3, message="the other hub to take the device")
        health = await cut_off.health()
        assert health["owned"] == 0 and health["store"] == "store_unavailable"
        assert "not renewed in time: stopped talking to them" in cut_off.log()
        # It neither polls nor commands the device any more.
        ack = await panels[0].command(device, "set_video_mute", mute=True)
        assert ack["error"]["code"] == "store_unavailable"
        assert sim.video_mute is False
        await until(  # the new owner polls what the cut-off hub could not commit
            lambda: input_of(panels[1], device) == "HDMI 1",  # code 31
            message="the new owner's poll",
        )
        sim.set_input("11")  # polled by the new owner only
        await until(
            lambda: input_of(panels[1], device) == "RGB 1",  # code 11
            message="the new owner's poll",
        )
        link.restore()  # the cut-off hub comes back with a change made under its old lease
        await until(lambda: "Redis refused a change" in cut_off.log(), timeout=10)
        await until(lambda: "reachable again" in cut_off.log(), timeout=10)
        truth = await settled(other)
        assert truth["devices"][device]["state"]["input"] == "RGB 1"
        await in_sync(panels, truth)
        # No panel ever went back to the cut-off hub's stale input after the new owner's.
        for panel in panels:
            inputs = [c["state"]["input"] for c in panel.received if "input" in c["state"]]
            assert "RGB 1" in inputs, (panel.url, panel.received, panel.snapshots)
            assert "HDMI 1" not in inputs[inputs.index("RGB 1") :]
        await redis.aclose()
    finally:
        await link.close()
