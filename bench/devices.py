"""The device process: PJLink simulators whose changes are stamped as their bytes leave.

`python -m bench.devices --count N` starts N simulators (powered on, class 2 UDP
notifications on) on ephemeral loopback ports and is driven over JSON lines. A
change sets a device's error digits to its next mark (`bench.marks`): the
simulator sends the `%2ERST` notification at once, and the time is taken when
`sendto` has returned. Polls are answered as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from bench import control
from bench.churn import Marks, churn
from bench.marks import digits
from simulators.base import start_many
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator

KNOBS = {"power": "on", "warmup": 0, "cooldown": 0, "udp": True, "idle_timeout": 3600}


class Devices:
    """N simulators and the marks their changes carry."""

    def __init__(self, sims: list[PjlinkSimulator]) -> None:
        self.sims = sims
        self.marks = Marks(len(sims))
        self._sent = 0.0
        for sim in sims:
            sim.add_send_listener(self._stamp)

    def _stamp(self, datagram: bytes) -> None:
        self._sent = time.time()

    async def _change(self, index: int, mark: int) -> float:
        self._sent = 0.0
        self.sims[index].set_errors(digits(mark))
        if not self._sent:
            raise RuntimeError("no notification was sent; is notify set?")
        return self._sent

    async def op_notify(self, to: str, targets: list[int] | None = None) -> dict[str, Any]:
        """Send class 2 notifications to HOST:PORT from now on (of `targets`, default all)."""
        for index in range(len(self.sims)) if targets is None else targets:
            self.sims[index].knobs.notify = to
        return {}

    async def op_churn(
        self, rate: float, seconds: float, order: list[int] | None = None
    ) -> dict[str, Any]:
        """`rate` changes a second for `seconds`, cycling over `order` (default: all)."""
        order = order if order is not None else list(range(len(self.sims)))
        return await churn(self._change, self.marks, order, rate, seconds)

    async def op_received(self) -> dict[str, Any]:
        """Commands answered so far, over all simulators."""
        return {"received": sum(sum(sim.received.values()) for sim in self.sims)}

    async def op_bump(self, targets: list[int]) -> dict[str, Any]:
        """One change on each target device, now."""
        writes = []
        for index in targets:
            mark = self.marks.next(index)
            writes.append((index, mark, await self._change(index, mark)))
        return {"writes": writes}


async def main(count: int) -> None:
    knobs = PjlinkKnobs.model_validate(KNOBS)
    sims = await start_many(lambda: PjlinkSimulator(knobs.model_copy(deep=True)), count)
    devices = Devices(sims)
    try:
        await control.serve(devices, {"pid": os.getpid(), "ports": [s.port for s in sims]})
    finally:
        await asyncio.gather(*(sim.stop() for sim in sims))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.devices")
    parser.add_argument("--count", type=int, required=True)
    control.setup_logging()
    asyncio.run(main(parser.parse_args().count))
