"""Simulators from installed packages: what an `avhub.simulators` entry point must name."""

from __future__ import annotations

import inspect
from typing import Any

from drivers.registry import PluginError
from simulators.base import Simulator


def plugin_simulator(name: str, obj: object) -> type[Simulator[Any]]:
    """The Simulator subclass an `avhub.simulators` entry point called `name` gives, checked.

    Its `kind` must be the entry point's name (the driver name it simulates).
    """
    if not (isinstance(obj, type) and issubclass(obj, Simulator)):
        raise PluginError(f"expected a Simulator subclass, got {obj!r}")
    where = f"{obj.__module__}.{obj.__qualname__}"
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise PluginError(f"{where} is abstract (it does not define {missing})")
    if obj.kind != name:
        raise PluginError(f"{where}.kind is {obj.kind!r}, the entry point's is {name!r}")
    return obj
