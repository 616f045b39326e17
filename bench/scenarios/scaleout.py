"""Scale-out: latency and fan-out with `store: memory`, one hub on Redis, two hubs on Redis.

One run measures four stacks on the same building: the baseline, one `avhub run` with
the in-process store, one with `store: redis://…`, and two `avhub run` processes sharing
one redis-server (panels split between them, each device owned by one of them). Each
stack runs the latency workload (scenario 1's sizes), then the fan-out workload
(scenario 2's fixed-rate step) with more panels per room.

With two hubs each projector's class 2 notifications go to the hub that owns it (as
the owner is the controller that talks to it), and CPU is the sum of both hubs; the
redis-server's CPU is reported beside it and counted in "cluster" figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.fleet import Fleet
from bench.proc import Child, ChildError, Children
from bench.scenarios.common import Rig, add_building_arguments, stream
from bench.stacks import (
    BaselineStack,
    HubStack,
    Layout,
    export_source,
    free_udp_port,
    health,
    hub_config,
    start_hub,
)

REDIS_SERVER = os.environ.get("AVHUB_REDIS_SERVER", "redis-server")
STACKS = ("memory", "redis1", "redis2")
TITLES = {"memory": "1 hub, memory", "redis1": "1 hub, Redis", "redis2": "2 hubs, Redis"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_building_arguments(parser, rooms=20, panels=5, devices=5)
    parser.add_argument("--fanout-panels", type=int, default=100, help="panels per room, fan-out")
    parser.add_argument("--rate", type=float, default=200, help="changes per second, all rooms")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2, help="seconds streamed before measuring")
    parser.add_argument(
        "--stacks",
        nargs="+",
        choices=STACKS,
        default=list(STACKS),
        help="which avhub stacks to run (the baseline always runs)",
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also run two hubs on Redis of this git commit in the same run",
    )


class ClusterStack(HubStack):
    """redis-server, the devices, and `nodes` hubs on one deployment (their own notify ports)."""

    def __init__(
        self,
        children: Children,
        layout: Layout,
        rundir: Path,
        nodes: int,
        source: Path | None = None,
    ) -> None:
        super().__init__(children, layout, rundir)
        self.nodes = nodes
        self.source = source  # the hubs' code: this checkout, or another commit's tree
        self.hubs: list[Child] = []
        self.urls: list[str] = []
        self.notify_ports: list[int] = []
        self.redis_port = 0

    async def start(self) -> None:
        self.redis_port = await start_redis(self.children, self.extra)
        devices = await self.children.python(
            "devices0", "bench.devices", "--count", str(self.layout.count)
        )
        self.devices, self._offsets = [devices], [0]
        self.extra[devices.name] = devices
        ports: list[int] = devices.ready["ports"]
        store = f"  store: redis://127.0.0.1:{self.redis_port}/0\n"
        for i in range(self.nodes):
            notify = free_udp_port()
            config = self.rundir / f"hub{i}.yaml"
            config.write_text(
                hub_config(self.layout, ports, notify).replace("hub:\n", "hub:\n" + store, 1)
            )
            hub, url = await start_hub(self.children, f"hub{i}", config, source=self.source)
            self.hubs.append(hub)
            self.urls.append(url)
            self.notify_ports.append(notify)
        self.server, self.url = self.hubs[0], self.urls[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        for hub in self.hubs[1:]:
            self.extra[hub.name] = hub
        await self._settle()
        await self._aim_notifications()

    async def _settle(self, timeout: float = 60.0) -> None:
        """Until every device is owned, spread evenly over the hubs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            owned = [(await health(url))["owned"] for url in self.urls]
            if sum(owned) == self.layout.count and max(owned) - min(owned) <= 1:
                return
            await asyncio.sleep(0.5)
        raise ChildError(f"devices not owned evenly after {timeout}s")

    async def _aim_notifications(self) -> None:
        """Each projector notifies the hub that owns it."""
        nodes = {(await health(url))["node"]: i for i, url in enumerate(self.urls)}
        targets: dict[int, list[int]] = {}
        redis = await asyncio.open_connection("127.0.0.1", self.redis_port)
        try:
            for index in range(self.layout.count):
                room, device = self.layout.key(index).split("/")
                holder = await _redis_get(redis, f"avhub:{{{room}}}:lease:{device}")
                targets.setdefault(nodes[holder.partition("|")[0]], []).append(index)
        finally:
            redis[1].close()
        for node, indexes in targets.items():
            to = f"127.0.0.1:{self.notify_ports[node]}"
            await self.devices[0].call("notify", to=to, targets=indexes)


