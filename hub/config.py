"""Deployment configuration (DESIGN.md §6): YAML in, typed models out, every problem located.

`load_config` reads a file into a `Config`, or raises `ConfigFileError` whose `problems`
list every fault found, each as `file:line:column: key.path: message`.

Rules a deployment file follows on top of plain YAML:

- Mapping keys are always text: `101:` is the room id "101", not a number.
- In string values, `${NAME}` is replaced from the environment, `${NAME:-default}` falls
  back to `default` when NAME is unset or empty, and `$${` writes a literal `${`. An unset
  variable without a default is a problem. Keys are never substituted.
- When a whole plain (unquoted) scalar is one `${...}` reference, the substituted text is
  read again as a YAML scalar: `replay_size: ${SIZE}` with SIZE=500 is the integer 500, and
  an empty value is null. A quoted scalar always stays a string, so write secrets as
  `password: "${PROJ_PASSWORD}"` to keep an all-digit password as text.
- Anchors, aliases and `<<` merge keys work as in YAML 1.1; top-level keys starting with
  `x-` are ignored, as a place to define anchors.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Tag,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from drivers import DRIVERS
from drivers.config import DeviceConfig, Duration, parse_address
from drivers.errors import ConfigError
from drivers.service import DriverSettings
from hub.automation.check import room_findings
from hub.automation.clock import zone
from hub.automation.models import (
    ROOM_DEVICE,
    MacroConfig,
    MacroName,
    ScheduleConfig,
    TriggerConfig,
)
from hub.cluster.settings import ClusterSettings
from simulators import SIMULATORS
from simulators.base import Simulator

__all__ = [
    "Config",
    "ConfigFileError",
    "HubSettings",
    "Problem",
    "RoomConfig",
    "check_origin",
    "load_config",
    "load_config_text",
    "parse_listen",
    "simulator_for",
    "simulator_options",
]

# ---------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in a deployment file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class ConfigFileError(ConfigError):
    """A deployment file is invalid; `problems` lists every fault found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


# ---------------------------------------------------------------------------- models

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ID_RULE = "1-64 lowercase letters, digits, '_' or '-', starting with a letter or digit"


def _id_checker(kind: str) -> Callable[[str], str]:
    """A validator for ids that appear in URLs."""

    def check(value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"{kind} id {value!r} must be {_ID_RULE} (it appears in URLs)")
        return value

    return check


def _not_room(value: str) -> str:
    if value == ROOM_DEVICE:
        raise ValueError(f"device id {ROOM_DEVICE!r} is taken by the room's own device (macros)")
    return value


RoomId = Annotated[str, AfterValidator(_id_checker("room"))]
DeviceId = Annotated[str, AfterValidator(_id_checker("device")), AfterValidator(_not_room)]


def _token(value: str) -> str:
    if not value:  # e.g. "${PIN:-}" quoted, with PIN unset
        raise ValueError("must not be empty: to have no token, leave it out")
    if value != value.strip():
        raise ValueError("must not start or end with a space: an HTTP header cannot carry it")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters (tabs, line breaks)")
    return value


Token = Annotated[str, AfterValidator(_token)]
"""A panel, admin or metrics token: what `Authorization: Bearer <token>` can carry."""
PanelToken = Token


def _device_union() -> Any:
    """The union of every registered driver's config model, told apart by `driver`."""
    models = tuple(spec.config for spec in DRIVERS.values())
    return Annotated[Union[models], Field(discriminator="driver")]  # noqa: UP007


if TYPE_CHECKING:
    DeviceUnion = DeviceConfig
else:
    DeviceUnion = _device_union()


parse_listen = parse_address


def _driver_settings_model() -> type[BaseModel]:
    """`hub.drivers`: one optional section per driver kind that declares hub-level settings."""
    fields: dict[str, Any] = {
        name: (spec.settings, Field(default_factory=spec.settings))
        for name, spec in DRIVERS.items()
        if spec.settings is not None
    }
    return create_model(
        "DriverSettingsByKind",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__="Hub-level settings of driver kinds, by driver name.",
        **fields,
    )


