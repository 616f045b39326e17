"""One rig for driver-against-simulator tests: a simulator, drivers aimed at it, their changes.

A driver test file subclasses `Rig` with its device's defaults (simulator class and
knobs, driver class and settings, what "online" waits for) and gets started rigs from
the `rigs` fixture (tests/conftest.py), which stops every driver and simulator after
the test. `PtyRig` serves the same simulator on a pseudo-terminal for serial drivers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import pytest

from drivers import DRIVERS
from drivers.base import Driver
from drivers.errors import AvhubError
from simulators.base import Simulator
from tests.helpers import until

SimT = TypeVar("SimT", bound=Simulator[Any])
DriverT = TypeVar("DriverT", bound=Driver[Any])
R = TypeVar("R", bound="Rig[Any, Any]")


class Rig(Generic[SimT, DriverT]):
    """A simulator, drivers aimed at it, and every change the drivers published."""

    simulator_class: type[SimT]
    knobs: dict[str, Any] = {}
    """Simulator knobs of every rig of this class; `Rig(**knobs)` overrides them."""
    driver_class: type[DriverT]
    device_id = "device"
    settings: dict[str, Any] = {}
    """Driver settings of every driver of this class; `driver(**options)` overrides them."""

    def __init__(self, **knobs: Any) -> None:
        self.sim: SimT = self.simulator_class.from_options({**self.knobs, **knobs})
        self.changes: list[dict[str, Any]] = []
        self.drivers: list[DriverT] = []

    async def start(self) -> None:
        """Start the simulator on a loopback port (TCP or UDP, as the device listens)."""
        await self.sim.start()

    def transport(self) -> str:
        """The transport URL a driver reaches the simulator at."""
        return self.sim.url

    async def driver(self, **options: Any) -> DriverT:
        """A started driver at the simulator; `options` override the class's settings."""
        settings = {"driver": self.driver_class.name, **self.settings, **options}
        if "transport" not in settings:
            settings["transport"] = self.transport()
        config = DRIVERS[self.driver_class.name].config.model_validate(settings)
        driver = self.driver_class(self.device_id, config, self.changes.append)
        self.drivers.append(driver)
        await driver.start(stagger=0)
        return driver

    async def online(self, **options: Any) -> DriverT:
        """A started driver that is ready (see `wait_ready`)."""
        driver = await self.driver(**options)
        await self.wait_ready(driver)
        return driver

    async def wait_ready(self, driver: DriverT) -> None:
        """Wait until `driver` is online; subclasses also wait for the first state they need."""
        await until(lambda: driver.online, message="driver online")

    def values(self, key: str) -> list[Any]:
        """Every published value of `key`, in order."""
        return [c[key] for c in self.changes if key in c]

    async def stop(self) -> None:
        """Stop every driver, then the simulator."""
        for driver in self.drivers:
            await driver.stop()
        await self.sim.stop()


class PtyRig(Rig[SimT, DriverT]):
    """The simulator on a pseudo-terminal (at `link` when given); drivers use `serial://`."""

    baudrate = 9600
    query = ""
    """Serial URL parameters, e.g. `?baudrate=9600`."""

    def __init__(self, link: Path | None = None, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.link = link
        self.path = ""

    async def start(self) -> None:
        self.path = await self.sim.start_pty(link=self.link, baudrate=self.baudrate)

    def transport(self) -> str:
        return f"serial://{self.path}{self.query}"


class RigStarter(Protocol):
    """The `rigs` fixture: `await rigs(RigClass, **knobs)` is a started rig."""

    def __call__(self, make: Callable[..., R], /, **knobs: Any) -> Awaitable[R]: ...


async def error_of(coro: Awaitable[Any]) -> AvhubError:
    """The AvhubError `coro` raises; fails the test when it raises none."""
    with pytest.raises(AvhubError) as info:
        await coro
    return info.value
