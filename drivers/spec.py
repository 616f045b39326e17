"""`DriverSpec`: what the hub needs of one kind of device, built in or from a package."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from drivers.base import Driver
from drivers.config import DeviceConfig
from drivers.registry import PluginError
from drivers.service import Discovery, DriverService, DriverSettings


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """One kind of device: its driver, the config model of its YAML entries, and extras.

    `settings` is the model of `hub.drivers.<name>` (hub-level options of the kind);
    `service` builds, from those settings, what one hub process runs for every device
    of the kind together (started only when the deployment has such a device);
    `discovery` is its `avhub discover` search.
    """

    driver: type[Driver[Any]]
    config: type[DeviceConfig]
    settings: type[DriverSettings] | None = None
    service: Callable[[Any], DriverService[Any]] | None = None
    discovery: Discovery | None = None


def plugin_driver(name: str, obj: object) -> DriverSpec:
    """The DriverSpec an `avhub.drivers` entry point called `name` gives, checked.

    The entry point names a DriverSpec, or a function returning one. PluginError says
    what is wrong: a driver that is not a `Driver` or is abstract, names that differ
    from the entry point's (the config's `driver: Literal[...]` tells devices apart),
    a config or action arguments without a JSON Schema.
    """
    spec = obj() if callable(obj) and not isinstance(obj, type) else obj
    if not isinstance(spec, DriverSpec):
        raise PluginError(f"expected a DriverSpec (or a function returning one), got {spec!r}")
    driver, config = spec.driver, spec.config
    if not (isinstance(driver, type) and issubclass(driver, Driver)):
        raise PluginError(f"DriverSpec.driver must be a Driver subclass, got {driver!r}")
    if inspect.isabstract(driver):
        missing = ", ".join(sorted(getattr(driver, "__abstractmethods__", ())))
        raise PluginError(f"{_qualified(driver)} is abstract (it does not define {missing})")
    if getattr(driver, "name", None) != name:
        found = getattr(driver, "name", None)
        raise PluginError(f"{_qualified(driver)}.name is {found!r}, the entry point's is {name!r}")
    if not (isinstance(config, type) and issubclass(config, DeviceConfig)):
        raise PluginError(f"DriverSpec.config must be a DeviceConfig subclass, got {config!r}")
    tag = config.model_fields["driver"].annotation
    if get_origin(tag) is not Literal or get_args(tag) != (name,):
        raise PluginError(
            f"{_qualified(config)}.driver must be declared `driver: Literal[{name!r}]`"
        )
    try:  # published in `avhub drivers` and in every room snapshot: they must build
        config.model_json_schema()
        for action in driver.actions.values():
            action.schema()
    except Exception as err:
        why = str(err).partition("\n")[0]
        raise PluginError(f"a JSON Schema of {_qualified(driver)} cannot be built: {why}") from err
    settings = spec.settings
    if settings is not None and not (
        isinstance(settings, type) and issubclass(settings, DriverSettings)
    ):
        raise PluginError(
            f"DriverSpec.settings must be a DriverSettings subclass, got {settings!r}"
        )
    return spec


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
