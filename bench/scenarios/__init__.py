"""The benchmark scenarios; each has `add_arguments(parser)` and `async run(args, rundir)`."""

from __future__ import annotations

from types import ModuleType

from bench.scenarios import fanout, latency, panels, polling, resync, scaleout

SCENARIOS: dict[str, ModuleType] = {
    "latency": latency,
    "fanout": fanout,
    "panels": panels,
    "resync": resync,
    "polling": polling,
    "scaleout": scaleout,
}
