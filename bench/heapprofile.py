"""Where a polling hub's memory goes at start-up and in steady state, in one process.

`python -m bench.heapprofile --devices 1000` starts PJLink simulators in child processes
(`bench.devices`, as `bench polling` does), then runs a hub the way `avhub run` does
(`Hub`, `start`, the heap keeper's settle) in this process on the same deployment as
`bench polling` and samples, every `--every` seconds of loop time: RSS, the number of
devices online and, with `--trace`, the traced Python heap. It prints the samples, the
peak and steady figures per device and, with `--trace`, what the heap held at its peak
against what it holds at the end: by line and by the innermost frame of the hub's own
code (`--frames` deep tracebacks), plus pymalloc's arenas at the end (`--mallocstats`).

`--probe` also does what `bench polling` does while it waits for every device to be
online: a round of short-lived probe panels (one per room, ten at a time, `bench.client`)
every half second; `--probe-at T --probe-rounds N` probes N rounds once at T instead
(with `--trace`, what they left behind by line). Experiments, none of them what the hub
does: `--spread S` starts the devices at uniform(0, S) instead of the worker's stagger;
`--collect-every S` runs `gc.collect()` every S seconds, and with `--reap` first ends
Engine.IO's ping task of sockets already closed; `--tasks-at T` prints the tasks and the
objects the collector tracks at T.

`--devices 0 --rooms N` measures the same rooms without devices. Tracing slows the hub
down (and so enlarges the start-up peak): compare traced runs with traced runs, and RSS
figures from untraced ones. "RSS end - after imports" counts the configuration too, as
`bench polling` does (its empty hub has the same modules loaded).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from bench.proc import Child, Children, run_main
from bench.scenarios.polling import DETAIL_INTERVAL, start_devices
from bench.stacks import Layout, hub_config

ROOT = str(Path(__file__).resolve().parent.parent)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def ours(trace: tracemalloc.Traceback) -> str:
    """The innermost frame of the project's code (drivers/, hub/) in `trace`, as file:line."""
    for frame in reversed(trace):  # tracemalloc orders frames oldest first
        name = frame.filename
        if name.startswith(ROOT) and "/bench/" not in name:
            return f"{name[len(ROOT) + 1 :]}:{frame.lineno}"
    return f"(outside) {trace[-1].filename.rsplit('/', 2)[-1]}:{trace[-1].lineno}"


