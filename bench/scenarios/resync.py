"""Scenario 4: reconnect → in sync (snapshot and replay), and a storm after a server restart.

Rooms of `--sizes` PJLink projectors: a panel reconnects by snapshot (keeping the
action schemas it has: `cached`, or forgetting them: `cold`) and by replay; the
baseline sends the same payloads. A room of `--switchers` Extron switchers (full
action schemas): snapshots only, the baseline sending the devices' state alone
(name, driver, state; no actions), which is the floor a lean snapshot is held to.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.fleet import Fleet
from bench.scenarios.common import KINDS, both, connect_panels
from bench.scenarios.scaleout import scale_rig
from bench.stacks import Layout
from bench.stats import summary_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 50], help="devices per room to test"
    )
    parser.add_argument(
        "--switchers", type=int, default=100, help="Extron switchers in the big room (0: none)"
    )
    parser.add_argument(
        "--reconnects",
        type=int,
        default=500,
        help="per path and room size (the p99 is the fifth slowest of 500, the slowest of 100)",
    )
    parser.add_argument("--storm-rooms", type=int, default=20)
    parser.add_argument("--storm-panels", type=int, default=50, help="panels per room in the storm")
    parser.add_argument(
        "--storm-devices", type=int, default=5, help="devices per room in the storm"
    )
    parser.add_argument("--storm-timeout", type=float, default=60)
    parser.add_argument(
        "--redis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also reconnect to a hub with `store: redis://` (one hub, a redis-server)",
    )


ALL = -1  # every device of the room changed while the panel was away
FEW = 5  # a handful of changes missed

PATHS = {
    "snapshot": (False, True, 0),
    "cold": (False, False, 0),
    f"snapshot{FEW}": (False, True, FEW),
    "replay": (True, True, ALL),
    f"replay{FEW}": (True, True, FEW),
    "connect": (True, True, 0),
}
"""How a panel comes back: (resume, keeps the action schemas it has, changes it missed).

`snapshot`: no resume, schemas kept; `cold`: a first connect (nothing kept); `snapshot5`:
five devices changed while it was away and it takes a snapshot; `replay`: every device
of the room changed once while it was away; `replay5`: five devices did (a handful, the
common case of a panel that blinked); `connect`: nothing missed, so only the handshake
(WebSocket upgrade, Engine.IO open, namespace CONNECT).

The paths take turns in this order, and a snapshot encodes again the state of each
device that changed since the room's last snapshot: `snapshot` follows `replay` and
`replay5` (every device changed), `cold` follows `snapshot` (none did), `snapshot5`
follows five changes, like `replay5`.
"""


async def reconnects(
    fleet: Fleet, stack: Any, count: int, paths: tuple[str, ...] = tuple(PATHS)
) -> dict[str, Any]:
    """Panel 1 of the room reconnects `count` times by each path, the paths taking turns;
    panel 0 watches the seq."""
    client = fleet.clients[0]
    watcher, probe = 0, 1
    times: dict[str, list[float]] = {path: [] for path in paths}
    taken: dict[str, set[str]] = {path: set() for path in paths}
    sizes: dict[str, set[int]] = {path: set() for path in paths}
    for _ in range(count):
        for path in paths:
            resume, schemas, missed = PATHS[path]
            seq = (await client.call("wait_seq", id=watcher, seq=0))["seq"]
            await client.call("disconnect", ids=[probe])
            if missed:
                devices = stack.layout.room_devices(0)
                writes = await stack.bump(devices if missed == ALL else devices[:missed])
                seq += len(writes)
                await client.call("wait_seq", id=watcher, seq=seq)
            reply = await client.call(
                "reconnect", id=probe, resume=resume, schemas=schemas, target=seq
            )
            times[path].append(reply["seconds"])
            taken[path].add(reply["path"])
            sizes[path].add(reply["bytes"])
    return {
        path: {**summary_ms(times[path]), "paths": sorted(taken[path]), "bytes": max(sizes[path])}
        for path in paths
    }


SYNCS = (f"sync_replay{FEW}", f"sync_snapshot{FEW}")
"""Over an open connection, no handshake: five devices changed and the panel asks `sync`
for those five again (`sync_replay5`), or for a snapshot (`sync_snapshot5`)."""


async def syncs(fleet: Fleet, stack: Any, count: int) -> dict[str, Any]:
    """Panel 1 of the room (connected) asks `sync` `count` times by each of `SYNCS`, in
    turns, five devices changing before each."""
    client = fleet.clients[0]
    probe = 1
    devices = stack.layout.room_devices(0)[:FEW]
    times: dict[str, list[float]] = {path: [] for path in SYNCS}
    taken: dict[str, set[str]] = {path: set() for path in SYNCS}
    for _ in range(count):
        for path in SYNCS:
            seq = (await client.call("wait_seq", id=probe, seq=0))["seq"]
            writes = await stack.bump(devices)
            await client.call("wait_seq", id=probe, seq=seq + len(writes))
            behind = FEW if path == SYNCS[0] else None
            reply = await client.call("sync", id=probe, behind=behind)
            times[path].append(reply["seconds"])
            taken[path].add(reply["path"])
    return {path: {**summary_ms(times[path]), "paths": sorted(taken[path])} for path in SYNCS}


def state_alone(template: dict[str, Any]) -> dict[str, Any]:
    """A snapshot template's devices with their name, driver and state only."""
    return {
        "devices": {
            device_id: {k: v for k, v in device.items() if k in ("name", "driver", "state")}
            for device_id, device in template["devices"].items()
        }
    }


