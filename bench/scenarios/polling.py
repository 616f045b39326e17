"""Scenario 5: 1,000 simulated projectors polled at 1 Hz — hub CPU and RSS per device."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bench.proc import Child, ChildError, Children, CpuMeter
from bench.stacks import Layout, export_source, hub_config, start_hub
from drivers.pjlink.config import PjlinkConfig

DETAIL_INTERVAL = PjlinkConfig.model_fields["detail_interval"].default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--per-room", type=int, default=10, help="devices per room")
    parser.add_argument("--interval", type=float, default=1.0, help="status poll interval (s)")
    parser.add_argument(
        "--detail-interval",
        type=float,
        default=DETAIL_INTERVAL,
        help="errors/resolution/freeze poll interval (s); the driver's default",
    )
    parser.add_argument("--sim-procs", type=int, default=4, help="simulator processes")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5, help="seconds after all are online")
    parser.add_argument(
        "--before", metavar="REF", help="also run the hub of this git commit in the same run"
    )


async def all_online(client: Child, url: str, layout: Layout, timeout: float = 180) -> float:
    """Seconds until a probe panel sees every device of every room online."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        reply = await client.call("probe", url=url, rooms=layout.room_ids, timeout=timeout)
        online = reply["online"]
        if all(on == layout.devices for on, _ in online.values()):
            return loop.time() - start
        await asyncio.sleep(0.5)
    raise ChildError(f"not all devices online after {timeout}s")


async def measure(server: Child, sims: list[Child], seconds: float, devices: int) -> dict[str, Any]:
    """Server and simulator CPU over `seconds`; requests answered per device per second."""

    async def received() -> int:
        replies = await asyncio.gather(*(s.call("received") for s in sims))
        return sum(r["received"] for r in replies)

    meter = CpuMeter({"server": server, **{s.name: s for s in sims}})
    before = await received()
    meter.start()
    await asyncio.sleep(seconds)
    cpu = meter.stop()
    answered = await received() - before
    return {
        "server_cpu_pct": 100 * cpu["server"] / meter.wall,
        "simulators_cpu_pct": 100
        * sum(v for k, v in cpu.items() if k.startswith("devices"))
        / meter.wall,
        "other_cpu_pct": 100 * cpu["other"] / meter.wall,
        "requests_per_device_s": answered / meter.wall / devices,
        "answered": answered,
        "server_cpu_s": cpu["server"],
        "rss": server.rss(),
    }


async def start_devices(
    children: Children, count: int, procs: int, kind: str = "pjlink"
) -> tuple[list[Child], list[int]]:
    """`count` simulators of `kind` in `procs` processes (`bench.devices`); and their ports."""
    sims, ports = [], []
    per = -(-count // procs)
    for i in range(procs):
        argv = ("--count", str(min(per, count - i * per)), "--kind", kind)
        child = await children.python(f"devices{i}", "bench.devices", *argv)
        sims.append(child)
        ports += child.ready["ports"]
    return sims, ports


async def polled_hub(
    children: Children,
    name: str,
    args: argparse.Namespace,
    rundir: Path,
    sims: list[Child],
    ports: list[int],
    source: Path | None = None,
) -> dict[str, Any]:
    """The hub (of `source`, see `start_hub`) polling every device: `measure`, RSS per device.

    RSS per device is set against the same hub with the same rooms and no devices.
    """
    layout = Layout(args.devices // args.per_room, args.per_room, poll_interval=args.interval)
    client = await children.python(f"client-{name}", "bench.client")
    config = rundir / f"{name}-empty.yaml"
    config.write_text(hub_config(Layout(layout.rooms, 0), [], None))
    empty, _ = await start_hub(children, f"{name}-empty", config, source=source)
    await asyncio.sleep(args.warmup)
    rss_empty = empty.rss()
    await children.stop(empty)

    config = rundir / f"{name}.yaml"
    extra = f"lamp_interval: 60s\ndetail_interval: {args.detail_interval}s"
    config.write_text(hub_config(layout, ports, None, extra))
    hub, url = await start_hub(children, name, config, source=source)
    online_s = await all_online(client, url, layout)
    await asyncio.sleep(args.warmup)
    result = await measure(hub, sims, args.seconds, layout.count)
    result["online_s"] = online_s
    result["rss_per_device"] = (result["rss"] - rss_empty) / layout.count
    result["rss_empty"] = rss_empty
    await children.stop(hub)
    await children.stop(client)
    return result


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.devices // args.per_room, args.per_room, poll_interval=args.interval)
    results: dict[str, Any] = {}
    async with Children(rundir) as children:
        sims, ports = await start_devices(children, layout.count, args.sim_procs)
        if args.before:
            source = export_source(args.before, rundir / "before-src")
            before = await polled_hub(children, "hub_before", args, rundir, sims, ports, source)
            results["avhub_before"] = before
        ours = results["avhub"] = await polled_hub(children, "hub", args, rundir, sims, ports)

        poller = await children.python("poller", "bench.poller")
        await asyncio.sleep(min(1.0, args.warmup))
        rss_idle = poller.rss()
        await poller.call(
            "poll", ports=ports, interval=args.interval, detail_interval=args.detail_interval
        )
        await asyncio.sleep(args.warmup + args.interval)
        theirs = await measure(poller, sims, args.seconds, layout.count)
        theirs["rss_per_device"] = (theirs["rss"] - rss_idle) / layout.count
        theirs["errors"] = (await poller.call("stats"))["errors"]
        results["baseline"] = theirs
    rows = [
        ("server CPU % of one core", ours["server_cpu_pct"], theirs["server_cpu_pct"]),
        ("RSS per device (KB)", ours["rss_per_device"] / 1024, theirs["rss_per_device"] / 1024),
        ("requests/s per device", ours["requests_per_device_s"], theirs["requests_per_device_s"]),
        ("simulator CPU %", ours["simulators_cpu_pct"], theirs["simulators_cpu_pct"]),
        ("server RSS (MB)", ours["rss"] / 2**20, theirs["rss"] / 2**20),
    ]
    if args.before:
        old = results["avhub_before"]
        rows += [
            (f"{args.before}: RSS per device (KB)", old["rss_per_device"] / 1024, None),
            (f"{args.before}: server CPU % of one core", old["server_cpu_pct"], None),
        ]
    return {"results": results, "rows": rows}
