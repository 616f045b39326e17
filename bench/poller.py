"""The polling baseline: the least asyncio code that polls PJLink projectors like the hub does.

`python -m bench.poller` keeps one connection per projector and sends what the PJLink
driver sends to a projector that is on, with its default intervals: every `interval`
POWR, INPT, AVMT; every `detail_interval` ERST, IRES, FREZ; LAMP and FILT every
`lamp_interval`; the information requests once per connection. One request at a time,
each waiting for its reply line. No parsing, no state, no retries beyond
reconnecting: the floor a hub's polling cost is set against.

With `driver="extron_sis"` it polls Extron switchers as the hub's driver does: after
setting verbose mode 3, every `interval` the video and audio tie tables and the mute
table, the three written at once (`EXTRON_POLL`) and the answer lines read as they
come: the floor for pipelined polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from bench import control

STATUS = [b"%1POWR ?\r", b"%2INPT ?\r", b"%1AVMT ?\r"]
DETAIL = [b"%1ERST ?\r", b"%2IRES ?\r", b"%2FREZ ?\r"]
LAMP = [b"%1LAMP ?\r", b"%2FILT ?\r"]
EXTRON_VERBOSE = b"\x1b3CV\r"
EXTRON_POLL = [b"\x1b0*1*1VC\r", b"\x1b0*1*2VC\r", b"\x1bVM\r"]
INFO = [
    b"%1CLSS ?\r",
    b"%1INF1 ?\r",
    b"%1INF2 ?\r",
    b"%1INFO ?\r",
    b"%1NAME ?\r",
    b"%2INST ?\r",
    b"%2SNUM ?\r",
    b"%2SVER ?\r",
    b"%2RRES ?\r",
]


Session = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Poller:
    """One task per projector."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.replies = 0
        self.errors = 0

    async def _keep_polling(self, port: int, interval: float, session: Session) -> None:
        """Connect (after a random stagger) and run `session`; connect again when it fails."""
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    await session(reader, writer)
                finally:
                    writer.close()
            except (OSError, asyncio.IncompleteReadError):
                self.errors += 1
                await asyncio.sleep(1.0)

    async def _projector(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        interval: float,
        detail_interval: float,
        lamp_interval: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        await reader.readuntil(b"\r")  # greeting
        for request in INFO:
            await self._ask(reader, writer, request)
        due = detail_due = lamp_due = loop.time()
        while True:
            for request in STATUS:
                await self._ask(reader, writer, request)
            if loop.time() >= detail_due:
                for request in DETAIL:
                    await self._ask(reader, writer, request)
                detail_due += max(detail_interval, interval)
            if loop.time() >= lamp_due:
                for request in LAMP:
                    await self._ask(reader, writer, request)
                lamp_due += lamp_interval
            due = max(due + interval, loop.time())  # polls missed (paused, late) are skipped
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _switcher(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, interval: float
    ) -> None:
        loop = asyncio.get_running_loop()
        poll = b"".join(EXTRON_POLL)
        writer.write(EXTRON_VERBOSE)
        await reader.readuntil(b"Vrb3\r\n")  # after the banner and the date
        due = loop.time()
        while True:
            writer.write(poll)
            for _ in EXTRON_POLL:
                await reader.readuntil(b"\n")
            self.replies += len(EXTRON_POLL)
            due = max(due + interval, loop.time())  # polls missed (paused, late) are skipped
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _ask(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> None:
        writer.write(request)
        await reader.readuntil(b"\r")
        self.replies += 1

    async def op_poll(
        self,
        ports: list[int],
        interval: float,
        detail_interval: float = 10.0,
        lamp_interval: float = 60.0,
        driver: str = "pjlink",
    ) -> dict[str, Any]:
        """Start polling every projector (or Extron switcher) in `ports`."""
        session: Session
        if driver == "extron_sis":
            session = partial(self._switcher, interval=interval)
        else:
            session = partial(
                self._projector,
                interval=interval,
                detail_interval=detail_interval,
                lamp_interval=lamp_interval,
            )
        for port in ports:
            self.tasks.append(asyncio.create_task(self._keep_polling(port, interval, session)))
        return {"devices": len(self.tasks)}

    async def op_stats(self) -> dict[str, Any]:
        return {"replies": self.replies, "errors": self.errors}

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def main() -> None:
    poller = Poller()
    try:
        await control.serve(poller, {"pid": os.getpid()})
    finally:
        await poller.stop()


if __name__ == "__main__":
    control.setup_logging()
    asyncio.run(main())
