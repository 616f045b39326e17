"""Pieces every scenario uses: bring a stack up with its panels, stream marked changes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fleet import Fleet
from bench.proc import Child, Children, CpuMeter, wait_quiet
from bench.stacks import BaselineStack, HubStack, Layout, Stack
from bench.stats import match_receipts, summary_ms

KINDS = ("avhub", "baseline")


@dataclass
class Rig:
    """A running stack, its panels, and the child processes behind them."""

    kind: str
    stack: Stack
    fleet: Fleet
    children: Children
    template: dict[str, Any] = field(default_factory=dict)
    tries: int = 3  # measurements of a step crowded by other work (1: never measure again)


@contextlib.asynccontextmanager
async def rig(
    kind: str,
    rundir: Path,
    layout: Layout,
    template: dict[str, Any] | None,
    clients: int = 1,
    **hub: Any,
) -> AsyncIterator[Rig]:
    """Start the stack (`avhub` or `baseline`) and the client processes; stop all on exit.

    The baseline sends `template` (a hub snapshot but its epoch, seq and room) as its snapshot.
    """
    directory = rundir / kind
    directory.mkdir(parents=True, exist_ok=True)
    async with Children(directory) as children:
        fleet = Fleet(children, directory, clients)
        await fleet.start()
        stack: Stack
        if kind == "avhub":
            stack = HubStack(children, layout, directory, **hub)
        else:
            stack = BaselineStack(children, layout, template or {})
        await stack.start()
        yield Rig(kind, stack, fleet, children)


async def both(
    args: argparse.Namespace, rundir: Path, layout: Layout, clients: int | None = None
) -> AsyncIterator[Rig]:
    """The avhub rig, then the baseline's, which sends the snapshot avhub's rig captured."""
    template: dict[str, Any] | None = None
    for kind in KINDS:
        async with rig(kind, rundir, layout, template, clients or args.clients) as r:
            r.tries = 3 if args.quiet_wait > 0 else 1
            yield r
            template = template or r.template


def add_building_arguments(
    parser: argparse.ArgumentParser, rooms: int, panels: int, devices: int
) -> None:
    """--rooms, --panels (per room) and --devices (per room) with these defaults."""
    parser.add_argument("--rooms", type=int, default=rooms)
    parser.add_argument("--panels", type=int, default=panels, help="panels per room")
    parser.add_argument("--devices", type=int, default=devices, help="devices per room")


async def connect_panels(r: Rig, per_room: int, online: bool = True) -> dict[str, Any]:
    """Connect panels to every room; for the hub also wait until every device is online."""
    result = await r.fleet.connect(r.stack.url, r.stack.layout, per_room)
    if r.kind == "avhub" and online:
        await r.fleet.wait_online(r.stack.layout)
        reply = await r.fleet.clients[0].call("snapshot", room=r.stack.layout.room_ids[0])
        r.template = {
            k: v for k, v in reply["snapshot"].items() if k not in ("epoch", "seq", "room")
        }
    return result


async def quiesce(server: Child, busy: float = 0.15, timeout: float = 120.0) -> None:
    """Wait until the server uses under `busy` of a core (a backlog from a step has drained)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        before = server.cpu()
        await asyncio.sleep(0.5)
        if server.cpu() - before < busy * 0.5:
            return


CONTENDED = 0.25
"""Cores other processes may use during a step before it is measured again."""


async def stream(r: Rig, rate: float, seconds: float) -> dict[str, Any]:
    """`measure_stream`, again (after waiting for quiet) while other work crowded the machine."""
    for attempt in range(1, r.tries + 1):
        step = await measure_stream(r, rate, seconds)
        step["attempts"] = attempt
        if step["other_cpu_pct"] < 100 * CONTENDED or attempt == r.tries:
            break
        await wait_quiet(120)
    return step


async def measure_stream(r: Rig, rate: float, seconds: float) -> dict[str, Any]:
    """Marked changes at `rate`/s for `seconds`; delivery latency, CPU and throughput.

    Latency is receipt time at the panel minus write time at the source, per delivery.
    CPU is measured over the churn plus the drain that follows it; `other_cpu_pct` is
    what processes outside the run used meanwhile (a shared machine).
    """
    fleet, stack = r.fleet, r.stack
    assert stack.server is not None
    await quiesce(stack.server)
    before = await fleet.status()
    await fleet.record(True)
    meter = CpuMeter({"server": stack.server, **fleet.children, **stack.extra})
    meter.start()
    writes, took = await stack.churn(rate, seconds)
    expected = len(writes) * fleet.per_room
    await fleet.drain(expected)
    cpu = meter.stop()
    latencies, unmatched = match_receipts(writes, await fleet.collect())
    status = await fleet.status()
    server = cpu["server"]
    clients = sum(v for k, v in cpu.items() if k.startswith("client"))
    return {
        "rate": rate,
        "changes": len(writes),
        "achieved_rate": len(writes) / took if took else 0.0,
        "expected": expected,
        "delivered": len(latencies),
        "unmatched": unmatched,
        "latency": summary_ms(latencies),
        "window_s": meter.wall,
        "server_cpu_s": server,
        "server_cpu_pct": 100 * server / meter.wall,
        "deliveries_per_cpu_s": len(latencies) / server if server else float("nan"),
        "client_cpu_pct": 100 * clients / meter.wall,
        "other_cpu_pct": 100 * cpu["other"] / meter.wall,
        "cpu_s": cpu,
        "gaps": status["gaps"] - before["gaps"],
        "duplicates": status["duplicates"] - before["duplicates"],
    }


def healthy(step: dict[str, Any], p99_ms: float = 50.0) -> bool:
    """A step the server kept up with: p99 within bound, rate held, (almost) all delivered."""
    return bool(
        step["latency"]["p99_ms"] <= p99_ms
        and step["achieved_rate"] >= 0.9 * step["rate"]
        and step["delivered"] >= 0.99 * step["expected"]
    )
