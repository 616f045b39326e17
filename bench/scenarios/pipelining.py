"""Scenario 6: 1,000 Extron switchers, three queries a poll — hub CPU per request, pipelined.

The hub polls each switcher's video and audio tie tables and its mute table every
`--interval`, the three written at once (`drivers/link.py` `request_many`). Beside it,
in the same run: the bare poller (`bench/poller.py`) sending the same three queries
the same way, and, with `--before REF`, the hub of git commit REF (e.g. the commit
before pipelining), which sends them one at a time. The figure is server CPU seconds
per request answered.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path
from typing import Any

from bench.proc import Child, Children
from bench.scenarios.polling import all_online, measure, start_devices
from bench.stacks import Layout, export_source, hub_config, start_hub

SWITCHER = "inputs: 8\noutputs: 8\naudio_mute: true\nvideo_mute: true\nprompt_wait: 0.1s"
"""Driver options matching the simulated switchers (bench/devices.py SWITCHER)."""
CROWDED_PCT = 25.0  # other processes' CPU (% of a core) that makes a measurement suspect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--per-room", type=int, default=10, help="devices per room")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval (s)")
    parser.add_argument("--sim-procs", type=int, default=4, help="simulator processes")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5, help="seconds after all are online")
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also run the hub of this git commit (one request at a time) in the same run",
    )
    parser.add_argument(
        "--tries", type=int, default=3, help="measurements of a crowded step (1: never again)"
    )


async def steady(
    server: Child, sims: list[Child], args: argparse.Namespace, devices: int
) -> dict[str, Any]:
    """`measure`, again (up to `--tries`) while other processes crowd the machine."""
    for _ in range(max(1, args.tries)):
        result = await measure(server, sims, args.seconds, devices)
        if result["other_cpu_pct"] <= CROWDED_PCT:
            break
    answered = max(1, result["answered"])
    result["cpu_us_per_request"] = 1e6 * result["server_cpu_s"] / answered
    return result


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.devices // args.per_room, args.per_room, poll_interval=args.interval)
    hubs: list[tuple[str, Path | None]] = [("avhub", None)]
    if args.before:
        hubs.insert(0, ("avhub_before", export_source(args.before, rundir / "before-src")))
    results: dict[str, Any] = {}
    async with Children(rundir) as children:
        sims, ports = await start_devices(children, layout.count, args.sim_procs, "extron_sis")
        client = await children.python("client0", "bench.client")

        for name, source in hubs:
            config = rundir / f"{name}.yaml"
            config.write_text(hub_config(layout, ports, None, SWITCHER, driver="extron_sis"))
            hub, url = await start_hub(children, name, config, source=source)
            online_s = await all_online(client, url, layout)
            await asyncio.sleep(args.warmup)
            results[name] = {**await steady(hub, sims, args, layout.count), "online_s": online_s}
            await children.stop(hub)

        poller = await children.python("poller", "bench.poller")
        await poller.call("poll", ports=ports, interval=args.interval, driver="extron_sis")
        await asyncio.sleep(args.warmup + args.interval)
        results["baseline"] = await steady(poller, sims, args, layout.count)
        results["baseline"]["errors"] = (await poller.call("stats"))["errors"]
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
    old = results.get("avhub_before")
    if old is not None:
        table += [
            (f"{before}, one at a time: {name}", old[key], theirs[key]) for name, key in figures
        ]
        one_at_a_time = old["cpu_us_per_request"]
        per_request = ours["cpu_us_per_request"] / one_at_a_time if one_at_a_time else math.nan
        table.append(("CPU per request, pipelined / one at a time", per_request, None))
    return table
