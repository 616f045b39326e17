"""Latency summaries, receipt matching, machine description and result tables."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.marks import WriteLog

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, p99, max (milliseconds) of durations given in seconds."""
    values = sorted(seconds)
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": (values[-1] if values else float("nan")) * 1000,
    }


def match_receipts(
    writes: list[tuple[str, int, float]], receipts: list[dict[str, Any]]
) -> tuple[list[float], int]:
    """Latency of every receipt matched to its write; also the number left unmatched."""
    log = WriteLog(writes)
    latencies: list[float] = []
    unmatched = 0
    for dump in receipts:
        keys = dump["keys"]
        for k, mark, t in zip(dump["key"], dump["mark"], dump["t"], strict=True):
            written = log.written(keys[k], mark, t)
            if written is None:
                unmatched += 1
            else:
                latencies.append(t - written)
    return latencies, unmatched


def machine() -> dict[str, Any]:
    """CPU, cores, memory, kernel, Python and library versions."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "libraries": {
            name: metadata.version(name)
            for name in ("python-socketio", "python-engineio", "aiohttp")
        },
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        lscpu = ""
    for field in ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor"):
        if m := re.search(rf"^{re.escape(field)}:\s*(.+)$", lscpu, re.M):
            info[field.lower().replace("(s)", "s").replace(" ", "_")] = m.group(1).strip()
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def save(scenario: str, result: dict[str, Any], directory: Path = RESULTS) -> Path:
    """Write `result` as JSON under bench/results/; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{scenario}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return (
            f"{value:,.3f}"
            if abs(value) < 10
            else f"{value:,.1f}"
            if abs(value) < 1000
            else f"{value:,.0f}"
        )
    return "-" if value is None else str(value)


def table(rows: list[tuple[str, Any, Any]], title: str) -> str:
    """metric | avhub | baseline | avhub/baseline, as aligned text."""
    header = ("metric", "avhub", "baseline", "ratio")
    body = []
    for name, ours, theirs in rows:
        ratio = (
            ours / theirs
            if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs
            else None
        )
        body.append((name, _cell(ours), _cell(theirs), _cell(ratio) if ratio is not None else "-"))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [title, line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in body]
    return "\n".join(out)
