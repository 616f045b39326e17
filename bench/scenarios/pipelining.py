"""Scenario 6: 1,000 Extron switchers, three queries a poll — hub CPU per request, pipelined.

The hub polls each switcher's video and audio tie tables and its mute table every
`--interval`, the three written at once (`drivers/link.py` `request_many`). Beside it,
in the same run: the bare poller (`bench/poller.py`) sending the same three queries
the same way, and, with `--before REF`, the hub of git commit REF (e.g. the commit
before pipelining), which sends them one at a time. The figure is server CPU seconds
per request answered.

Every stack is started and brought online first, then all but one are paused
(SIGSTOP): `--rounds` rounds measure each in turn for `--seconds`, so that other work
on a shared machine falls on all of them alike; the table gives each one's median.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
from pathlib import Path
from typing import Any

from bench.proc import Child, Children
from bench.scenarios.polling import all_online, measure, start_devices
from bench.stacks import Layout, export_source, hub_config, start_hub

SWITCHER = """\
inputs: 8
outputs: 8
volume: false
audio_mute: true
video_mute: true
prompt_wait: 0.1s
"""
"""Driver options: the 8x8 simulated switchers (bench/devices.py), volume not polled."""
SETTLE = 2.0  # seconds after resuming a stack before its window (it catches up on polls)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--per-room", type=int, default=10, help="devices per room")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval (s)")
    parser.add_argument("--sim-procs", type=int, default=4, help="simulator processes")
    parser.add_argument("--seconds", type=float, default=10, help="length of one window")
    parser.add_argument("--rounds", type=int, default=5, help="windows per stack")
    parser.add_argument("--warmup", type=float, default=5, help="seconds after all are online")
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also run the hub of this git commit (one request at a time) in the same run",
    )


async def window(
    server: Child, sims: list[Child], args: argparse.Namespace, devices: int
) -> dict[str, Any]:
    """Resume `server`, measure it for `--seconds`, pause it again."""
    server.resume()
    try:
        await asyncio.sleep(min(SETTLE, args.seconds))
        result = await measure(server, sims, args.seconds, devices)
    finally:
        server.pause()
    result["cpu_us_per_request"] = 1e6 * result["server_cpu_s"] / max(1, result["answered"])
    return result


def median(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the windows; the windows themselves under `windows`."""
    keys = [k for k, v in windows[0].items() if isinstance(v, int | float)]
    figures: dict[str, Any] = {k: statistics.median(w[k] for w in windows) for k in keys}
    return {**figures, "windows": windows}


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(
        args.devices // args.per_room, args.per_room, args.interval, driver="extron_sis"
    )
    hubs: list[tuple[str, Path | None]] = [("avhub", None)]
    if args.before:
        hubs.insert(0, ("avhub_before", export_source(args.before, rundir / "before-src")))
    stacks: dict[str, Child] = {}
    async with Children(rundir) as children:
        sims, ports = await start_devices(children, layout.count, args.sim_procs, layout.driver)
        online: dict[str, float] = {}
        for name, source in hubs:
            config = rundir / f"{name}.yaml"
            config.write_text(hub_config(layout, ports, None, SWITCHER))
            stacks[name], url = await start_hub(children, name, config, source=source)
            online[name] = await all_online(url, layout)
            stacks[name].pause()
        poller = await children.python("poller", "bench.poller")
        await poller.call("poll", ports=ports, interval=args.interval, driver="extron_sis")
        await asyncio.sleep(args.interval)
        poller.pause()
        stacks["baseline"] = poller
        await asyncio.sleep(args.warmup)

        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in stacks}
        for i in range(args.rounds):
            names = list(stacks)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                windows[name].append(await window(stacks[name], sims, args, layout.count))
        poller.resume()
        errors = (await poller.call("stats"))["errors"]
    results = {name: median(w) for name, w in windows.items()}
    for name in ("baseline", "avhub_before"):
        if name in windows:  # ratios of windows next to each other in time, then their median
            ratios = [
                ours["cpu_us_per_request"] / theirs["cpu_us_per_request"]
                for ours, theirs in zip(windows["avhub"], windows[name], strict=True)
                if theirs["cpu_us_per_request"]
            ]
            results["avhub"][f"per_request_ratio_{name}"] = (
                statistics.median(ratios) if ratios else math.nan
            )
    for name, seconds in online.items():
        results[name]["online_s"] = seconds
    results["baseline"]["errors"] = errors
    return {"results": results, "rows": rows(results, args.before)}


def rows(results: dict[str, Any], before: str | None) -> list[tuple[str, Any, Any]]:
    ours, theirs = results["avhub"], results["baseline"]
    figures = [
        ("server CPU per request (µs)", "cpu_us_per_request"),
        ("server CPU % of one core", "server_cpu_pct"),
        ("requests/s per device", "requests_per_device_s"),
    ]
    table: list[tuple[str, Any, Any]] = [(name, ours[key], theirs[key]) for name, key in figures]
    table.append(("simulator CPU %", ours["simulators_cpu_pct"], theirs["simulators_cpu_pct"]))
    ratio = ours["per_request_ratio_baseline"]
    table.append(("CPU per request / baseline's, median of the rounds", ratio, None))
    old = results.get("avhub_before")
    if old is not None:
        table += [
            (f"{before}, one at a time: {name}", old[key], theirs[key]) for name, key in figures
        ]
        ratio = ours["per_request_ratio_avhub_before"]
        table.append(("CPU per request / one at a time, median of the rounds", ratio, None))
    return table
