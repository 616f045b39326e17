"""Scenario 1: a device changes state → the panel receives the `change` (hub-added latency)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.scenarios.common import add_building_arguments, both, connect_panels, stream
from bench.stacks import Layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_building_arguments(parser, rooms=20, panels=5, devices=5)
    parser.add_argument("--rate", type=float, default=200, help="changes per second, all rooms")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=2, help="seconds streamed before measuring")


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.rooms, args.devices, poll_interval=args.poll_interval)
    results: dict[str, Any] = {}
    async for r in both(args, rundir, layout):
        await connect_panels(r, args.panels)
        if args.warmup > 0:
            await stream(r, args.rate, args.warmup)
        results[r.kind] = await stream(r, args.rate, args.seconds)
    ours, theirs = results["avhub"], results["baseline"]
    rows = [
        (f"{name} (ms)", ours["latency"][key], theirs["latency"][key])
        for name, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("max", "max_ms"))
    ]
    rows += [
        ("deliveries", ours["delivered"], theirs["delivered"]),
        ("expected", ours["expected"], theirs["expected"]),
        ("server CPU %", ours["server_cpu_pct"], theirs["server_cpu_pct"]),
        ("client CPU %", ours["client_cpu_pct"], theirs["client_cpu_pct"]),
        (
            "gaps + duplicates",
            ours["gaps"] + ours["duplicates"],
            theirs["gaps"] + theirs["duplicates"],
        ),
    ]
    return {"results": results, "rows": rows}
