"""`python -m bench.clientcost`: what receiving a change costs each panel client, per delivery.

The same changes, emitted by the baseline server to the same panels, are received
once by `bench.client` (raw WebSockets) and once by `bench.sioclient`
(python-socketio `AsyncClient`); the client process's CPU seconds per delivery
decide which client the scenarios can afford.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.proc import Children, CpuMeter, run_main
from bench.stacks import BaselineStack, Layout


async def measure(kind: str, args: argparse.Namespace, logs: Path) -> dict[str, float]:
    layout = Layout(args.rooms, 1)
    async with Children(logs) as children:
        stack = BaselineStack(children, layout, {})
        await stack.start()
        client = await children.python(kind, f"bench.{kind}")
        await client.call("connect", url=stack.url, rooms=layout.room_ids, per_room=args.panels)
        await asyncio.sleep(1)
        await client.call("record", on=True)
        start = (await client.call("count"))["receipts"]
        meter = CpuMeter({"client": client})
        meter.start()
        await stack.churn(args.rate, args.seconds)
        await asyncio.sleep(1)
        cpu = meter.stop()
        got = (await client.call("count"))["receipts"] - start
    per = 1e6 * cpu["client"] / got if got else float("nan")
    return {"deliveries": got, "cpu_s": cpu["client"], "us_per_delivery": per}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as logs:
        for kind in ("client", "sioclient"):
            result = await measure(kind, args, Path(logs))
            print(
                f"{kind:10s} {result['deliveries']:>7.0f} deliveries, "
                f"{result['cpu_s']:.2f} CPU-s, {result['us_per_delivery']:.1f} µs per delivery"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clientcost", description=__doc__)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--panels", type=int, default=20, help="panels per room")
    parser.add_argument("--rate", type=float, default=50, help="changes per second")
    parser.add_argument("--seconds", type=float, default=10)
    run_main(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
