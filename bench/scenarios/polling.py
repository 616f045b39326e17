"""Scenario 5: 1,000 simulated projectors polled at 1 Hz — hub CPU and RSS per device."""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from bench.proc import Child, ChildError, Children, CpuMeter
from bench.stacks import Layout, export_source, health, hub_config, start_hub
from drivers.pjlink.config import PjlinkConfig

DETAIL_INTERVAL = PjlinkConfig.model_fields["detail_interval"].default
DEFINITION = Path(__file__).resolve().parent.parent / "pjlink-generic.yaml"


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
        "--driver",
        choices=["pjlink", "generic"],
        default="pjlink",
        help="generic: also poll the same projectors with the generic driver "
        "(bench/pjlink-generic.yaml) and compare hub CPU per request",
    )
    parser.add_argument(
        "--before", metavar="REF", help="also run the hub of this git commit in the same run"
    )


async def all_online(url: str, layout: Layout, timeout: float = 180) -> float:
    """Seconds until the hub's `/healthz` counts every device online.

    Not by panels: a panel's connection, and what it leaves behind for a while after it
    closes, would be counted in the hub's RSS as if the devices used it.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        if (await health(url))["online"] == layout.count:
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
        "devices": devices,
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


async def empty_rss(
    children: Children,
    rundir: Path,
    layout: Layout,
    args: argparse.Namespace,
    name: str,
    source: Path | None = None,
) -> int:
    """RSS of the hub (of `source`, see `start_hub`) with `layout`'s rooms and no devices."""
    config = rundir / f"{name}-empty.yaml"
    config.write_text(hub_config(Layout(layout.rooms, 0), [], None))
    empty, _ = await start_hub(children, f"{name}-empty", config, source=source)
    await asyncio.sleep(args.warmup)
    rss = empty.rss()
    await children.stop(empty)
    return rss


async def hub_phase(
    children: Children,
    rundir: Path,
    sims: list[Child],
    layout: Layout,
    args: argparse.Namespace,
    rss_empty: int,
    name: str,
    config_text: str,
    source: Path | None = None,
) -> dict[str, Any]:
    """Run the hub (of `source`) on `config_text` until every device is online, then measure it.

    RSS per device is set against `rss_empty`, the same hub with the same rooms and no devices.
    """
    config = rundir / f"{name}.yaml"
    config.write_text(config_text)
    hub, url = await start_hub(children, name, config, source=source)
    online_s = await all_online(url, layout)
    await asyncio.sleep(args.warmup)
    measured = await measure(hub, sims, args.seconds, layout.count)
    measured["online_s"] = online_s
    measured["rss_per_device"] = (measured["rss"] - rss_empty) / layout.count
    measured["rss_empty"] = rss_empty
    await children.stop(hub)
    return measured


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.devices // args.per_room, args.per_room, poll_interval=args.interval)
    results: dict[str, Any] = {}
    async with Children(rundir) as children:
        sims, ports = await start_devices(children, layout.count, args.sim_procs)
        extra = f"lamp_interval: 60s\ndetail_interval: {args.detail_interval}s"
        config_text = hub_config(layout, ports, None, extra)
        if args.before:
            source = export_source(args.before, rundir / "before-src")
            rss = await empty_rss(children, rundir, layout, args, "hub_before", source)
            results["avhub_before"] = await hub_phase(
                children, rundir, sims, layout, args, rss, "hub_before", config_text, source
            )
        rss_empty = await empty_rss(children, rundir, layout, args, "hub")
        phase = partial(hub_phase, children, rundir, sims, layout, args, rss_empty)
        ours = results["avhub"] = await phase("hub", config_text)
        if args.driver == "generic":
            results["generic"] = await phase("hub-generic", generic_config(layout, ports))

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
    if "generic" in results:
        generic = results["generic"]
        rows += [
            (
                "generic vs pjlink: hub CPU per request (µs)",
                cpu_per_request(generic),
                cpu_per_request(ours),
            ),
            ("generic vs pjlink: server CPU %", generic["server_cpu_pct"], ours["server_cpu_pct"]),
            (
                "generic vs pjlink: requests/s per device",
                generic["requests_per_device_s"],
                ours["requests_per_device_s"],
            ),
            (
                "generic vs pjlink: RSS per device (KB)",
                generic["rss_per_device"] / 1024,
                ours["rss_per_device"] / 1024,
            ),
        ]
    return {"results": results, "rows": rows}


def cpu_per_request(measured: dict[str, Any]) -> float:
    """Hub CPU microseconds per request answered (over every device)."""
    requests = measured["requests_per_device_s"] * measured["devices"]
    return 1e6 * measured["server_cpu_pct"] / 100 / requests if requests else 0.0


def generic_config(layout: Layout, ports: list[int]) -> str:
    """The deployment with every projector a generic device (one shared definition)."""
    definition = DEFINITION.read_text()
    preamble = "x-pjlink: &pjlink\n" + "".join(f"  {line}\n" for line in definition.splitlines())
    return hub_config(layout, ports, None, "protocol: *pjlink", "generic", preamble)
