"""Device simulators. `SIMULATORS` maps each simulator kind (= driver name) to its class.

A package adds simulators through entry points in the group `avhub.simulators`, each
naming a `Simulator` subclass whose `kind` is the entry point's name.
"""

from __future__ import annotations

from typing import Any

from drivers.registry import SIMULATOR_GROUP, Registry
from simulators.base import Knobs, Session, Simulator, start_many
from simulators.epson_escvp import EpsonEscvpKnobs, EpsonEscvpSimulator
from simulators.extron_sis import ExtronKnobs, ExtronSimulator
from simulators.generic import GenericKnobs, GenericSimulator
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator
from simulators.plugin import plugin_simulator
from simulators.qsys import QsysKnobs, QsysSimulator
from simulators.samsung_mdc import SamsungMdcKnobs, SamsungMdcSimulator
from simulators.sony_adcp import SonyAdcpKnobs, SonyAdcpSimulator
from simulators.tesira import TesiraKnobs, TesiraSimulator
from simulators.visca import ViscaKnobs, ViscaSimulator

BUILT_IN: dict[str, type[Simulator[Any]]] = {
    "pjlink": PjlinkSimulator,
    "samsung_mdc": SamsungMdcSimulator,
    "extron_sis": ExtronSimulator,
    "tesira": TesiraSimulator,
    "visca": ViscaSimulator,
    "qsys": QsysSimulator,
    "sony_adcp": SonyAdcpSimulator,
    "epson_escvp": EpsonEscvpSimulator,
    "generic": GenericSimulator,
}

SIMULATORS: Registry[type[Simulator[Any]]] = Registry(
    SIMULATOR_GROUP, "simulator", BUILT_IN, plugin_simulator
)
"""Every simulator: the built-in ones above, then the `avhub.simulators` entry points of
installed packages (drivers/registry.py), added on first use."""

__all__ = [
    "SIMULATORS",
    "EpsonEscvpKnobs",
    "EpsonEscvpSimulator",
    "ExtronKnobs",
    "ExtronSimulator",
    "GenericKnobs",
    "GenericSimulator",
    "Knobs",
    "PjlinkKnobs",
    "PjlinkSimulator",
    "QsysKnobs",
    "QsysSimulator",
    "SamsungMdcKnobs",
    "SamsungMdcSimulator",
    "Session",
    "Simulator",
    "SonyAdcpKnobs",
    "SonyAdcpSimulator",
    "TesiraKnobs",
    "TesiraSimulator",
    "ViscaKnobs",
    "ViscaSimulator",
    "start_many",
]
