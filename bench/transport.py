"""`python -m bench.transport`: how a committed change reaches the other hubs, measured.

Two candidates for carrying changes between hubs, on one redis-server on loopback:

- **stream**: the commit script appends to the room's stream (as `hub.store: redis://`
  does); every hub blocks in `XREAD` on the streams and reads entries in `seq` order.
- **pubsub**: the commit script also `PUBLISH`es the change; every hub subscribes. Pub/sub
  drops whatever is published while a subscriber is disconnected, so a hub still needs
  the stream to catch up after a reconnect (two paths, and a merge of them, per hub).

For each, a writer commits changes at a fixed rate and `--readers` readers (standing for
the other hubs) take them; reported: delivery latency (commit sent → reader has it),
this process's CPU per delivery (writer and readers) and redis-server's CPU per change.
python-socketio's `AsyncRedisManager` sends emits over the same pub/sub, pickled, to
be re-emitted by each server; it is the pubsub row plus pickling and Socket.IO's emit
path, and it has pub/sub's gap on reconnect with no `seq` to notice it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from collections.abc import Awaitable
from typing import Any, cast

from redis.asyncio import Redis

from bench.proc import cpu_seconds
from bench.stats import summary_ms

REDIS_SERVER = os.environ.get("AVHUB_REDIS_SERVER", "redis-server")
COMMIT = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, seq .. '-0', 'd', 'p00', 's', ARGV[1], 't', ARGV[2])
if ARGV[3] == '1' then redis.call('PUBLISH', KEYS[3], seq .. ' ' .. ARGV[2]) end
return seq
"""


async def stream_reader(redis: Redis, got: list[float], count: int) -> None:
    last = "0-0"
    while len(got) < count:
        reply = await redis.xread({"bench:log": last}, count=1000, block=1000)
        for _, entries in reply or ():
            for entry_id, fields in entries:
                got.append(time.time() - float(fields["t"]))
                last = entry_id


async def pubsub_reader(redis: Redis, got: list[float], count: int, ready: asyncio.Event) -> None:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench:changes")
    ready.set()
    try:
        while len(got) < count:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                got.append(time.time() - float(message["data"].split()[1]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def measure(
    port: int, kind: str, rate: float, count: int, readers: int, pid: int
) -> dict[str, Any]:
    writer = Redis(port=port, decode_responses=True)
    clients = [Redis(port=port, decode_responses=True) for _ in range(readers)]
    await writer.flushall()
    sha = await cast(Awaitable[str], writer.script_load(COMMIT))
    got: list[list[float]] = [[] for _ in range(readers)]
    tasks: list[asyncio.Task[None]] = []
    for client, sink in zip(clients, got, strict=True):
        if kind == "stream":
            tasks.append(asyncio.create_task(stream_reader(client, sink, count)))
        else:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(pubsub_reader(client, sink, count, ready)))
            await ready.wait()
    await asyncio.sleep(0.2)
    payload = json.dumps({"errors": {"lamp": "ok", "fan": "ok"}})
    publish = "1" if kind == "pubsub" else "0"
    mine, theirs = time.process_time(), cpu_seconds(pid)
    start = time.perf_counter()
    for n in range(count):
        keys = ["bench:meta", "bench:log", "bench:changes"]
        await cast(
            Awaitable[Any], writer.evalsha(sha, 3, *keys, payload, repr(time.time()), publish)
        )
        delay = start + (n + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    mine, theirs = time.process_time() - mine, cpu_seconds(pid) - theirs
    for client in (writer, *clients):
        await client.aclose()
    latencies = [x for sink in got for x in sink]
    return {
        "kind": kind,
        "deliveries": len(latencies),
        "latency": summary_ms(latencies),
        "hub_cpu_us_per_delivery": 1e6 * mine / len(latencies),
        "redis_cpu_us_per_change": 1e6 * theirs / count,
    }


async def main(args: argparse.Namespace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = await asyncio.create_subprocess_exec(
        *argv, "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_for_port(port)
        for kind in ("stream", "pubsub"):
            result = await measure(port, kind, args.rate, args.count, args.readers, proc.pid)
            lat = result["latency"]
            print(
                f"{kind:7s} p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  "
                f"hub CPU {result['hub_cpu_us_per_delivery']:.0f} µs/delivery  "
                f"redis CPU {result['redis_cpu_us_per_change']:.0f} µs/change  "
                f"({result['deliveries']} deliveries)",
                flush=True,
            )
    finally:
        proc.terminate()
        await proc.wait()


async def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("redis-server did not start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    parser.add_argument("--rate", type=float, default=500, help="changes per second")
    parser.add_argument("--count", type=int, default=5000, help="changes per candidate")
    parser.add_argument("--readers", type=int, default=2, help="readers (the other hubs)")
    asyncio.run(main(parser.parse_args()))
