"""`python -m simulators KIND [options] [knobs]`: run simulators until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shlex
import signal
import sys
import types
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from drivers.config import Duration, parse_duration
from simulators import SIMULATORS
from simulators.base import Knobs, Simulator, start_many

VALUE_FORMATS = """\
knob values:
  booleans    --split-writes / --no-split-writes
  durations   5s, 250ms, 2m, 1h or plain seconds (0.5), as in YAML
  lists       JSON (--inputs '["11","31"]') or comma separated (--inputs 11,31)
  maps        JSON (--input-names '{"31":"Laptop"}') or key=value pairs (31=Laptop,32=PC)
  optional    "none" clears an optional number or duration (--idle-timeout none)
"""


_METAVARS: dict[Any, str] = {int: "N", float: "NUMBER", Duration: "DURATION"}
_SECONDS = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")


def _strip(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Annotated metadata and None, and whether None was allowed."""
    while get_origin(annotation) is Annotated:
        if any(getattr(meta, "func", None) is parse_duration for meta in annotation.__metadata__):
            return Duration, False
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner, _ = _strip(args[0]) if len(args) == 1 else (annotation, False)
        return inner, True
    return annotation, False


def _knob_kind(field: FieldInfo) -> tuple[Any, bool]:
    """A knob's type for the command line (Duration for durations), and whether it is optional."""
    kind, optional = _strip(field.annotation)
    if any(getattr(meta, "func", None) is parse_duration for meta in field.metadata):
        kind = Duration
    return kind, optional


def _parse_duration(text: str) -> float | str:
    """Plain seconds (`0.5`) as a number, as YAML reads them; `5s`, `250ms`, `none` as given."""
    return float(text) if _SECONDS.fullmatch(text) else text


def _show_duration(seconds: float) -> str:
    """Seconds as a duration the command line takes back: 5s, 250ms, 2m, 1h, 1.5s."""
    if seconds == 0:
        return "0s"
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:.0f}{unit}"
    if seconds < 1 and (ms := round(seconds * 1000, 6)).is_integer():
        return f"{ms:.0f}ms"
    return f"{seconds:f}".rstrip("0").rstrip(".") + "s"


def default_text(name: str, field: FieldInfo) -> str:
    """A knob's default as written on the command line (shell-quoted), or `unset`."""
    default = field.get_default(call_default_factory=True)
    kind, _ = _knob_kind(field)
    flag = name.replace("_", "-")
    if default is None:
        return "unset"
    if kind is bool:
        return f"--{flag}" if default else f"--no-{flag}"
    if kind is Duration:
        return _show_duration(default)
    return shlex.quote(json.dumps(default) if isinstance(default, list | dict) else str(default))


def _parse_list(text: str) -> Any:
    """A JSON array, or comma-separated items."""
    if not text.lstrip().startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"bad JSON list {text!r}: {err}") from None


