"""Device drivers. `DRIVERS` maps each driver name to what the hub needs of that kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.base import Driver
from drivers.config import DeviceConfig
from drivers.epson_escvp.config import EpsonEscvpConfig
from drivers.epson_escvp.driver import EpsonEscvpDriver
from drivers.extron_sis.config import ExtronSisConfig
from drivers.extron_sis.driver import ExtronSisDriver
from drivers.generic.config import GenericConfig
from drivers.generic.driver import GenericDriver
from drivers.pjlink.config import PjlinkConfig
from drivers.pjlink.driver import PjlinkDriver
from drivers.pjlink.notify import PjlinkNotifications, PjlinkSettings
from drivers.pjlink.udp import SEARCH_DISCOVERY
from drivers.qsys.config import QsysConfig
from drivers.qsys.driver import QsysDriver
from drivers.samsung_mdc.config import SamsungMdcConfig
from drivers.samsung_mdc.driver import SamsungMdcDriver
from drivers.service import Discovery, DriverService, DriverSettings
from drivers.sony_adcp.config import SonyAdcpConfig
from drivers.sony_adcp.driver import SonyAdcpDriver
from drivers.tesira.config import TesiraConfig
from drivers.tesira.driver import TesiraDriver
from drivers.visca.config import ViscaConfig
from drivers.visca.driver import ViscaDriver


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


DRIVERS: dict[str, DriverSpec] = {
    "pjlink": DriverSpec(
        PjlinkDriver,
        PjlinkConfig,
        settings=PjlinkSettings,
        service=PjlinkNotifications,
        discovery=SEARCH_DISCOVERY,
    ),
    "extron_sis": DriverSpec(ExtronSisDriver, ExtronSisConfig),
    "tesira": DriverSpec(TesiraDriver, TesiraConfig),
    "qsys": DriverSpec(QsysDriver, QsysConfig),
    "visca": DriverSpec(ViscaDriver, ViscaConfig),
    "samsung_mdc": DriverSpec(SamsungMdcDriver, SamsungMdcConfig),
    "sony_adcp": DriverSpec(SonyAdcpDriver, SonyAdcpConfig),
    "epson_escvp": DriverSpec(EpsonEscvpDriver, EpsonEscvpConfig),
    "generic": DriverSpec(GenericDriver, GenericConfig),
}