async def switcher_room(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    """Snapshots of a room of `--switchers` Extron switchers; the baseline sends state alone."""
    layout = Layout(1, args.switchers, poll_interval=args.poll_interval, driver="extron_sis")
    out: dict[str, Any] = {}
    async for r in both(args, rundir / f"switchers{args.switchers}", layout, clients=1):
        await connect_panels(r, 2)
        if r.kind == "avhub":
            r.template = state_alone(r.template)
            paths: tuple[str, ...] = ("snapshot", "cold")
        else:
            paths = ("snapshot",)
        out[r.kind] = await reconnects(r.fleet, r.stack, args.reconnects, paths)
        out[r.kind]["unresolved"] = (await r.fleet.status())["unresolved"]
    return out


async def storm(r: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Every panel connected; restart the server; until each holds a snapshot of the new epoch."""
    fleet, stack = r.fleet, r.stack
    await fleet._all("storm_arm")
    stopping = time.time()
    times = await stack.restart()
    up = times["listening"]
    replies = await fleet._all("storm_report", wait=args.storm_timeout)
    synced = sorted(t for reply in replies for t in reply["synced"])
    missing = sum(reply["missing"] for reply in replies)
    after_up = [t - up for t in synced]
    return {
        "panels": len(synced) + missing,
        "missing": missing,
        "shutdown_s": times["stopped"] - stopping,
        "startup_s": up - times["stopped"],
        "from_listening": summary_ms(after_up),
        "last_from_listening_s": after_up[-1] if after_up else float("nan"),
        "last_from_stop_s": synced[-1] - stopping if synced else float("nan"),
    }


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {kind: {} for kind in KINDS}
    if args.switchers:
        switchers = await switcher_room(args, rundir)
        for kind in KINDS:
            results[kind]["switchers"] = switchers[kind]
    for size in args.sizes:
        layout = Layout(1, size, poll_interval=args.poll_interval)
        size_bytes = 0
        async for r in both(args, rundir / f"size{size}", layout, clients=1):
            await connect_panels(r, 2)
            if r.kind == "avhub":
                room = layout.room_ids[0]
                size_bytes = (await r.fleet.clients[0].call("snapshot", room=room))["bytes"]
            results[r.kind][f"room{size}"] = {
                **await reconnects(r.fleet, r.stack, args.reconnects),
                "snapshot_bytes": size_bytes,
            }
            if r.kind == "avhub":  # the baseline has no `sync`
                results[r.kind][f"room{size}"].update(
                    await syncs(r.fleet, r.stack, args.reconnects)
                )
        if args.redis:
            async with scale_rig("redis1", rundir / f"size{size}", layout, {}, 1) as r:
                await r.fleet.connect(r.stack.url, layout, 2)
                await r.fleet.wait_online(layout)
                results["avhub"][f"room{size}_redis"] = {
                    **await reconnects(r.fleet, r.stack, args.reconnects),
                    **await syncs(r.fleet, r.stack, args.reconnects),
                }
    layout = Layout(args.storm_rooms, args.storm_devices, poll_interval=args.poll_interval)
    async for r in both(args, rundir / "storm", layout):
        await connect_panels(r, args.storm_panels)
        results[r.kind]["storm"] = await storm(r, args)
    ours, theirs = results["avhub"], results["baseline"]
    rows: list[tuple[str, Any, Any]] = []
    if args.switchers:
        mine, floor = ours["switchers"], theirs["switchers"]["snapshot"]
        room = f"{args.switchers}-switcher room"
        for path, what in (("snapshot", "schemas cached"), ("cold", "no schemas cached")):
            for q in ("p50_ms", "p95_ms", "p99_ms"):
                name = f"{room}, snapshot {q[:3]}, {what} / state alone (ms)"
                rows.append((name, mine[path][q], floor[q]))
            rows.append(
                (
                    f"{room}, snapshot bytes, {what} / state alone",
                    mine[path]["bytes"],
                    floor["bytes"],
                )
            )
    for size in args.sizes:
        for path in PATHS:
            for q in ("p50_ms", "p99_ms"):
                name = f"{size}-device room, {path} {q[:3]} (ms)"
                rows.append((name, ours[f"room{size}"][path][q], theirs[f"room{size}"][path][q]))
        for store in ("", "_redis") if args.redis else ("",):
            mine, room = ours[f"room{size}{store}"], f"{size}-device room{store.replace('_', ', ')}"
            for label, replayed, snapshot in (
                (f"{FEW} missed, replay / snapshot", f"replay{FEW}", f"snapshot{FEW}"),
                (f"replay of {FEW} / snapshot, every device changed", f"replay{FEW}", "snapshot"),
                (f"{FEW} missed, sync replay / sync snapshot", *SYNCS),
            ):
                for q in ("p50_ms", "p99_ms"):
                    name = f"{room}: {label} {q[:3]}"
                    rows.append((name, mine[replayed][q], mine[snapshot][q]))
    if args.redis:
        for size in args.sizes:
            for path in PATHS:
                for q in ("p50_ms", "p99_ms"):
                    name = f"{size}-device room, Redis store, {path} {q[:3]} (ms)"
                    mine, base = ours[f"room{size}_redis"][path][q], theirs[f"room{size}"][path][q]
                    rows.append((name, mine, base))
    n = ours["storm"]["panels"]
    rows += [
        (
            f"storm of {n}: last in sync after listening (s)",
            ours["storm"]["last_from_listening_s"],
            theirs["storm"]["last_from_listening_s"],
        ),
        (
            "storm: p50 after listening (ms)",
            ours["storm"]["from_listening"]["p50_ms"],
            theirs["storm"]["from_listening"]["p50_ms"],
        ),
        ("storm: server shutdown (s)", ours["storm"]["shutdown_s"], theirs["storm"]["shutdown_s"]),
        (
            "storm: server start to listening (s)",
            ours["storm"]["startup_s"],
            theirs["storm"]["startup_s"],
        ),
        (
            "storm: last in sync after SIGTERM (s)",
            ours["storm"]["last_from_stop_s"],
            theirs["storm"]["last_from_stop_s"],
        ),
        ("storm: panels never in sync", ours["storm"]["missing"], theirs["storm"]["missing"]),
    ]
    return {"results": results, "rows": rows}
