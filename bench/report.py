"""`python -m bench.report [DIR] [--before DIR]`: Markdown tables of the latest result of each scenario.

With `--before`, a column shows avhub's figure from another set of results (e.g. a
run of the previous code), so an optimisation's effect reads off one table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS
from bench.stats import RESULTS


def latest(directory: Path, scenario: str) -> dict[str, Any] | None:
    """The newest `<scenario>-*.json` in `directory`, parsed."""
    paths = sorted(directory.glob(f"{scenario}-*.json"))
    return json.loads(paths[-1].read_text()) if paths else None


def cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int | float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def ratio(ours: Any, theirs: Any) -> str:
    if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
        return f"{ours / theirs:.2f}x"
    return "-"


def section(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    """One scenario's table: metric, avhub (and before), baseline, avhub/baseline."""
    old = {row[0]: row[1] for row in before["rows"]} if before else {}
    head = [
        "metric",
        "avhub",
        *(["avhub before"] if before else []),
        "baseline",
        "avhub / baseline",
    ]
    lines = [
        f"### {result['scenario']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for name, ours, theirs in result["rows"]:
        cells = [name, cell(ours), *([cell(old.get(name))] if before else []), cell(theirs)]
        lines.append("| " + " | ".join([*cells, ratio(ours, theirs)]) + " |")
    params = {k: v for k, v in result["params"].items() if k not in ("out", "scenario")}
    lines += ["", f"Parameters: `{json.dumps(params)}`; run took {result['seconds']:.0f} s."]
    return "\n".join(lines)


def machine(result: dict[str, Any]) -> str:
    m = result["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return (
        f"{m.get('model_name', '?')}, {m.get('cpus', '?')} CPUs "
        f"({m.get('hypervisor_vendor', 'bare metal')} VM), {m.get('memory_gb', '?')} GB; "
        f"Linux {m['kernel']}; Python {m['python']}; {libs}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=RESULTS)
    parser.add_argument("--before", type=Path, help="results of earlier code, shown beside")
    args = parser.parse_args(argv)
    found = [(name, latest(args.directory, name)) for name in SCENARIOS]
    results = [(name, r) for name, r in found if r is not None]
    if not results:
        print(f"no results in {args.directory}", file=sys.stderr)
        return 1
    print(f"Machine: {machine(results[0][1])}\n")
    for name, result in results:
        before = latest(args.before, name) if args.before else None
        print(section(result, before) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
