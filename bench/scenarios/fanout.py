"""Scenario 2: fan-out — deliveries per server CPU-second, and the rate where p99 passes 50 ms."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.scenarios.common import (
    Rig,
    add_building_arguments,
    both,
    connect_panels,
    healthy,
    stream,
)
from bench.stacks import Layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_building_arguments(parser, rooms=20, panels=100, devices=5)
    parser.add_argument(
        "--rate", type=float, default=200, help="changes/s for the deliveries-per-CPU-second figure"
    )
    parser.add_argument("--seconds", type=float, default=10, help="length of each step")
    parser.add_argument("--ramp-from", type=float, default=25, help="first rate of the ramp")
    parser.add_argument("--ramp-steps", type=int, default=8, help="most steps (rate doubles)")
    parser.add_argument("--p99-ms", type=float, default=50.0, help="where the ramp stops")
    parser.add_argument("--warmup", type=float, default=2, help="seconds streamed before measuring")


async def ramp(r: Rig, args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """Double the rate until a step is unhealthy, then try halfway; returns steps and knee."""
    steps: list[dict[str, Any]] = []
    rate, knee, failed = args.ramp_from, 0.0, None
    for _ in range(args.ramp_steps):
        step = await stream(r, rate, args.seconds)
        steps.append(step)
        if not healthy(step, args.p99_ms):
            failed = rate
            break
        knee = rate
        rate *= 2
    if failed is not None and knee:
        middle = (knee + failed) / 2
        step = await stream(r, middle, args.seconds)
        steps.append(step)
        if healthy(step, args.p99_ms):
            knee = middle
    return steps, knee


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.rooms, args.devices, poll_interval=args.poll_interval)
    results: dict[str, Any] = {}
    async for r in both(args, rundir, layout):
        await connect_panels(r, args.panels)
        if args.warmup > 0:
            await stream(r, args.rate, args.warmup)
        fixed = await stream(r, args.rate, args.seconds)
        steps, knee = await ramp(r, args) if args.ramp_steps else ([], 0.0)
        results[r.kind] = {"fixed": fixed, "ramp": steps, "knee_rate": knee}
    ours, theirs = results["avhub"], results["baseline"]
    per_room = args.panels
    rows = [
        (
            f"deliveries/CPU-s at {args.rate:g}/s",
            ours["fixed"]["deliveries_per_cpu_s"],
            theirs["fixed"]["deliveries_per_cpu_s"],
        ),
        ("server CPU %", ours["fixed"]["server_cpu_pct"], theirs["fixed"]["server_cpu_pct"]),
        ("p50 (ms)", ours["fixed"]["latency"]["p50_ms"], theirs["fixed"]["latency"]["p50_ms"]),
        ("p99 (ms)", ours["fixed"]["latency"]["p99_ms"], theirs["fixed"]["latency"]["p99_ms"]),
        ("client CPU %", ours["fixed"]["client_cpu_pct"], theirs["fixed"]["client_cpu_pct"]),
        (f"changes/s before p99 > {args.p99_ms:g} ms", ours["knee_rate"], theirs["knee_rate"]),
        (
            "  = deliveries/s",
            ours["knee_rate"] * per_room,
            theirs["knee_rate"] * per_room,
        ),
        (
            "gaps + duplicates",
            sum(s["gaps"] + s["duplicates"] for s in [ours["fixed"], *ours["ramp"]]),
            sum(s["gaps"] + s["duplicates"] for s in [theirs["fixed"], *theirs["ramp"]]),
        ),
    ]
    return {"results": results, "rows": rows}
