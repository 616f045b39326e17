"""Scenario 4: reconnect → in sync (snapshot and replay), and a storm after a server restart."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.fleet import Fleet
from bench.scenarios.common import KINDS, both, connect_panels
from bench.stacks import Layout
from bench.stats import summary_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 50], help="devices per room to test"
    )
    parser.add_argument("--reconnects", type=int, default=100, help="per path and room size")
    parser.add_argument("--storm-rooms", type=int, default=20)
    parser.add_argument("--storm-panels", type=int, default=50, help="panels per room in the storm")
    parser.add_argument(
        "--storm-devices", type=int, default=5, help="devices per room in the storm"
    )
    parser.add_argument("--storm-timeout", type=float, default=60)


async def reconnects(fleet: Fleet, stack: Any, count: int) -> dict[str, Any]:
    """Panel 1 of the room reconnects `count` times by each path; panel 0 watches the seq."""
    client = fleet.clients[0]
    watcher, probe = 0, 1
    out: dict[str, Any] = {}
    for path in ("snapshot", "replay"):
        times, paths = [], set()
        for _ in range(count):
            seq = (await client.call("wait_seq", id=watcher, seq=0))["seq"]
            await client.call("disconnect", ids=[probe])
            if path == "replay":
                writes = await stack.bump(stack.layout.room_devices(0))
                seq += len(writes)
                await client.call("wait_seq", id=watcher, seq=seq)
            reply = await client.call("reconnect", id=probe, resume=path == "replay", target=seq)
            times.append(reply["seconds"])
            paths.add(reply["path"])
        out[path] = {**summary_ms(times), "paths": sorted(paths)}
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
    layout = Layout(args.storm_rooms, args.storm_devices, poll_interval=args.poll_interval)
    async for r in both(args, rundir / "storm", layout):
        await connect_panels(r, args.storm_panels)
        results[r.kind]["storm"] = await storm(r, args)
    ours, theirs = results["avhub"], results["baseline"]
    rows = []
    for size in args.sizes:
        for path in ("snapshot", "replay"):
            for q in ("p50_ms", "p99_ms"):
                name = f"{size}-device room, {path} {q[:3]} (ms)"
                rows.append((name, ours[f"room{size}"][path][q], theirs[f"room{size}"][path][q]))
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
