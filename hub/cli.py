"""The `avhub` command line (DESIGN.md §7).

Each subcommand is a `register` function that adds its parser and sets `handler` to a
function taking the parsed arguments and returning the exit code; `COMMANDS` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from drivers.config import parse_duration
from drivers.errors import ConfigError
from hub.config import Config, ConfigFileError, load_config, parse_listen

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
EXIT_INVALID = 2


def check(args: argparse.Namespace) -> int:
    """Validate a deployment file: print every problem and exit 2, or a summary and exit 0."""
    try:
        config = load_config(args.file)
    except ConfigFileError as err:
        for problem in err.problems:
            print(problem)
        return EXIT_INVALID
    rooms = len(config.rooms)
    devices = sum(1 for _ in config.devices())
    print(f"{args.file}: ok ({_count(rooms, 'room')}, {_count(devices, 'device')})")
    return EXIT_OK


def register_check(subparsers: Subparsers) -> None:
    """`avhub check FILE`."""
    parser = subparsers.add_parser(
        "check", help="validate a deployment file and list every problem"
    )
    parser.add_argument("file", metavar="FILE", help="deployment YAML")
    parser.set_defaults(handler=check)


def demo_config_path() -> Path:
    """The embedded demo deployment: `config/demo.yaml` of the source tree, or the packaged copy."""
    source = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
    return source if source.is_file() else Path(__file__).resolve().parent / "demo.yaml"


def _load_or_report(path: str | Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigFileError as err:
        for problem in err.problems:
            print(problem)
        return None


def run(args: argparse.Namespace) -> int:
    """Run the hub on a deployment file until SIGINT/SIGTERM."""
    from hub.runner import serve, setup_logging

    config = _load_or_report(args.file)
    if config is None:
        return EXIT_INVALID
    setup_logging(args.log_level or config.hub.log_level)
    try:
        return asyncio.run(serve(config, args.listen, simulate=args.simulate))
    except ConfigError as err:
        print(f"{args.file}: {err}")
        return EXIT_INVALID


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help="override hub.listen (port 0: any free port)",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override hub.log_level"
    )


def register_run(subparsers: Subparsers) -> None:
    """`avhub run FILE [--listen HOST:PORT] [--simulate] [--log-level LEVEL]`."""
    parser = subparsers.add_parser("run", help="run the hub on a deployment file")
    parser.add_argument("file", metavar="FILE", help="deployment YAML")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also start a simulator for every device on loopback and point the device at it",
    )
    _add_run_options(parser)
    parser.set_defaults(handler=run)


def demo(args: argparse.Namespace) -> int:
    """`run config/demo.yaml --simulate`."""
    args.file = str(demo_config_path())
    args.simulate = True
    return run(args)


def register_demo(subparsers: Subparsers) -> None:
    """`avhub demo [--listen HOST:PORT] [--log-level LEVEL]`."""
    parser = subparsers.add_parser(
        "demo", help="run the embedded demo building with simulators on loopback"
    )
    _add_run_options(parser)
    parser.set_defaults(handler=demo)


def discover(args: argparse.Namespace) -> int:
    """Search for PJLink class 2 projectors; print address and MAC of each that answers."""
    from drivers.pjlink.udp import discover as search

    targets = args.target or [("255.255.255.255", 4352)]
    try:
        found = asyncio.run(search(targets, args.listen, args.timeout))
    except OSError as err:
        print(f"avhub discover: cannot search from udp://{args.listen[0]}:{args.listen[1]}: {err}")
        return 1
    for projector in found:
        print(f"{projector.host}:{projector.port}  {projector.mac}")
    print(f"{len(found)} projector{'' if len(found) == 1 else 's'} answered")
    return 0 if found else 1


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def register_discover(subparsers: Subparsers) -> None:
    """`avhub discover [--timeout D] [--listen HOST:PORT] [--target HOST:PORT ...]`."""
    parser = subparsers.add_parser(
        "discover", help="find PJLink class 2 projectors with a UDP search (%%2SRCH)"
    )
    parser.add_argument(
        "--timeout", type=_duration, default=3.0, help="how long to collect answers"
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("0.0.0.0", 4352),
        metavar="HOST:PORT",
        help="local UDP address to search from; projectors answer to port 4352 (default 0.0.0.0:4352)",
    )
    parser.add_argument(
        "--target",
        type=_listen,
        action="append",
        metavar="HOST:PORT",
        help="where to send the search (repeatable; default the broadcast 255.255.255.255:4352)",
    )
    parser.set_defaults(handler=discover)


COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    register_check,
    register_run,
    register_demo,
    register_discover,
)


def build_parser() -> argparse.ArgumentParser:
    """The `avhub` parser with every subcommand in `COMMANDS`."""
    parser = argparse.ArgumentParser(prog="avhub", description="AV control-system device hub")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit code; a usage error exits 2 from argparse."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