if TYPE_CHECKING:
    DriverSettingsByKind = BaseModel
else:
    DriverSettingsByKind = _driver_settings_model()


def _check_store(value: str) -> str:
    """Accept `memory` or a `redis://` / `rediss://` URL; never echo credentials."""
    if value == "memory":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss"):
        shown = f"{parts.scheme}://..." if "://" in value else repr(value)
        raise ValueError(f"expected 'memory' or a redis://host:port/db URL, got {shown}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("the redis URL has a bad port") from None
    if not parts.hostname:
        raise ValueError("the redis URL needs a host, like redis://localhost:6379/0")
    db = parts.path.removeprefix("/")
    if db and not db.isdigit():
        raise ValueError(f"the redis database must be a number, got {db!r}")
    return value


def check_origin(value: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin` (lowercase, no default port)."""
    parts = urlsplit(value.strip())
    shape = "write an origin as scheme://host[:port], like https://panels.example.com"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shape}; got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {shape}; got {value!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in origin {value!r}") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


Origin = Annotated[str, AfterValidator(check_origin)]
"""An entry of `hub.allowed_origins`, normalised; each bad one is reported at its place."""


class HubSettings(BaseModel):
    """The `hub:` section: where to listen, who administers, where room state lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:8080"
    admin_token: Token | None = None
    store: str = "memory"
    replay_size: int = Field(1000, ge=1, description="changes kept per room for resync")
    replay_max_age: Duration = Field(600.0, gt=0, description="oldest change kept for resync")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    timezone: str | None = Field(
        None, description="IANA time zone of schedules, like Europe/Berlin; default the machine's"
    )
    metrics_token: Token | None = Field(
        None, description="when set, /metrics needs 'Authorization: Bearer <it>'"
    )
    allowed_origins: list[Origin] = Field(
        default_factory=list,
        description="web origins besides the hub's own whose pages may use the API and panels",
    )
    drivers: DriverSettingsByKind = Field(
        default_factory=DriverSettingsByKind,
        description="hub-level settings of driver kinds, e.g. drivers: {pjlink: {notify: off}}",
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings,
        description="node id, device lease TTL and command timeout with store: redis://",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("drivers", "cluster", mode="before")
    @classmethod
    def _null_drivers(cls, value: object) -> object:
        return {} if value is None else value

    def driver_settings(self, driver: str) -> DriverSettings | None:
        """The `hub.drivers.<driver>` section (defaults when absent), or None if it has none."""
        settings = getattr(self.drivers, driver, None)
        return settings if isinstance(settings, DriverSettings) else None

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        return _check_store(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zone(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = (
                f", did you mean {close[0]!r}?" if close else " (an IANA name like Europe/Berlin)"
            )
            raise ValueError(f"unknown time zone {value!r}{hint}") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def host(self) -> str:
        """The host part of `listen`, without IPv6 brackets."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of `listen`; 0 picks a free port."""
        return parse_listen(self.listen)[1]


class RoomConfig(BaseModel):
    """One room: its panels' tokens and its devices by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    panel_tokens: list[PanelToken] = Field(
        default_factory=list, description="empty: any panel may connect"
    )
    devices: dict[DeviceId, DeviceUnion]
    macros: dict[MacroName, MacroConfig] = Field(
        default_factory=dict, description="the room's macros by name: the `room` device's actions"
    )
    schedules: list[ScheduleConfig] = Field(
        default_factory=list, description="macros run at times of day"
    )
    triggers: list[TriggerConfig] = Field(
        default_factory=list, description="macros run when a condition has held for a while"
    )

    @field_validator("devices", "macros", mode="before")
    @classmethod
    def _null_devices(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("schedules", "triggers", mode="before")
    @classmethod
    def _null_lists(cls, value: object) -> object:
        return [] if value is None else value


class Config(BaseModel):
    """A whole deployment: hub settings and rooms by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hub: HubSettings = Field(default_factory=HubSettings)
    rooms: dict[RoomId, RoomConfig]

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Drop top-level `x-` keys (a home for YAML anchors); name rooms after their ids."""
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
        if isinstance(data.get("rooms"), dict):
            data["rooms"] = {
                rid: {"name": rid, **room}
                if isinstance(room, dict) and "name" not in room
                else room
                for rid, room in data["rooms"].items()
            }
        return data

    @field_validator("hub", mode="before")
    @classmethod
    def _null_hub(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("rooms")
    @classmethod
    def _some_rooms(cls, value: dict[str, RoomConfig]) -> dict[str, RoomConfig]:
        if not value:
            raise ValueError("at least one room is required")
        return value

    def devices(self) -> Iterator[tuple[str, str, DeviceConfig]]:
        """Every device as (room id, device id, config), in file order."""
        for room_id, room in self.rooms.items():
            for device_id, device in room.devices.items():
                yield room_id, device_id, device


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a deployment file, or raise ConfigFileError listing every problem."""
    filename = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigFileError([Problem(filename, 1, 1, "-", f"cannot read: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - raw.rfind(b"\n", 0, err.start)
        problem = Problem(filename, line, column, "-", "the file is not valid UTF-8 text")
        raise ConfigFileError([problem]) from None
    return load_config_text(text, filename, env)


def load_config_text(
    text: str, filename: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Validate deployment YAML given as text; `filename` only labels the problems."""
    doc = _Document(filename, os.environ if env is None else env)
    doc.read(text)
    problems = list(doc.problems)
    config: Config | None = None
    if isinstance(doc.data, dict):
        try:
            config = Config.model_validate(doc.data)
        except ValidationError as err:
            found = (_problem_from(error, doc) for error in err.errors(include_url=False))
            problems += [p for p in found if p is not None]
        else:
            problems += _simulator_problems(config, doc)
            problems += _automation_problems(config, doc)
    if problems or config is None:
        problems.sort(key=lambda p: (p.line, p.column))
        raise ConfigFileError(problems)
    return config


# ---------------------------------------------------------------------------- simulator blocks


def simulator_for(driver: str) -> type[Simulator[Any]]:
    """The simulator of a driver kind, or ConfigError saying why it has none."""
    simulator = SIMULATORS.get(driver)
    if simulator is not None:
        return simulator
    failed = SIMULATORS.failure(driver)
    if failed is not None:
        raise ConfigError(f"driver {driver!r} has no simulator: {failed}")
    origin = f" ({DRIVERS.origin(driver)})" if driver in DRIVERS else ""
    raise ConfigError(
        f"driver {driver!r}{origin} has no simulator: "
        f"no {SIMULATORS.group} entry point is named {driver!r}"
    )


def simulator_options(device: DeviceConfig) -> dict[str, Any]:
    """Knobs for a device's simulator: what the device config implies, then its `simulator:` block."""
    implied = simulator_for(device.driver).options_for(device)
    return {**implied, **(device.simulator or {})}


def _simulator_problems(config: Config, doc: _Document) -> Iterator[Problem]:
    """Each `simulator:` block checked against its simulator's knobs, as `--simulate` builds them.

    The device model keeps the block as a plain mapping (drivers do not know simulators), so
    the knobs are validated here, after the rest, and located like any other key.
    """
    for room_id, device_id, device in config.devices():
        if device.simulator is None:
            continue
        loc = ("rooms", room_id, "devices", device_id, "simulator")
        try:
            model = simulator_for(device.driver).knobs_model
        except ConfigError as err:
            line, column = doc.index[loc].key or doc.index[loc].value
            yield Problem(doc.filename, line, column, _dotted(loc), str(err))
            continue
        try:
            model.model_validate(simulator_options(device))
        except ValidationError as err:
            for error in err.errors(include_url=False):
                error["loc"] = (*loc, *error["loc"])
                problem = _problem_from(error, doc)
                if problem is not None and error["type"] == "extra_forbidden":
                    problem = replace(problem, message=_unknown_key(str(error["loc"][-1]), model))
                if problem is not None:
                    yield problem


def _automation_problems(config: Config, doc: _Document) -> Iterator[Problem]:
    """Macros, schedules and triggers checked against their room (`hub.automation.check`)."""
    for room_id, room in config.rooms.items():
        for finding in room_findings(room_id, room):
            path = doc.known(finding.loc)
            spot = doc.index[path]
            line, column = (spot.key or spot.value) if finding.at_key else spot.value
            error = finding.error
            message = finding.message if error is None else _message(error, tuple(error["loc"]))
            yield Problem(doc.filename, line, column, _dotted(finding.loc), message)


# ---------------------------------------------------------------------------- YAML → data

_Path = tuple[str | int, ...]
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_MAX_NODES = 200_000
_MAX_DEPTH = 64
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Pair = tuple[Node, Node]
_RESOLVER = Resolver()
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


@dataclass(frozen=True, slots=True)
class _Spot:
    """Where a value, and the key naming it, start in the file (1-based)."""

    value: tuple[int, int]
    key: tuple[int, int] | None


class _TooLarge(Exception):
    """Aliases expand the document beyond what a deployment file needs."""


class _Document:
    """Plain data read from YAML, with the position of every key path and early problems."""

    def __init__(self, filename: str, env: Mapping[str, str]) -> None:
        self.filename = filename
        self.env = env
        self.data: Any = None
        self.index: dict[_Path, _Spot] = {}
        self.problems: list[Problem] = []
        # Paths whose value was stood in for after a problem; pydantic's word on them is noise.
        self.flagged: set[_Path] = set()
        self._active: set[int] = set()
        self._budget = _MAX_NODES
        self._constructor = SafeConstructor()

    def read(self, text: str) -> None:
        """Compose `text` and build `data` and `index`; syntax errors become problems."""
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as err:
            self.problems.append(_syntax_problem(err, text, self.filename))
            return
        except RecursionError:
            self.problems.append(Problem(self.filename, 1, 1, "-", "nesting is too deep"))
            return
        if root is None:
            self.problems.append(Problem(self.filename, 1, 1, "-", "the file is empty"))
            return
        try:
            self.data = self._build(root, (), None)
        except _TooLarge:
            self._problem(root, (), f"aliases expand to more than {_MAX_NODES} values")
            self.data = None
        if not isinstance(self.data, dict) and not self.problems:
            got = _show(self.data)
            self._problem(root, (), f"expected a mapping with 'hub' and 'rooms', got {got}")

    def known(self, loc: tuple[str | int, ...]) -> _Path:
        """The deepest path in the file along `loc`, skipping steps the file does not have."""
        path: _Path = ()
        for step in loc:
            if (*path, step) in self.index:
                path = (*path, step)
        return path

    def _problem(self, node: Node, path: _Path, message: str, *, replaced: bool = True) -> None:
        """Record a problem at `node`; `replaced` says the value at `path` was stood in for."""
        line, column = _start(node)
        self.problems.append(Problem(self.filename, line, column, _dotted(path), message))
        if replaced:
            self.flagged.add(path)

    def _build(self, node: Node, path: _Path, key: tuple[int, int] | None) -> Any:
        """Plain data for `node` at `path`, recording where it and its key are."""
        self.index[path] = _Spot(_start(node), key)
        self._budget -= 1
        if self._budget < 0:
            raise _TooLarge
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            self._problem(node, path, "an alias refers to the mapping or list containing it")
            return None
        if len(path) > _MAX_DEPTH:
            self._problem(node, path, f"nesting is deeper than {_MAX_DEPTH} levels")
            return None
        if node.tag not in (_MAP, _SEQ):
            self._problem(node, path, f"unsupported YAML tag {node.tag!r}", replaced=False)
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return [self._build(item, (*path, i), None) for i, item in enumerate(node.value)]
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: _Path) -> dict[str, Any]:
        """A mapping with text keys; duplicates are problems, merged keys fill gaps."""
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        own, merged = self._pairs(node, path)
        for key_node, value_node in own:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in first_line:
                message = f"duplicate key {key!r} (first at line {first_line[key]})"
                self._problem(key_node, (*path, key), message, replaced=False)
                continue
            first_line[key] = _start(key_node)[0]
            result[key] = self._build(value_node, (*path, key), _start(key_node))
        for key_node, value_node in merged:
            key = self._key(key_node, path)
            if key is not None and key not in result:
                result[key] = self._build(value_node, (*path, key), _start(key_node))
        return result

    def _pairs(self, node: MappingNode, path: _Path) -> tuple[list[_Pair], list[_Pair]]:
        """A mapping's own pairs, and the pairs its `<<` merge keys bring in, in priority order."""
        own: list[_Pair] = []
        merged: list[_Pair] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode) or id(source) in self._active:
                    message = "<< merges a mapping or a list of mappings"
                    self._problem(source, path, message, replaced=False)
                    continue
                self._active.add(id(source))
                source_own, source_merged = self._pairs(source, path)
                self._active.discard(id(source))
                merged += source_own + source_merged
        return own, merged

    def _key(self, node: Node, path: _Path) -> str | None:
        """A mapping key as text, as written."""
        if isinstance(node, ScalarNode):
            return str(node.value)
        self._problem(node, path, "a key must be plain text, not a list or mapping", replaced=False)
        return None

    def _scalar(self, node: ScalarNode, path: _Path) -> Any:
        """A scalar's value, after `${VAR}` substitution in strings."""
        if node.tag == _STR and "$" in node.value:
            text = self._substitute(node, path)
            if node.style or not _WHOLE_REF.fullmatch(node.value):  # plain style is None or ""
                return text
            tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
            node = ScalarNode(tag, text, node.start_mark, node.end_mark)
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception:  # tagged scalars fail with assorted errors: `!!int abc`, `!foo x`
            self._problem(node, path, f"cannot read {node.value!r} as {node.tag}")
            return None

    def _substitute(self, node: ScalarNode, path: _Path) -> str:
        """`node`'s text with `${NAME}`, `${NAME:-default}` and `$${` replaced."""

        def replace(match: re.Match[str]) -> str:
            whole, inner = match.group(0), match.group(1)
            if whole == "$${":
                return "${"
            ref = _REF_BODY.fullmatch(inner) if inner is not None else None
            if ref is None:
                message = f"bad reference {whole!r}: write ${{NAME}} or ${{NAME:-default}}"
                self._problem(node, path, message + ", or $${ for a literal ${")
                return whole
            name, default = ref.groups()
            value = self.env.get(name)
            if not value and default is not None:
                return str(default)
            if value is None:
                self._problem(node, path, f"environment variable {name} is not set")
                return ""
            return value

        return _REF.sub(replace, str(node.value))


_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REF_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_WHOLE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column, or ''."""
    lines = text.splitlines()
    return lines[line][column : column + 1] if line < len(lines) else ""


def _start(node: Node) -> tuple[int, int]:
    """A node's 1-based (line, column)."""
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _dotted(path: _Path) -> str:
    """`('rooms', 'a', 'panel_tokens', 0)` → `rooms.a.panel_tokens[0]`; the root is `-`."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text or "-"


def _syntax_problem(err: yaml.YAMLError, text: str, filename: str) -> Problem:
    """One Problem for a YAML error, at its position, with the parser's short message."""
    if isinstance(err, yaml.reader.ReaderError):
        # libyaml reports a byte offset, PyYAML a character offset: find the character.
        bad = _NON_PRINTABLE.search(text)
        at = bad.start() if bad else 0
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        code = f"U+{ord(text[at]):04X}" if bad else "a character"
        return Problem(filename, line, column, "-", f"{code} is not allowed in YAML")
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(err, "problem", None) or "invalid YAML"
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if problem == "but found another document":
        message = "only one YAML document is allowed in a deployment file"
    elif context and context_mark is not None and context_mark.line + 1 != line:
        message = f"{problem} ({context} that started at line {context_mark.line + 1})"
    elif context and "next token" not in context:
        message = f"{problem} ({context})"
    else:
        message = problem
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        message += " (a tab: indent with spaces)"
    return Problem(filename, line, column, "-", message)


# ---------------------------------------------------------------------------- pydantic → Problem

_KINDS = {
    "int": "integer",
    "float": "number",
    "string": "string",
    "bool": "true or false",
    "dict": "mapping",
    "list": "list",
    "model": "mapping",
    "model_attributes": "mapping",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _problem_from(error: ErrorDetails, doc: _Document) -> Problem | None:
    """A located Problem for one pydantic error, or None when an earlier problem explains it."""
    kind, loc = error["type"], tuple(error["loc"])
    if kind.startswith("union_tag_"):
        loc = (*loc, "driver")
    path = doc.known(loc)
    if any(path[:n] in doc.flagged for n in range(len(path) + 1)):
        return None
    spot = doc.index[path]
    shown = path
    if kind in ("missing", "union_tag_not_found"):
        shown = (*path, loc[-1])
    if kind in ("missing", "union_tag_not_found", "extra_forbidden") or "[key]" in loc:
        line, column = spot.key or spot.value
    else:
        line, column = spot.value
    return Problem(doc.filename, line, column, _dotted(shown), _message(error, loc))


def _message(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    """Pydantic's message, rewritten for the common cases in words an integrator uses."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden":
        failed = DRIVERS.failure(str(loc[-1])) if loc[:-1] == ("hub", "drivers") else None
        return str(failed) if failed else _unknown_key(str(loc[-1]), _model_at(loc[:-1]))
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "union_tag_invalid" and (failed := DRIVERS.failure(str(ctx["tag"]))):
        return str(failed)
    if kind == "union_tag_invalid":
        return f"unknown driver {ctx['tag']!r}; known drivers: {', '.join(DRIVERS)}" + did_you_mean(
            str(ctx["tag"]), list(DRIVERS), "; "
        )
    if kind == "union_tag_not_found":
        return f"missing required key 'driver' (known drivers: {', '.join(DRIVERS)})"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"].removeprefix("Value error, "))
    if kind in ("literal_error", "enum"):
        return f"expected {ctx['expected']}, got {_show(value)}"
    base = kind.removesuffix("_type").removesuffix("_parsing")
    if base in _KINDS and base != kind:
        hint = " (quote it to keep it as text)" if base == "string" and _is_number(value) else ""
        if base == "string" and isinstance(value, bool):
            hint = " (quote it: YAML reads on, off, yes and no as true and false)"
        return f"expected {_KINDS[base]}, got {_show(value)}{hint}"
    if kind == "int_from_float":
        return f"expected integer, got {_show(value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {_show(ctx[key])}, got {_show(value)}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    return error["msg"]


def _unknown_key(key: str, model: type[BaseModel] | None) -> str:
    """`unknown key 'pasword', did you mean 'password'? (allowed: ...)`."""
    if model is None:
        return f"unknown key {key!r}"
    allowed = [field.alias or name for name, field in model.model_fields.items()]
    hint = did_you_mean(key, allowed, ", ")
    return f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"


def did_you_mean(word: str, choices: list[str], sep: str) -> str:
    """`{sep}did you mean 'x'?` for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"{sep}did you mean {close[0]!r}?" if close else ""


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model validating the mapping at `loc`, following fields, containers and driver tags."""
    current: Any = Config
    for step in loc:
        current = _unwrap(current)
        if _is_model(current) and step in current.model_fields:
            current = current.model_fields[step].annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        elif isinstance(step, str) and step in DRIVERS:
            current = DRIVERS[step].config
        elif isinstance(step, str) and (member := _tagged(current, step)) is not None:
            current = member
        else:
            return None
    current = _unwrap(current)
    return current if _is_model(current) else None


def _tagged(tp: Any, tag: str) -> Any:
    """The member of a tagged union (`Annotated[Model, Tag(tag)]`) with this tag, or None."""
    if get_origin(tp) not in (Union, UnionType):
        return None
    for member in get_args(tp):
        if get_origin(member) is Annotated and any(
            isinstance(m, Tag) and m.tag == tag for m in get_args(member)[1:]
        ):
            return get_args(member)[0]
    return None


def _unwrap(tp: Any) -> Any:
    """`tp` without `Annotated[...]` and without `| None`."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (Union, UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: object) -> str:
    """A value as the file's author would recognise it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:37] + "...")
    return repr(value)
