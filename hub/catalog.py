"""What drivers this installation has, built in or from packages: `avhub drivers`.

`describe(name)` is one driver as JSON-ready data (origin, description, the config's JSON
Schema, each action's argument schema, the simulator's knobs); `table()` and `details()`
put the same in words for a terminal.
"""

from __future__ import annotations

import json
from typing import Any

from drivers import DRIVERS
from drivers.base import Driver
from drivers.registry import PluginFailure
from simulators import SIMULATORS


def failed_plugins() -> list[PluginFailure]:
    """Every driver and simulator plug-in that was left out, and why."""
    return [*DRIVERS.failures, *SIMULATORS.failures]


def describe(name: str) -> dict[str, Any]:
    """One registered driver as JSON-ready data (KeyError when there is none of that name)."""
    spec = DRIVERS[name]
    simulator = SIMULATORS.get(name)
    return {
        "name": name,
        "origin": DRIVERS.origin(name).as_json(),
        "description": _first_line(spec.config.__doc__) or _first_line(spec.driver.__doc__),
        "driver_class": f"{spec.driver.__module__}.{spec.driver.__qualname__}",
        "config_schema": spec.config.model_json_schema(),
        "settings_schema": spec.settings.model_json_schema() if spec.settings else None,
        "actions": {action: a.schema() for action, a in spec.driver.actions.items()},
        "actions_from_config": _actions_from_config(spec.driver),
        "simulator": None
        if simulator is None
        else {
            "origin": SIMULATORS.origin(name).as_json(),
            "knobs_schema": simulator.knobs_model.model_json_schema(),
        },
    }


def catalog() -> dict[str, Any]:
    """Every driver (`describe`) and every plug-in left out: `avhub drivers --json`."""
    return {
        "drivers": [describe(name) for name in DRIVERS],
        "failures": [failure.as_json() for failure in failed_plugins()],
    }


# ---------------------------------------------------------------------------- in words


def table() -> str:
    """One row per driver (name, origin, description) with its actions below; then failures."""
    rows = [("DRIVER", "ORIGIN", "DESCRIPTION")]
    actions: list[str] = [""]
    for name in DRIVERS:
        info = describe(name)
        rows.append((name, _origin(info["origin"]), info["description"]))
        actions.append(", ".join(info["actions"]) or _NO_ACTIONS[info["actions_from_config"]])
    name_width = max(len(r[0]) for r in rows) + 2
    origin_width = max(len(r[1]) for r in rows) + 2
    lines = []
    for (name, origin, description), acts in zip(rows, actions, strict=True):
        lines.append(f"{name:<{name_width}}{origin:<{origin_width}}{description}".rstrip())
        if acts:
            lines.append(f"{'':<{name_width}}actions: {acts}")
    failures = failed_plugins()
    if failures:
        lines += ["", "plug-ins left out:"]
        lines += [f"  {failure}" for failure in failures]
    return "\n".join(lines)


def details(name: str) -> str:
    """Everything about one driver: origin, config options, hub settings, actions, simulator."""
    info = describe(name)
    lines = [
        f"{name}: {info['description']}",
        f"origin: {_origin(info['origin'], entry_point=True)}",
        f"driver class: {info['driver_class']}",
        "",
        f"config options (a device with driver: {name}):",
        *_options(info["config_schema"]),
    ]
    if info["settings_schema"] is not None:
        lines += ["", f"hub settings (hub.drivers.{name}):", *_options(info["settings_schema"])]
    lines += ["", "actions:"]
    lines += [_action(action, schema) for action, schema in info["actions"].items()]
    if not info["actions"]:
        lines.append(f"  {_NO_ACTIONS[info['actions_from_config']]}")
    simulator = info["simulator"]
    lines.append("")
    if simulator is None:
        failed = SIMULATORS.failure(name)
        lines.append(f"simulator: {failed}" if failed else "simulator: none")
    else:
        lines.append(f"simulator ({_origin(simulator['origin'])}) knobs:")
        lines += _options(simulator["knobs_schema"])
    return "\n".join(lines)


_NO_ACTIONS = {False: "(none)", True: "(each device's own, from its config)"}


def _actions_from_config(driver: type[Driver[Any]]) -> bool:
    """True when a device's actions come from its config (`Driver.actions_for` overridden)."""
    return next(k for k in driver.__mro__ if "actions_for" in vars(k)) is not Driver


def as_json(data: object) -> str:
    return json.dumps(data, indent=2)


def _origin(origin: dict[str, Any], entry_point: bool = False) -> str:
    if origin["kind"] == "built-in":
        return "built-in"
    text = f"package {origin['package']} {origin['version'] or ''}".rstrip()
    return f"{text} (entry point {origin['entry_point']})" if entry_point else text


def _options(schema: dict[str, Any]) -> list[str]:
    """One line per property of an object schema: name, type, default or required, description."""
    required = set(schema.get("required", ()))
    rows = []
    for key, prop in schema.get("properties", {}).items():
        if key in required:
            need = "required"
        elif "default" in prop:
            need = f"default {json.dumps(prop['default'])}"
        else:
            need = "optional"
        rows.append((key, f"{_type(prop)}, {need}", prop.get("description", "")))
    if not rows:
        return ["  (none)"]
    key_width = max(len(r[0]) for r in rows) + 2
    type_width = max(len(r[1]) for r in rows) + 2
    return [f"  {k:<{key_width}}{t:<{type_width}}{d}".rstrip() for k, t, d in rows]


def _action(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    args = [
        f"{key}: {_type(prop)}{'' if key in required else ' (optional)'}"
        for key, prop in schema.get("properties", {}).items()
    ]
    text = f"  {name}({', '.join(args)})"
    description = schema.get("description")
    return f"{text} - {description}" if description else text


_BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
)


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property in a few words: `integer >= 1 <= 16`, `"a" | "b"`, `list of ...`."""
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"mapping of {_type(prop['additionalProperties'])}"
    words = [kind if isinstance(kind, str) else " or ".join(kind)]
    words += [f"{sign} {prop[key]}" for key, sign in _BOUNDS if key in prop]
    return " ".join(words)


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""
