"""Running a hub process: optional simulators, the hub, clean shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

from hub.app import Hub
from hub.config import Config
from hub.simulate import Simulators

log = logging.getLogger("avhub")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    """One readable line per event on stderr."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("aiohttp.access", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


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
    config: Config, listen: tuple[str, int] | None = None, simulate: bool = False
) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sims = Simulators()
    hub: Hub | None = None
    try:
        if simulate:
            config = await sims.start_for(config)
            log.info("started %d simulators on loopback", len(sims))
        hub = Hub(config)
        host, port = listen if listen is not None else (None, None)
        await hub.start(host, port)
        sims.aim_at(hub.services)
        print_urls(hub)
        await stop.wait()
        log.info("shutting down")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if hub is not None:
            await hub.stop()
        await sims.stop()
    return 0
