"""Change marks: the n-th change of a device sets its PJLink error digits to n in base 3.

Consecutive marks always differ (so every one is a real change), the value rides
on an ordinary state key (`errors`, pushed by class 2 `%2ERST` notifications) and
a panel can read the mark back from the `errors` object of a `change` event.
Marks repeat after 729 changes of one device; a receipt is matched to the latest
write of its mark before it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from drivers.pjlink.codec import ERROR_FIELDS, ERROR_LEVELS, parse_errors

CYCLE = 3 ** len(ERROR_FIELDS)
_LEVEL = {name: int(digit) for digit, name in ERROR_LEVELS.items()}


def digits(mark: int) -> str:
    """Mark → the six ERST digits, e.g. 5 → `000012`."""
    n, out = mark % CYCLE, []
    for _ in ERROR_FIELDS:
        n, d = divmod(n, 3)
        out.append(str(d))
    return "".join(reversed(out))


def errors_state(mark: int) -> dict[str, str]:
    """Mark → the `errors` state value the hub publishes for it."""
    return parse_errors(digits(mark))


def mark_of(errors: Mapping[str, Any]) -> int:
    """The `errors` state value → its mark (mod CYCLE); -1 when it is not one."""
    n = 0
    for name in ERROR_FIELDS:
        level = _LEVEL.get(errors.get(name, ""), -1)
        if level < 0:
            return -1
        n = n * 3 + level
    return n


class WriteLog:
    """When each (device key, mark) was written by the source, for matching receipts."""

    def __init__(self, writes: Iterable[tuple[str, int, float]]) -> None:
        self._times: dict[tuple[str, int], list[float]] = {}
        for key, mark, t in writes:
            self._times.setdefault((key, mark % CYCLE), []).append(t)
        for times in self._times.values():
            times.sort()
        self.count = sum(len(t) for t in self._times.values())

    def written(self, key: str, mark: int, received: float) -> float | None:
        """The latest write of `mark` to `key` at or before `received`."""
        times = self._times.get((key, mark))
        if not times:
            return None
        i = bisect_right(times, received)
        return times[i - 1] if i else None
