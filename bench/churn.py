"""A paced change loop shared by the device process and the baseline server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Apply = Callable[[int, int], Awaitable[float]]
"""Make change number `mark` on device `index`; returns when its bytes were written."""

MAX_CHANGES = 1_000_000


class Marks:
    """The next mark of each device; marks only grow, so consecutive values differ."""

    def __init__(self, count: int) -> None:
        self._last = [0] * count

    def next(self, index: int) -> int:
        self._last[index] += 1
        return self._last[index]


async def churn(
    apply: Apply,
    marks: Marks,
    order: Sequence[int],
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """Make `rate` changes a second for `seconds`, cycling over `order`.

    Changes that fall due together are made back to back. Every change is logged as
    `[device index, mark, write time]` with the time `apply` reports.
    """
    if rate <= 0 or not order:
        return {"writes": [], "seconds": 0.0}
    loop = asyncio.get_running_loop()
    total = min(int(rate * seconds), MAX_CHANGES)
    writes: list[tuple[int, int, float]] = []
    start = loop.time()
    n = 0
    while n < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while n < due:
            index = order[n % len(order)]
            mark = marks.next(index)
            writes.append((index, mark, await apply(index, mark)))
            n += 1
        wait = start + n / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            await asyncio.sleep(0)
    return {"writes": writes, "seconds": loop.time() - start}
