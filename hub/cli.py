"""The `avhub` command line (DESIGN.md §7).

Each subcommand is a `register` function that adds its parser and sets `handler` to a
function taking the parsed arguments and returning the exit code; `COMMANDS` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from drivers.config import parse_duration
from drivers.errors import AvhubError, ConfigError
from hub.catalog import failed_plugins
from hub.config import Config, ConfigFileError, did_you_mean, load_config, parse_listen
from hub.guard import exposure_warnings
from hub.logs import counted

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
EXIT_INVALID = 2


def check(args: argparse.Namespace) -> int:
    """Validate a deployment file: print every problem and exit 2, or a summary and exit 0.

    Plug-ins that failed to load are warnings on stderr (a device using one is a problem).
    """
    for failure in failed_plugins():
        print(f"warning: {failure}", file=sys.stderr)
    try:
        config = load_config(args.file)
    except ConfigFileError as err:
        for problem in err.problems:
            print(problem)
        return EXIT_INVALID
    for warning in exposure_warnings(config):
        print(f"{args.file}: warning: {warning}")
    rooms = len(config.rooms)
    devices = sum(1 for _ in config.devices())
    print(f"{args.file}: ok ({counted(rooms, 'room')}, {counted(devices, 'device')})")
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
    from hub.logs import setup_logging
    from hub.runner import serve

    config = _load_or_report(args.file)
    if config is None:
        return EXIT_INVALID
    setup_logging(args.log_level or config.hub.log_level, args.log_format)
    for failure in failed_plugins():  # one a device used made the config invalid
        logging.getLogger("avhub").warning("%s; no device uses it, running without it", failure)
    try:
        return asyncio.run(serve(config, args.listen, simulate=args.simulate, path=args.file))
    except ConfigError as err:
        print(f"{args.file}: {err}")
        return EXIT_INVALID
    except AvhubError as err:  # e.g. hub.store names a Redis that cannot be reached
        print(f"avhub: {err}")
        return 1


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
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text lines (default) or one JSON object per line "
        "(time, level, logger, room, device, message)",
    )


def register_run(subparsers: Subparsers) -> None:
    """`avhub run FILE [--listen HOST:PORT] [--simulate] [--log-level L] [--log-format F]`."""
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
    """Search the network for devices of every kind that can be searched for (or of one)."""
    from drivers import DRIVERS

    kinds = {name: spec.discovery for name, spec in DRIVERS.items() if spec.discovery}
    if args.driver is not None:
        if args.driver not in kinds:
            print(f"avhub discover: cannot search for {args.driver!r}; can: {', '.join(kinds)}")
            return EXIT_INVALID
        kinds = {args.driver: kinds[args.driver]}
    found_any = False
    for name, discovery in kinds.items():
        listen = args.listen or ("0.0.0.0", discovery.port)
        targets = args.target or [("255.255.255.255", discovery.port)]
        try:
            found = asyncio.run(discovery.search(targets, listen, args.timeout))
        except OSError as err:
            print(
                f"avhub discover: {name}: cannot search from udp://{listen[0]}:{listen[1]}: {err}"
            )
            return 1
        for device in found:
            print(f"{device.host}:{device.port}  {device.detail}")
        noun = discovery.noun
        print(f"{len(found)} {noun}{'' if len(found) == 1 else 's'} answered")
        found_any = found_any or bool(found)
    return 0 if found_any else 1


def _duration(text: str) -> float:
    value: object = text
    with contextlib.suppress(ValueError):
        value = float(text)  # plain seconds, as in a deployment file
    try:
        return parse_duration(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def register_discover(subparsers: Subparsers) -> None:
    """`avhub discover [DRIVER] [--timeout D] [--listen HOST:PORT] [--target HOST:PORT ...]`."""
    from drivers import DRIVERS

    searches = "; ".join(
        f"{name}: {spec.discovery.description} on port {spec.discovery.port}"
        for name, spec in DRIVERS.items()
        if spec.discovery is not None
    )
    parser = subparsers.add_parser(
        "discover", help=f"search the network for devices ({searches})".replace("%", "%%")
    )
    parser.add_argument(
        "driver",
        nargs="?",
        metavar="DRIVER",
        help="search for this driver's devices only (default: every driver that can search)",
    )
    parser.add_argument(
        "--timeout", type=_duration, default=3.0, help="how long to collect answers"
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help="local UDP address to search from; devices answer to their protocol's port, "
        "so the default is 0.0.0.0 on that port",
    )
    parser.add_argument(
        "--target",
        type=_listen,
        action="append",
        metavar="HOST:PORT",
        help="where to send the search (repeatable; default the broadcast 255.255.255.255 "
        "on the protocol's port)",
    )
    parser.set_defaults(handler=discover)


def drivers(args: argparse.Namespace) -> int:
    """List every driver, or describe one; plug-ins that failed to load are shown with why."""
    from drivers import DRIVERS
    from hub import catalog

    if args.name is None:
        print(catalog.as_json(catalog.catalog()) if args.json else catalog.table())
        return EXIT_OK
    if args.name not in DRIVERS:
        failed = DRIVERS.failure(args.name)
        if failed is None:
            hint = did_you_mean(args.name, list(DRIVERS), "; ")
            print(f"avhub drivers: no driver {args.name!r}{hint} (known: {', '.join(DRIVERS)})")
            return EXIT_INVALID
        print(catalog.as_json(failed.as_json()) if args.json else f"{failed}\n\n{failed.details}")
        return 1
    print(catalog.as_json(catalog.describe(args.name)) if args.json else catalog.details(args.name))
    return EXIT_OK


def register_drivers(subparsers: Subparsers) -> None:
    """`avhub drivers [NAME] [--json]`."""
    parser = subparsers.add_parser(
        "drivers", help="list the installed drivers (built-in and from packages), or describe one"
    )
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help="describe this driver: options, actions, knobs"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable: config JSON Schema, action argument schemas, simulator knobs",
    )
    parser.set_defaults(handler=drivers)


COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    register_check,
    register_run,
    register_demo,
    register_discover,
    register_drivers,
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
    try:
        return handler(args)
    except BrokenPipeError:  # `avhub drivers | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
