"""Device drivers. `DRIVERS` maps each driver name to its driver class and config model."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.config import DeviceConfig
from drivers.extron_sis.config import ExtronSisConfig
from drivers.pjlink.config import PjlinkConfig
from drivers.qsys.config import QsysConfig
from drivers.samsung_mdc.config import SamsungMdcConfig
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
    "samsung_mdc": DriverSpec(SamsungMdcConfig, "drivers.samsung_mdc.driver", "SamsungMdcDriver"),
    "extron_sis": DriverSpec(ExtronSisConfig, "drivers.extron_sis.driver", "ExtronSisDriver"),
    "tesira": DriverSpec(TesiraConfig, "drivers.tesira.driver", "TesiraDriver"),
    "visca": DriverSpec(ViscaConfig, "drivers.visca.driver", "ViscaDriver"),
    "qsys": DriverSpec(QsysConfig, "drivers.qsys.driver", "QsysDriver"),
}
