"""Device drivers. `DRIVERS` maps each driver name to what the hub needs of that kind.

A package adds drivers through entry points in the group `avhub.drivers`, each naming a
`DriverSpec` (docs/writing-a-driver.md); `Driver` and `DeviceConfig` are the bases.
"""

from __future__ import annotations

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
from drivers.registry import DRIVER_GROUP, PluginFailure, Registry
from drivers.samsung_mdc.config import SamsungMdcConfig
from drivers.samsung_mdc.driver import SamsungMdcDriver
from drivers.service import Discovery, DriverService, DriverSettings
from drivers.sony_adcp.config import SonyAdcpConfig
from drivers.sony_adcp.driver import SonyAdcpDriver
from drivers.spec import DriverSpec, plugin_driver
from drivers.tesira.config import TesiraConfig
from drivers.tesira.driver import TesiraDriver
from drivers.visca.config import ViscaConfig
from drivers.visca.driver import ViscaDriver

__all__ = [
    "DRIVERS",
    "DeviceConfig",
    "Discovery",
    "Driver",
    "DriverService",
    "DriverSettings",
    "DriverSpec",
    "PluginFailure",
]

BUILT_IN: dict[str, DriverSpec] = {
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

DRIVERS: Registry[DriverSpec] = Registry(DRIVER_GROUP, "driver", BUILT_IN, plugin_driver)
"""Every driver: the built-in ones above, then the `avhub.drivers` entry points of installed
packages (drivers/registry.py), added on first use."""
