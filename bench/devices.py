"""The device process: simulators whose changes are stamped as their bytes leave.

`python -m bench.devices --count N [--kind pjlink|extron_sis]` starts N simulators
on ephemeral loopback ports and is driven over JSON lines.

- `pjlink` (the default): projectors, powered on, class 2 UDP notifications on. A
  change sets a device's error digits to its next mark (`bench.marks`): the
  simulator sends the `%2ERST` notification at once, and the time is taken when
  `sendto` has returned. Polls are answered as usual.
- `extron_sis`: 8x8 matrix switchers with audio, volume and mutes, no password (the
  resync scenario's big room). A change is a front-panel tie of output 1 to the
  next input, pushed to the hub's verbose session; the time is taken once it is queued.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from bench import control
from bench.churn import Marks, churn
from bench.marks import digits
from simulators.base import start_many
from simulators.extron_sis import ExtronKnobs, ExtronSimulator
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator

KNOBS = {"power": "on", "warmup": 0, "cooldown": 0, "udp": True, "idle_timeout": 3600}
EXTRON_KNOBS = {"idle_timeout": None}
KINDS = ("pjlink", "extron_sis")

Sim = PjlinkSimulator | ExtronSimulator


class Devices:
    """N simulators and the marks their changes carry."""

    def __init__(self, sims: Sequence[Sim]) -> None:
        self.sims = sims
        self.marks = Marks(len(sims))
        self._sent = 0.0
        for sim in sims:
            if isinstance(sim, PjlinkSimulator):
                sim.add_send_listener(self._stamp)

    def _stamp(self, datagram: bytes) -> None:
        self._sent = time.time()

    async def _change(self, index: int, mark: int) -> float:
        sim = self.sims[index]
        if isinstance(sim, ExtronSimulator):
            sim.press_tie(mark % sim.knobs.inputs + 1, 1)
            return time.time()
        self._sent = 0.0
        sim.set_errors(digits(mark))
        if not self._sent:
            raise RuntimeError("no notification was sent; is notify set?")
        return self._sent

    async def op_notify(self, to: str, targets: list[int] | None = None) -> dict[str, Any]:
        """Send PJLink class 2 notifications to HOST:PORT from now on (of `targets`, default all)."""
        for index in range(len(self.sims)) if targets is None else targets:
            sim = self.sims[index]
            if isinstance(sim, PjlinkSimulator):
                sim.knobs.notify = to
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


async def start(kind: str, count: int) -> Sequence[Sim]:
    """`count` simulators of `kind`, each on its own ephemeral loopback port."""
    if kind == "extron_sis":
        extron = ExtronKnobs.model_validate(EXTRON_KNOBS)
        return await start_many(lambda: ExtronSimulator(extron.model_copy(deep=True)), count)
    knobs = PjlinkKnobs.model_validate(KNOBS)
    return await start_many(lambda: PjlinkSimulator(knobs.model_copy(deep=True)), count)


async def main(kind: str, count: int) -> None:
    sims = await start(kind, count)
    devices = Devices(sims)
    try:
        await control.serve(devices, {"pid": os.getpid(), "ports": [s.port for s in sims]})
    finally:
        await asyncio.gather(*(sim.stop() for sim in sims))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.devices")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--kind", choices=KINDS, default="pjlink")
    control.setup_logging()
    args = parser.parse_args()
    asyncio.run(main(args.kind, args.count))
