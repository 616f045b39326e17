"""Scenario 3: 2,000 connected panels at 1 change/s per room — latency and RSS per panel."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bench.scenarios.common import add_building_arguments, both, connect_panels, stream
from bench.stacks import Layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_building_arguments(parser, rooms=100, panels=20, devices=1)
    parser.add_argument("--room-rate", type=float, default=1.0, help="changes/s in each room")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--settle", type=float, default=2, help="seconds before reading RSS")


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.rooms, args.devices, poll_interval=args.poll_interval)
    results: dict[str, Any] = {}
    async for r in both(args, rundir, layout):
        assert r.stack.server is not None
        await connect_panels(r, 1)  # one watcher per room: devices online, memory settled
        await asyncio.sleep(args.settle)
        before = r.stack.server.rss()
        more = args.panels - 1
        connected = await connect_panels(r, more, online=False)
        await asyncio.sleep(args.settle)
        after = r.stack.server.rss()
        added = layout.rooms * more
        step = await stream(r, args.rooms * args.room_rate, args.seconds)
        status = await r.fleet.status()
        results[r.kind] = {
            **step,
            "panels": status["connected"],
            "connect_seconds": connected["seconds"],
            "rss_before": before,
            "rss_after": after,
            "rss_end": r.stack.server.rss(),
            "rss_per_panel": (after - before) / added if added else float("nan"),
            "early": status["early"],
        }
    ours, theirs = results["avhub"], results["baseline"]
    rows = [
        ("connected panels", ours["panels"], theirs["panels"]),
        ("p50 (ms)", ours["latency"]["p50_ms"], theirs["latency"]["p50_ms"]),
        ("p99 (ms)", ours["latency"]["p99_ms"], theirs["latency"]["p99_ms"]),
        ("max (ms)", ours["latency"]["max_ms"], theirs["latency"]["max_ms"]),
        ("RSS per panel (KB)", ours["rss_per_panel"] / 1024, theirs["rss_per_panel"] / 1024),
        ("server RSS (MB)", ours["rss_end"] / 2**20, theirs["rss_end"] / 2**20),
        ("server CPU %", ours["server_cpu_pct"], theirs["server_cpu_pct"]),
        ("connect all (s)", ours["connect_seconds"], theirs["connect_seconds"]),
        (
            "gaps + duplicates",
            ours["gaps"] + ours["duplicates"],
            theirs["gaps"] + theirs["duplicates"],
        ),
    ]
    return {"results": results, "rows": rows}
