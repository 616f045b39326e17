"""What a driver kind may add beside its devices: hub-level settings, a shared service, search.

A driver package declares these in its `DriverSpec` (drivers/__init__.py); the hub sets
them up and tears them down through the registry without knowing any protocol by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from drivers.base import Driver

Address = tuple[str, int]


class DriverSettings(BaseModel):
    """Base of a driver kind's hub-level settings, `hub.drivers.<driver name>` in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=DriverSettings)


class DriverService(ABC, Generic[S]):
    """One per hub process for a driver kind that has devices, shared by all of them.

    The hub attaches every device of the kind before `start` (and attaches or detaches
    devices later as the deployment changes), starts it once the hub listens, and
    stops it before the devices. A service that cannot start logs why and leaves the
    devices working without it; it never stops the hub.
    """

    def __init__(self, settings: S) -> None:
        self.settings = settings
        self.drivers: list[Driver[Any]] = []

    def attach(self, driver: Driver[Any]) -> None:
        """A device of this kind joins the hub."""
        self.drivers.append(driver)

    def detach(self, driver: Driver[Any]) -> None:
        """A device of this kind leaves the hub."""
        if driver in self.drivers:
            self.drivers.remove(driver)

    @abstractmethod
    async def start(self, host: str) -> None:
        """Begin serving; `host` is the address the hub listens on."""

    @abstractmethod
    async def stop(self) -> None:
        """Release everything `start` took."""

    def simulator_knobs(self) -> dict[str, Any]:
        """Simulator knobs that aim simulated devices of this kind at the service (`--simulate`)."""
        return {}


@dataclass(frozen=True, slots=True)
class Found:
    """A device that answered a search: where, and what it said about itself."""

    host: str
    port: int
    detail: str


Search = Callable[[Iterable[Address], Address, float], Coroutine[Any, Any, list[Found]]]


@dataclass(frozen=True, slots=True)
class Discovery:
    """`avhub discover` for a driver kind: a network search on its protocol's port."""

    description: str
    port: int
    """Where searches go (broadcast) and are answered from, unless told otherwise."""
    search: Search
    """`search(targets, listen, timeout)`: every device that answered, sorted."""
    noun: str = "device"
    """What it finds, for `N <noun>s answered`."""
