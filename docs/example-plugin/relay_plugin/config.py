"""What a deployment file says about a relay box (`driver: relay`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drivers.config import DeviceConfig
from relay_plugin.codec import MAX_RELAYS, PORT


class RelayConfig(DeviceConfig):
    """An Acme RB relay box: power and switched relays, on TCP 7000 or RS-232."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["relay"]
    relays: int = Field(4, ge=1, le=MAX_RELAYS, description="how many relays the box has")
