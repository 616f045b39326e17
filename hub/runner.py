"""Running a hub process: optional simulators, the hub, reload on SIGHUP, clean shutdown on
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TextIO

from hub.app import Hub
from hub.config import Config
from hub.guard import exposure_warnings
from hub.heap import Heap
from hub.reload import Reloader
from hub.simulate import Simulators

log = logging.getLogger("avhub")


def print_urls(hub: Hub, out: TextIO = sys.stdout) -> None:
    """The hub URL and each room's panel/namespace URL, one per line."""
    assert hub.address is not None
    host, port = hub.address
    base = f"http://{host}:{port}"
    print(f"avhub listening on {base}", file=out)
    for room_id, room in hub.rooms.items():
        print(f"  room {room_id} ({room.name}): {base}/rooms/{room_id}", file=out)
    print("press Ctrl+C to stop", file=out)
    out.flush()


async def serve(
    config: Config,
    listen: tuple[str, int] | None = None,
    simulate: bool = False,
    path: str | Path | None = None,
) -> int:
    """Run until SIGINT/SIGTERM, reloading `path` on SIGHUP; returns the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sims = Simulators()
    hub: Hub | None = None
    keeper: asyncio.Task[None] | None = None
    try:
        for warning in exposure_warnings(config, listen[0] if listen is not None else None):
            log.warning("%s", warning)
        if simulate:
            config = await sims.start_for(config)
            log.info("started %d simulators on loopback", len(sims))
        hub = Hub(config)
        host, port = listen if listen is not None else (None, None)
        await hub.start(host, port)
        sims.aim_at(hub.services)
        heap = hub.heap = Heap()
        heap.settle()
        keeper = loop.create_task(heap.keep(hub.rooms.values), name="avhub-heap")
        if path is not None:
            hub.reloader = Reloader(hub, path, sims if simulate else None, heap)
            loop.add_signal_handler(signal.SIGHUP, hub.reloader.soon)
        print_urls(hub)
        await stop.wait()
        log.info("shutting down")
    finally:
        if keeper is not None:
            keeper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if hub is not None:
            await hub.stop()
        await sims.stop()
    return 0