async def start_redis(children: Children, extra: dict[str, Child]) -> int:
    """A redis-server child on a free loopback port, persistence off; returns the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no"]
    redis = await children.start("redis", argv, expect_json=False)
    extra["redis"] = redis
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return port
    raise ChildError("redis-server did not start")


async def _redis_get(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], key: str) -> str:
    """GET over RESP, enough for a lease value."""
    reader, writer = conn
    writer.write(f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode())
    header = (await reader.readline()).decode()
    if header.startswith("$-1"):
        raise ChildError(f"{key} has no owner")
    value = await reader.readexactly(int(header[1:]) + 2)
    return value[:-2].decode()


@contextlib.asynccontextmanager
async def scale_rig(
    kind: str,
    rundir: Path,
    layout: Layout,
    template: dict[str, Any],
    clients: int,
    source: Path | None = None,
) -> AsyncIterator[Rig]:
    directory = rundir / kind
    directory.mkdir(parents=True, exist_ok=True)
    async with Children(directory) as children:
        fleet = Fleet(children, directory, clients)
        await fleet.start()
        stack: HubStack | BaselineStack
        if kind == "memory":
            stack = HubStack(children, layout, directory)
        elif kind == "baseline":
            stack = BaselineStack(children, layout, template)
        else:
            nodes = 1 if kind == "redis1" else 2
            stack = ClusterStack(children, layout, directory, nodes, source)
        await stack.start()
        yield Rig(kind, stack, fleet, children)


async def connect_spread(r: Rig, per_room: int) -> None:
    """`per_room` more panels in every room, dealt over the stack's hubs."""
    urls = r.stack.urls if isinstance(r.stack, ClusterStack) else [r.stack.url]
    for i, url in enumerate(urls):
        count = per_room // len(urls) + (1 if i < per_room % len(urls) else 0)
        if count:
            await r.fleet.connect(url, r.stack.layout, count)
    if r.kind != "baseline" and not r.template:
        await r.fleet.wait_online(r.stack.layout)
        reply = await r.fleet.clients[0].call("snapshot", room=r.stack.layout.room_ids[0])
        r.template = {
            k: v for k, v in reply["snapshot"].items() if k not in ("epoch", "seq", "room")
        }


def server_cpu(r: Rig, step: dict[str, Any]) -> dict[str, float]:
    """Hub CPU seconds (all hubs), and with the redis-server's."""
    cpu = step["cpu_s"]
    hubs = cpu["server"] + sum(v for k, v in cpu.items() if k.startswith("hub"))
    return {"hubs": hubs, "cluster": hubs + cpu.get("redis", 0.0)}


async def measure(r: Rig, args: argparse.Namespace) -> dict[str, Any]:
    await connect_spread(r, args.panels)
    if args.warmup > 0:
        await stream(r, args.rate, args.warmup)
    latency = await stream(r, args.rate, args.seconds)
    await connect_spread(r, max(0, args.fanout_panels - args.panels))
    fanout = await stream(r, args.rate, args.seconds)
    for step in (latency, fanout):
        cpu = server_cpu(r, step)
        step["hubs_cpu_s"], step["cluster_cpu_s"] = cpu["hubs"], cpu["cluster"]
        step["deliveries_per_cpu_s"] = step["delivered"] / cpu["hubs"] if cpu["hubs"] else 0.0
        step["deliveries_per_cluster_cpu_s"] = (
            step["delivered"] / cpu["cluster"] if cpu["cluster"] else 0.0
        )
    return {"latency": latency, "fanout": fanout}


async def run(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    layout = Layout(args.rooms, args.devices, poll_interval=args.poll_interval)
    results: dict[str, Any] = {}
    template: dict[str, Any] = {}
    stacks = [kind for kind in STACKS if kind in args.stacks]
    titles = {**TITLES, "before": f"2 hubs, Redis, {args.before}"}
    if args.before:
        stacks.append("before")
    for kind in (*stacks, "baseline"):
        source = export_source(args.before, rundir / "before-src") if kind == "before" else None
        async with scale_rig(kind, rundir, layout, template, args.clients, source) as r:
            r.tries = 3 if args.quiet_wait > 0 else 1
            results[kind] = await measure(r, args)
            template = template or r.template
    theirs = results["baseline"]
    rows: list[tuple[str, Any, Any]] = []
    for kind in stacks:
        ours, title = results[kind], titles[kind]
        lat, fan = ours["latency"], ours["fanout"]
        rows += [
            (
                f"{title}: latency p50 (ms)",
                lat["latency"]["p50_ms"],
                theirs["latency"]["latency"]["p50_ms"],
            ),
            (
                f"{title}: latency p99 (ms)",
                lat["latency"]["p99_ms"],
                theirs["latency"]["latency"]["p99_ms"],
            ),
            (
                f"{title}: fan-out deliveries/CPU-s (hubs)",
                fan["deliveries_per_cpu_s"],
                theirs["fanout"]["deliveries_per_cpu_s"],
            ),
            (
                f"{title}: fan-out deliveries/CPU-s (hubs + redis)",
                fan["deliveries_per_cluster_cpu_s"],
                theirs["fanout"]["deliveries_per_cpu_s"],
            ),
            (
                f"{title}: fan-out p99 (ms)",
                fan["latency"]["p99_ms"],
                theirs["fanout"]["latency"]["p99_ms"],
            ),
            (
                f"{title}: gaps + duplicates",
                sum(s["gaps"] + s["duplicates"] for s in (lat, fan)),
                sum(s["gaps"] + s["duplicates"] for s in theirs.values()),
            ),
        ]
    return {"results": {"avhub": {k: results[k] for k in stacks}, "baseline": theirs}, "rows": rows}
