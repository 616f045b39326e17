"""What a driver counts for the hub's `/metrics`: plain integers bumped where things happen.

The hub reads a `DeviceStats` when it is scraped; nothing here knows Prometheus, and
counting costs an integer increment (a bisect for a request's latency).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from types import MappingProxyType

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Upper bounds (seconds, inclusive) of the request latency histogram; +Inf follows."""

_NONE: Mapping[str, int] = MappingProxyType({})


class DeviceStats:
    """Counts of one driver since it started; read, never reset."""

    __slots__ = (
        "buckets",
        "commands",
        "connects",
        "latency_sum",
        "offline",
        "requests",
        "retries",
        "timeouts",
    )

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        """Answered requests per latency bucket (not cumulative); the last is above 5 s."""
        self.requests = 0
        """Requests the device answered (each try counts)."""
        self.latency_sum = 0.0
        self.timeouts = 0
        """Requests (login included) that got no answer in time."""
        self.retries = 0
        """Requests tried again after a timeout or a lost connection."""
        self.connects = 0
        """Connections opened and logged in."""
        # Both start as one shared empty mapping and become the device's own at the first
        # count: most devices of a hub never go offline, many never get a command.
        self.offline: Mapping[str, int] = _NONE
        """Times the device went from online to offline, by offline reason."""
        self.commands: Mapping[str, int] = _NONE
        """Commands for this device by result: `ok` or the error code (counted by the hub)."""

    def observe(self, seconds: float, count: int = 1) -> None:
        """`count` answered requests that each took `seconds` from write to reply."""
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += count
        self.requests += count
        self.latency_sum += seconds * count

    def went_offline(self, reason: str) -> None:
        self.offline = {**self.offline, reason: self.offline.get(reason, 0) + 1}

    def command(self, result: str) -> None:
        self.commands = {**self.commands, result: self.commands.get(result, 0) + 1}

    @property
    def reconnects(self) -> int:
        """Connections opened after the first."""
        return max(self.connects - 1, 0)
