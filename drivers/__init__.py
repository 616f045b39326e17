"""Device drivers. `DRIVERS` maps each driver name to its driver class and config model."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.config import DeviceConfig
from drivers.pjlink.config import PjlinkConfig
from drivers.tesira.config import TesiraConfig
from drivers.visca.config import ViscaConfig


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """How to build one kind of device: its config model and (lazily) its driver class."""

    config: type[DeviceConfig]
    module: str
    cls_name: str


DRIVERS: dict[str, DriverSpec] = {
    "pjlink": DriverSpec(PjlinkConfig, "drivers.pjlink.driver", "PjlinkDriver"),
    "tesira": DriverSpec(TesiraConfig, "drivers.tesira.driver", "TesiraDriver"),
    "visca": DriverSpec(ViscaConfig, "drivers.visca.driver", "ViscaDriver"),
}
