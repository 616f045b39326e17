"""`python -m bench.floor`: the reconnect handshake with no server work, the floor under resync.

The bench's panel client (`bench.wire.WsClient`, as `bench resync` uses it) connects to
a bare asyncio server in another process that answers the WebSocket upgrade with the
101 and Engine.IO's OPEN in one write, and the namespace CONNECT with the CONNECT
reply, from fixed bytes: TCP, the client's work and the kernel's, nothing of aiohttp,
Engine.IO or Socket.IO. And to a hub with one room of `--devices` projectors, resuming at
its seq once the room holds still: nothing to replay (`bench resync`'s `connect` path,
without the orchestration around it); with `--before REF`, to the hub of commit REF as
well, on the same configuration; with `--redis`, to a hub on `store: redis://`. The
servers take turns, `--connects` each per round, so that drift on a shared machine
falls on all alike. The medians say how much of a reconnect is the hub's to save.
Both ends idle between connects (`--gap`), and how long decides how much of a connect
is waking up: compare the rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proc import Children, run_main
from bench.scenarios.scaleout import ClusterStack
from bench.stacks import HubStack, Layout, export_source, start_hub
from bench.stats import summary_ms
from bench.wire import EIO_PATH, WsClient, sio_connect
from hub.fanout import ws_frame

UPGRADE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
) + ws_frame(
    b'0{"sid":"floor","upgrades":[],"pingTimeout":20000,"pingInterval":25000,"maxPayload":1000000}'
)


QUIET = 0.5  # seconds without a change before the room counts as still


class FixedServer(asyncio.Protocol):
    """Answers the upgrade request and every later frame (the CONNECT) with fixed bytes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.head = b""
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            namespace = data[data.find(b"/") : data.find(b",")]  # from `40/rooms/x,{...}`
            self.transport.write(ws_frame(b"40" + namespace + b',{"sid":"floor"}'))
            return
        self.head += data
        if b"\r\n\r\n" in self.head:
            self.upgraded = True
            self.transport.write(UPGRADE)


async def serve() -> None:
    """The fixed server on a free loopback port; prints the port, runs until killed."""
    server = await asyncio.get_running_loop().create_server(FixedServer, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


async def connect_once(
    port: int, namespace: str, auth: dict[str, Any], until: str = "40"
) -> tuple[float, str]:
    """Open a socket and join `namespace`: the seconds until the first packet starting
    with `until` (by default the CONNECT reply) arrives, and that packet."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    holder: list[WsClient] = []

    def on_text(text: str) -> None:
        if text[0] == "0":
            holder[0].send_text(sio_connect(namespace, auth))
        elif text.startswith(until) and not done.done():
            done.set_result(text)

    started = time.perf_counter()
    _, ws = await loop.create_connection(
        lambda: WsClient("127.0.0.1", port, EIO_PATH, on_text, lambda: None), "127.0.0.1", port
    )
    holder.append(ws)
    async with asyncio.timeout(10):
        text = await done
    took = time.perf_counter() - started
    ws.close()
    return took, text


async def resume_point(port: int, namespace: str) -> dict[str, Any]:
    """`auth` that resumes at the room's seq once it holds still for `QUIET` seconds: nothing
    to replay, no snapshot (a hub just started is still taking in its devices' state)."""
    prefix = f'42{namespace},["snapshot",'
    last: dict[str, Any] | None = None
    for _ in range(100):
        _, text = await connect_once(port, namespace, {}, until=prefix)
        data = json.loads(text[len(prefix) : -1])
        point = {"resume": {"epoch": data["epoch"], "seq": data["seq"]}}
        if point == last:
            return point
        last = point
        await asyncio.sleep(QUIET)
    raise RuntimeError(f"the room of port {port} did not hold still for {QUIET} s")


async def series(
    port: int, namespace: str, count: int, auth: dict[str, Any], gap: float
) -> list[float]:
    times = []
    for _ in range(count):
        times.append((await connect_once(port, namespace, auth))[0])
        await asyncio.sleep(gap)  # idle between connects, as a panel would be
    return times


async def main(args: argparse.Namespace) -> None:
    floor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.floor", "--serve", stdout=asyncio.subprocess.PIPE
    )
    layout = Layout(1, args.devices, poll_interval=30.0)
    namespace = f"/rooms/{layout.room_ids[0]}"
    try:
        assert floor.stdout is not None
        servers = [("fixed bytes (the floor)", json.loads(await floor.stdout.readline())["port"])]
        with tempfile.TemporaryDirectory() as logs:
            async with Children(Path(logs)) as children:
                stack = HubStack(children, layout, Path(logs), notify=False)
                await stack.start()
                servers.append(("avhub, nothing missed", stack.port))
                if args.before:  # the same configuration, the hub of another commit
                    source = export_source(args.before, Path(logs) / "before-src")
                    _, url = await start_hub(children, "before", stack.config, source=source)
                    servers.append(
                        (f"avhub {args.before}, nothing missed", int(url.split(":")[-1]))
                    )
                if args.redis:  # the same room with `store: redis://`, one hub
                    (Path(logs) / "redis").mkdir()
                    cluster = ClusterStack(children, layout, Path(logs) / "redis", 1)
                    await cluster.start()
                    servers.append(("avhub, store: redis, nothing missed", cluster.port))
                times = await rounds(servers, namespace, args)
    finally:
        floor.kill()
        await floor.wait()
    print(f"{'connect, ms':<40}{'p50':>8}{'p99':>8}")
    rows = {name: summary_ms(samples) for name, samples in times.items()}
    for name, row in rows.items():
        print(f"{name:<40}{row['p50_ms']:>8.3f}{row['p99_ms']:>8.3f}")
    base = rows[servers[0][0]]["p50_ms"]
    for name, _ in servers[1:]:
        print(f"{name}: the hub's share of the p50 {rows[name]['p50_ms'] - base:.3f} ms")


async def rounds(
    servers: list[tuple[str, int]], namespace: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    """`--rounds` rounds, each server `--connects` times in turn (drift on a shared
    machine falls on every server alike); every connect's seconds, by server."""
    auths = {
        name: {} if i == 0 else await resume_point(port, namespace)
        for i, (name, port) in enumerate(servers)
    }
    times: dict[str, list[float]] = {name: [] for name, _ in servers}
    for name, port in servers:
        await series(port, namespace, 50, auths[name], args.gap)  # warm both ends
    for _ in range(args.rounds):
        for name, port in servers:
            times[name] += await series(port, namespace, args.connects, auths[name], args.gap)
    for name, port in servers[1:]:
        if await resume_point(port, namespace) != auths[name]:
            print(f"{name}: the room changed during the run, later connects replayed changes")
    return times


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--connects", type=int, default=200, help="per server and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", metavar="REF", help="also the hub of git commit REF")
    parser.add_argument("--devices", type=int, default=1, help="PJLink projectors in the room")
    parser.add_argument(
        "--redis", action="store_true", help="also a hub on `store: redis://` (and a redis-server)"
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.002,
        help="seconds between connects; the longer, the more of each is waking up "
        "(both ends' CPUs go idle): on the 2-CPU VM the floor is 0.27 ms at 0, 0.40 at 2 ms",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    run_main(serve() if cli.serve else main(cli))