def by_ours(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    for stat in snapshot.statistics("traceback"):
        key = ours(stat.traceback)
        size, count = sizes.get(key, (0, 0))
        sizes[key] = (size + stat.size, count + stat.count)
    return sizes


def compare(
    peak: dict[str, tuple[int, int]], steady: dict[str, tuple[int, int]], devices: int, top: int
) -> None:
    keys = set(peak) | set(steady)
    rows = sorted(keys, key=lambda k: peak.get(k, (0, 0))[0] - steady.get(k, (0, 0))[0])
    per = max(devices, 1)
    print(f"{'peak B/dev':>10} {'steady B/dev':>12} {'diff':>8} {'peak n/dev':>10}  where")
    for key in reversed(rows[-top:]):
        p, pn = peak.get(key, (0, 0))
        s, _ = steady.get(key, (0, 0))
        print(f"{p / per:10.0f} {s / per:12.0f} {(p - s) / per:8.0f} {pn / per:10.2f}  {key}")
    print("largest in steady state:")
    for key in sorted(keys, key=lambda k: -steady.get(k, (0, 0))[0])[:top]:
        s, sn = steady.get(key, (0, 0))
        print(f"{s / per:10.0f} B/dev {sn / per:6.2f} blocks/dev  {key}")


def mallinfo() -> str:
    """glibc's heap (what pymalloc does not serve: blocks over 512 bytes), in MB."""
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    i = libc.mallinfo2()
    mb = 2**20
    return (
        f"heap {i.arena / mb:.2f} MB (in use {i.uordblks / mb:.2f}, free {i.fordblks / mb:.2f}),"
        f" mmapped {i.hblkhd / mb:.2f} MB"
    )


def mallocstats() -> str:
    """`sys._debugmallocstats()`'s summary lines (it writes to the C stderr)."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode()
    return text[text.index("# arenas allocated total") :]


def census() -> str:
    """The tasks by coroutine and the objects the collector tracks by type, most first."""
    tasks = Counter(getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks())
    kinds = Counter(type(o).__qualname__ for o in gc.get_objects())
    return f"tasks: {tasks.most_common(12)}\n  objects: {kinds.most_common(25)}"


def reap_pings() -> None:
    """Experiment: cancel Engine.IO's ping task of sockets already closed.

    `AsyncSocket._send_ping` sleeps `ping_interval` (25 s) holding its socket, so a panel
    that left stays in memory that long.
    """
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if getattr(coro, "__qualname__", "") != "AsyncSocket._send_ping":
            continue
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and frame.f_locals["self"].closed:
            task.cancel()


def spread_start(seconds: float) -> None:
    """Experiment: devices start at uniform(0, `seconds`) instead of the worker's stagger."""
    import drivers.worker

    class Spread:
        @staticmethod
        def uniform(low: float, high: float) -> float:
            return random.uniform(low, seconds)

    setattr(drivers.worker, "random", Spread)  # noqa: B010 (a module attribute, on purpose)


async def probe(client: Child, url: str, rooms: list[str], devices: int) -> float:
    """Probe panels (as `bench polling` does) until every device is online; seconds taken."""
    started = time.monotonic()
    while True:
        reply = await client.call("probe", url=url, rooms=rooms, timeout=120)
        if sum(on for on, _ in reply["online"].values()) == devices:
            return time.monotonic() - started
        await asyncio.sleep(0.5)


async def run_hub(
    args: argparse.Namespace, ports: list[int], client: Child | None
) -> dict[str, Any]:
    from hub.app import Hub
    from hub.config import load_config_text
    from hub.heap import Heap
    from hub.logs import setup_logging

    devices = args.devices
    rooms = args.rooms or max(devices // args.per_room, 1)
    layout = Layout(rooms, devices // rooms if devices else 0, poll_interval=args.interval)
    extra = f"lamp_interval: 60s\ndetail_interval: {DETAIL_INTERVAL}s"
    gc.collect()
    rss_imported = rss()
    if args.trace and args.trace_config:
        tracemalloc.start(args.frames)
    config = load_config_text(hub_config(layout, ports, None, extra))
    setup_logging(config.hub.log_level)
    gc.collect()
    rss0 = rss()
    print(
        f"RSS after imports {rss_imported / 2**20:.2f} MB; the config took"
        f" {(rss0 - rss_imported) / 2**20:.2f} MB; glibc: {mallinfo()}"
    )
    if args.trace and not args.trace_config:
        tracemalloc.start(args.frames)
    if args.spread:
        spread_start(args.spread)
    hub = Hub(config)
    host, port = await hub.start("127.0.0.1", 0)
    heap = Heap()
    heap.settle()
    keeper = asyncio.create_task(heap.keep(hub.rooms.values))
    probing = None
    if client is not None and not args.probe_at:
        url = f"http://{host}:{port}"
        probing = asyncio.create_task(probe(client, url, layout.room_ids, devices))
    loop = asyncio.get_running_loop()
    start = loop.time()
    samples: list[tuple[float, int, int, int]] = []
    peak_snap: tracemalloc.Snapshot | None = None
    snap_at = 0
    online_at: float | None = None
    collected = 0.0
    probed: int | None = None
    try:
        while loop.time() - start < args.seconds:
            await asyncio.sleep(args.every)
            now = loop.time() - start
            online = sum(room.online() for room in hub.rooms.values())
            traced = tracemalloc.get_traced_memory()[0] if args.trace else 0
            samples.append((now, rss(), traced, online))
            if args.probe_at and client is not None and now >= args.probe_at and probed is None:
                gc.collect()
                before = tracemalloc.take_snapshot() if args.trace else None
                rss_before = rss()
                url = f"http://{host}:{port}"
                for _ in range(args.probe_rounds):
                    await client.call("probe", url=url, rooms=layout.room_ids, timeout=120)
                gc.collect()
                probed = rss() - rss_before
                print(
                    f"t={now:6.2f}s {args.probe_rounds} probe rounds: RSS +{probed / 2**20:.2f} MB"
                )
                if before is not None:
                    after = tracemalloc.take_snapshot()
                    for stat in after.compare_to(before, "lineno")[: args.top]:
                        print(f"{stat.size_diff:+9d} B {stat.count_diff:+6d}  {stat.traceback}")
            if args.tasks_at and now >= args.tasks_at:
                args.tasks_at = 0.0
                print(f"t={now:6.2f}s {census()}")
            if args.collect_every and now >= collected + args.collect_every:
                collected = now
                if args.reap:
                    reap_pings()
                    await asyncio.sleep(0)
                print(f"t={now:6.2f}s collected {gc.collect()}")
            if online_at is None and online == devices:
                online_at = now
            if args.snap and args.trace and now < args.snap_until and traced > snap_at * 1.02:
                peak_snap = tracemalloc.take_snapshot()
                snap_at = traced
        steady = tracemalloc.take_snapshot() if args.trace else None
        traced_peak = tracemalloc.get_traced_memory()[1] if args.trace else 0
        stats = mallocstats() if args.mallocstats else ""
        glibc = mallinfo()
    finally:
        keeper.cancel()
        await hub.stop()
    per = max(devices, 1)
    for t, r, tr, on in samples[:: max(1, int(args.print_every / args.every))]:
        print(
            f"t={t:6.2f}s rss={(r - rss0) / 2**20:7.2f} MB traced={tr / 2**20:6.2f} MB online={on}"
        )
    final = samples[-1]
    print(f"all online after {online_at}s")
    if probing is not None:
        print(f"probe saw all online after {probing.result():.2f}s; heap sweeps {heap.sweeps}")
    print(f"RSS at start {rss0 / 2**20:.2f} MB, max {max(s[1] for s in samples) / 2**20:.2f} MB,")
    print(
        f"  end {final[1] / 2**20:.2f} MB; (end - start) per device {(final[1] - rss0) / per:.0f} B"
    )
    if args.trace:
        print(
            f"traced: peak {traced_peak / per:.0f} B/dev (snapshot at {snap_at / per:.0f}),"
            f" end {final[2] / per:.0f} B/dev"
        )
    print(f"RSS end - after imports: {(final[1] - rss_imported) / per:.0f} B/dev; glibc: {glibc}")
    if stats:
        print(stats)
    if peak_snap is not None and steady is not None:
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        peak_snap = peak_snap.filter_traces(filters)
        steady = steady.filter_traces(filters)
        print("\n== by the innermost frame of the hub's code ==")
        compare(by_ours(peak_snap), by_ours(steady), devices, args.top)
        print("\n== by line ==")
        bl = {str(s.traceback[0]): (s.size, s.count) for s in peak_snap.statistics("lineno")}
        bs = {str(s.traceback[0]): (s.size, s.count) for s in steady.statistics("lineno")}
        compare(bl, bs, devices, args.top)
    return {"rss0": rss0, "rss_end": final[1], "online_at": online_at}


async def main(args: argparse.Namespace) -> None:
    rundir = Path(tempfile.mkdtemp(prefix="heapprofile-"))
    async with Children(rundir) as children:
        ports: list[int] = []
        if args.devices:
            _, ports = await start_devices(children, args.devices, args.sim_procs)
        began = time.monotonic()
        client = await children.python("client0", "bench.client") if args.probe else None
        await run_hub(args, ports, client)
        print(f"hub run took {time.monotonic() - began:.1f}s")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=0, help="default: devices / per-room")
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--sim-procs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0, help="how long the hub runs")
    parser.add_argument("--every", type=float, default=0.01, help="sampling period (s)")
    parser.add_argument("--print-every", type=float, default=0.25)
    parser.add_argument("--trace", action="store_true", help="trace the heap (tracemalloc)")
    parser.add_argument("--frames", type=int, default=16, help="traceback depth when tracing")
    parser.add_argument("--snap", action="store_true", help="snapshot the traced peak")
    parser.add_argument("--snap-until", type=float, default=6.0, help="look for it this long")
    parser.add_argument("--mallocstats", action="store_true")
    parser.add_argument("--tasks-at", type=float, default=0.0, help="list tasks then (s)")
    parser.add_argument("--spread", type=float, default=0.0, help="experiment: start-up stagger")
    parser.add_argument(
        "--reap", action="store_true", help="with --collect-every: end closed sockets' pings"
    )
    parser.add_argument("--trace-config", action="store_true", help="trace loading it too")
    parser.add_argument("--probe-at", type=float, default=0.0, help="probe once then (s)")
    parser.add_argument("--probe-rounds", type=int, default=1)
    parser.add_argument("--collect-every", type=float, default=0.0, help="gc.collect() (s)")
    parser.add_argument("--probe", action="store_true", help="probe panels, as bench polling")
    parser.add_argument("--top", type=int, default=30)
    return parser.parse_args(argv)


if __name__ == "__main__":
    out = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    sys.stdout = out
    run_main(main(parse()))
