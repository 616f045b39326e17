"""What projector drivers share: a polling plan and power actions around warm-up and cool-down.

A projector driver subclasses `ProjectorDriver` (and its config `ProjectorConfig`)
and says how to read each part of the state and how to switch power; the plan of
what is asked when is the same for every projector.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, TypeVar

from pydantic import Field

from drivers.actions import action
from drivers.base import Driver, PollGroup
from drivers.config import DeviceConfig, Duration


class ProjectorConfig(DeviceConfig):
    """Polling options of every projector driver."""

    transition_poll: Duration = Field(1.0, gt=0, description="power poll while warming/cooling")
    detail_interval: Duration = Field(
        10.0, gt=0, description="error status (never more often than poll_interval)"
    )
    lamp_interval: Duration = Field(60.0, gt=0, description="lamp or light-source hours")


P = TypeVar("P", bound=ProjectorConfig)


class ProjectorDriver(Driver[P, bytes]):
    """Polls a projector: `power` every `poll_interval` (`transition_poll` while warming or
    cooling), and input and mutes with it while the projector is on (projectors refuse
    them in standby; turning on reads them at once); errors every `detail_interval` and
    at every transition poll, when lamp faults show up; lamp hours every `lamp_interval`.
    """

    @abstractmethod
    async def query_power(self) -> dict[str, Any] | None:
        """Ask power: `{"power": ..., and any detail keys}`, or None when it cannot say now."""

    @abstractmethod
    async def read_picture(self) -> None:
        """Ask and publish input and mutes (only asked while the projector is on)."""

    @abstractmethod
    async def read_errors(self) -> None:
        """Ask and publish `errors`."""

    @abstractmethod
    async def read_lamp(self) -> None:
        """Ask and publish `lamp_hours` (None when the projector has no lamp timer)."""

    @abstractmethod
    async def switch_power(self, on: bool) -> None:
        """Send power on or off, publishing the transition before returning."""

    def poll_groups(self) -> list[PollGroup]:
        return [
            PollGroup("status", self._poll_status, self._status_interval),
            PollGroup("detail", self.read_errors, self._detail_interval),
            PollGroup("lamp", self.read_lamp, lambda: self.config.lamp_interval),
        ]

    def _status_interval(self) -> float:
        if self.in_transition():
            return min(self.config.transition_poll, self.config.poll_interval)
        return self.config.poll_interval

    def _detail_interval(self) -> float:
        return max(self.config.detail_interval, self.config.poll_interval)

    async def _poll_status(self) -> None:
        await self.read_power(polling=True)
        if self.in_transition():
            await self.read_errors()
        if self.state.get("power") == "on":
            await self.read_picture()

    async def read_power(self, *, polling: bool = False) -> None:
        """Ask and publish power; when it turns on or off outside a status poll, queue one
        so input and mutes are read now rather than a `poll_interval` later."""
        changes = await self.query_power()
        if changes is None:
            return
        was_on = self.state.get("power") == "on"
        self.update(changes)
        if (self.state.get("power") == "on") != was_on and not polling:
            self.refresh(["status"])

    @action(coalesce="power", lockout=True, description="turn the projector on (warms up first)")
    async def power_on(self) -> None:
        await self.switch_power(True)

    @action(coalesce="power", lockout=True, description="turn the projector off (cools down first)")
    async def power_off(self) -> None:
        await self.switch_power(False)
