"""`python -m bench SCENARIO [options]`: run one scenario (or `all`), print and save the table."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.proc import run_main, wait_quiet
from bench.scenarios import SCENARIOS
from bench.stats import RESULTS, machine, save, table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="avhub benchmarks, each beside the baseline; `all` runs every scenario",
    )
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for name, module in SCENARIOS.items():
        p = sub.add_parser(name, help=(module.__doc__ or name).splitlines()[0])
        p.add_argument("--clients", type=int, default=1, help="panel client processes")
        p.add_argument("--poll-interval", type=float, default=30.0, help="device poll interval (s)")
        p.add_argument("--out", type=Path, default=RESULTS, help="directory for JSON results")
        p.add_argument(
            "--quiet-wait",
            type=float,
            default=300,
            help="wait up to this many seconds for an otherwise idle machine before starting",
        )
        module.add_arguments(p)
    return parser


async def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rundir = args.out / "runs" / f"{name}-{stamp}"
    rundir.mkdir(parents=True, exist_ok=True)
    quiet = await wait_quiet(args.quiet_wait) if args.quiet_wait > 0 else {}
    started = time.time()
    outcome = await SCENARIOS[name].run(args, rundir)
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {
        "scenario": name,
        "params": params,
        "machine": machine(),
        "before_start": quiet,
        "started": started,
        "seconds": time.time() - started,
        **outcome,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["all"]:  # every scenario with its defaults, plus any shared options
        runs = [parser.parse_args([name, *argv[1:]]) for name in SCENARIOS]
    else:
        runs = [parser.parse_args(argv)]
    for args in runs:
        result = run_main(run_one(args.scenario, args))
        print(table(result["rows"], f"{args.scenario}: avhub vs baseline (same run)"))
        path = save(args.scenario, result, args.out)
        print(f"results: {path}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
