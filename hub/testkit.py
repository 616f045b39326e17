"""The test kit: a driver against its simulator over real loopback sockets or a real pty.

The project's own driver tests use it, and so can the author of a driver package
(docs/writing-a-driver.md). Subclass `Rig` with a device's defaults — simulator class
and knobs, driver class and settings, what "online" waits for — and use it as an async
context manager, which starts the simulator and stops every driver and the simulator
on the way out:

    class RelayRig(Rig[RelaySimulator, RelayDriver]):
        simulator_class = RelaySimulator
        driver_class = RelayDriver
        settings = {"poll_interval": 0.2}

    async def test_power() -> None:
        async with RelayRig(relays=2) as rig:          # knobs of this simulator
            driver = await rig.online()                 # a driver at it, online
            await driver.execute("power_on")
            await until(lambda: driver.state["power"] == "on")

`PtyRig` serves the simulator on a pseudo-terminal for serial drivers. `until` waits on
a condition (never sleep and then count); `error_of` is the AvhubError a command raises.
Nothing here needs pytest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from drivers import DRIVERS
from drivers.base import Driver
from drivers.config import DeviceConfig
from drivers.errors import AvhubError
from simulators.base import Simulator

__all__ = ["PtyRig", "Rig", "RigStarter", "error_of", "until"]

SimT = TypeVar("SimT", bound=Simulator[Any])
DriverT = TypeVar("DriverT", bound=Driver[Any])
R = TypeVar("R", bound="Rig[Any, Any]")


async def until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> None:
    """Wait until `predicate()` is truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        await asyncio.sleep(interval)


async def error_of(coro: Awaitable[Any]) -> AvhubError:
    """The AvhubError `coro` raises; AssertionError when it raises none."""
    try:
        result = await coro
    except AvhubError as err:
        return err
    raise AssertionError(f"expected an AvhubError, got the result {result!r}")


class Rig(Generic[SimT, DriverT]):
    """A simulator, drivers aimed at it, and every change the drivers published."""

    simulator_class: type[SimT]
    knobs: dict[str, Any] = {}
    """Simulator knobs of every rig of this class; `Rig(**knobs)` overrides them."""
    driver_class: type[DriverT]
    config_class: type[DeviceConfig] | None = None
    """The driver's config model; None: the one registered for `driver_class.name`."""
    device_id = "device"
    settings: dict[str, Any] = {}
    """Driver settings of every driver of this class; `driver(**options)` overrides them."""

    def __init__(self, **knobs: Any) -> None:
        self.sim: SimT = self.simulator_class.from_options({**self.knobs, **knobs})
        self.changes: list[dict[str, Any]] = []
        self.drivers: list[DriverT] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

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
        config = self._config_model().model_validate(settings)
        driver = self.driver_class(self.device_id, config, self.changes.append)
        self.drivers.append(driver)
        await driver.start(stagger=0)
        return driver

    def _config_model(self) -> type[DeviceConfig]:
        if self.config_class is not None:
            return self.config_class
        name = self.driver_class.name
        if name not in DRIVERS:
            raise LookupError(
                f"no driver {name!r} is registered: install its package (pip install -e .) "
                f"or set config_class on {type(self).__name__}"
            )
        return DRIVERS[name].config

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
    """A function that starts rigs: `await rigs(RigClass, **knobs)` is a started rig.

    The project's `rigs` fixture is one; it stops every rig after the test.
    """

    def __call__(self, make: Callable[..., R], /, **knobs: Any) -> Awaitable[R]: ...