def _parse_map(text: str) -> Any:
    """A JSON object, or comma-separated key=value pairs."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"bad JSON object {text!r}: {err}") from None
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(f"expected key=value pairs, got {text!r}")
    return {key.strip(): value.strip() for key, value in pairs}


def _parse_object(text: str) -> Any:
    """A JSON object (a knob with fields of its own), or none."""
    if text.strip().lower() == "none":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"bad JSON object {text!r}: {err}") from None


def _add_knob(group: argparse._ArgumentGroup, name: str, field: FieldInfo) -> None:
    flag = "--" + name.replace("_", "-")
    kind, optional = _knob_kind(field)
    help_text = f"{field.description or name} (default: {default_text(name, field)})"
    help_text = help_text.replace("%", "%%")
    dest = f"knob__{name}"
    common: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
    if kind is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
    elif get_origin(kind) is Literal:
        choices = {str(value): value for value in get_args(kind)}
        group.add_argument(flag, choices=list(choices), type=str, **common)
        group.set_defaults(**{f"choices__{name}": choices})
    elif get_origin(kind) is list:
        group.add_argument(flag, metavar="LIST", type=_parse_list, **common)
    elif get_origin(kind) is dict:
        group.add_argument(flag, metavar="MAP", type=_parse_map, **common)
    elif isinstance(kind, type) and issubclass(kind, BaseModel):
        group.add_argument(flag, metavar="JSON", type=_parse_object, **common)
    else:
        metavar = _METAVARS.get(kind, "TEXT")
        if optional and kind is not str:
            metavar += "|none"
        parse: Callable[[str], Any] = _parse_duration if kind is Duration else str
        group.add_argument(flag, metavar=metavar, type=parse, **common)


def _knob_values(args: argparse.Namespace, model: type[Knobs]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not hasattr(args, f"knob__{name}"):
            continue
        value = getattr(args, f"knob__{name}")
        kind, optional = _strip(field.annotation)
        choices = getattr(args, f"choices__{name}", None)
        if choices is not None:
            value = choices[value]
        elif optional and kind is not str and isinstance(value, str) and value.lower() == "none":
            value = None
        values[name] = value
    return values


def build_parser(kind: str | None, add_help: bool = True) -> argparse.ArgumentParser:
    """The parser for one simulator kind (knob flags come from its Knobs model)."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators",
        usage="%(prog)s KIND [--host HOST] [--port N | --serial-pty [--link PATH] [--baudrate N]] "
        "[--count N [--port-base P]] [--log-level LEVEL] [knobs]",
        description="Run device simulators on loopback until SIGINT/SIGTERM.",
        epilog=VALUE_FORMATS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    parser.add_argument(
        "kind",
        metavar="KIND",
        nargs=None if add_help else "?",
        choices=sorted(SIMULATORS),
        help=f"simulator kind: {', '.join(sorted(SIMULATORS))}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    simulator = SIMULATORS.get(kind) if kind is not None else None
    default_port = simulator.default_port if simulator is not None else 0
    parser.add_argument(
        "--port",
        type=int,
        metavar="N",
        default=default_port,
        help=f"port; 0 = ephemeral (default: {default_port})",
    )
    parser.add_argument(
        "--count", type=int, default=1, metavar="N", help="run N independent instances"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        metavar="P",
        help="first port of --count instances (default: --port)",
    )
    parser.add_argument(
        "--serial-pty",
        action="store_true",
        help="serve on a pseudo-terminal (a serial port) instead of TCP; prints its path",
    )
    parser.add_argument(
        "--link", metavar="PATH", help="with --serial-pty: a symlink to the pty at PATH"
    )
    parser.add_argument(
        "--baudrate",
        type=int,
        default=9600,
        metavar="N",
        help="with --serial-pty: the line speed (default: 9600)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper
    )
    if simulator is not None:
        simulator.add_arguments(parser)
        model = simulator.knobs_model
        group = parser.add_argument_group(f"{kind} knobs")
        for name, field in model.model_fields.items():
            _add_knob(group, name, field)
    return parser


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Knobs]:
    """Parse the command line; exits 2 with a clear message on bad options or knob values."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known, _ = build_parser(None, add_help=False).parse_known_args(argv)
    parser = build_parser(known.kind)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.link is not None and (not args.serial_pty or args.count != 1):
        parser.error("--link needs --serial-pty and a single instance")
    cls = SIMULATORS[args.kind]
    model = cls.knobs_model
    try:
        options = cls.options_from_arguments(args)
    except ValueError as err:
        parser.error(str(err))
    try:
        knobs = model.model_validate({**options, **_knob_values(args, model)})
    except ValidationError as err:
        problems = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-') if e['loc'] else 'knobs'}: {e['msg']}"
            for e in err.errors()
        )
        parser.error(f"bad knob value: {problems}")
    return args, knobs


async def start_tcp(
    cls: type[Simulator[Any]], knobs: Knobs, count: int, host: str, port_base: int
) -> list[Simulator[Any]] | None:
    """Start `count` simulators on TCP and print where each listens; None on failure."""
    try:
        sims = await start_many(lambda: cls(knobs.model_copy(deep=True)), count, host, port_base)
    except OSError as err:
        print(f"error: cannot listen on {host}:{port_base}: {err.strerror or err}", file=sys.stderr)
        return None
    for sim in sims:
        print(f"{cls.kind} simulator listening on {sim.host}:{sim.port}", flush=True)
    return list(sims)


async def start_ptys(
    cls: type[Simulator[Any]], knobs: Knobs, count: int, link: str | None, baudrate: int
) -> list[Simulator[Any]] | None:
    """Start `count` simulators on pseudo-terminals and print each path; None on failure."""
    sims = [cls(knobs.model_copy(deep=True)) for _ in range(count)]
    try:
        paths = [await sim.start_pty(link, baudrate) for sim in sims]
    except (OSError, ValueError) as err:
        await asyncio.gather(*(sim.stop() for sim in sims))
        print(f"error: cannot open a serial pty: {err}", file=sys.stderr)
        return None
    for path in paths:
        print(f"{cls.kind} simulator on serial pty {path}", flush=True)
    return sims


async def serve(
    cls: type[Simulator[Any]],
    knobs: Knobs,
    count: int,
    host: str,
    port_base: int,
    pty: tuple[str | None, int] | None = None,
) -> int:
    """Start the simulators on TCP, or on ptys when `pty` = (link, baudrate) is given, print
    where, and run until SIGINT/SIGTERM."""
    if pty is None:
        sims = await start_tcp(cls, knobs, count, host, port_base)
    else:
        sims = await start_ptys(cls, knobs, count, *pty)
    if sims is None:
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await asyncio.gather(*(sim.stop() for sim in sims))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args, knobs = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    port_base = args.port if args.port_base is None else args.port_base
    pty = (args.link, args.baudrate) if args.serial_pty else None
    return asyncio.run(serve(SIMULATORS[args.kind], knobs, args.count, args.host, port_base, pty))


if __name__ == "__main__":
    sys.exit(main())
