"""Device simulators. `SIMULATORS` maps each simulator kind (= driver name) to its class."""

from __future__ import annotations

from typing import Any

from simulators.base import Knobs, Session, Simulator, start_many
from simulators.epson_escvp import EpsonEscvpKnobs, EpsonEscvpSimulator
from simulators.extron_sis import ExtronKnobs, ExtronSimulator
from simulators.generic import GenericKnobs, GenericSimulator
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator
from simulators.qsys import QsysKnobs, QsysSimulator
from simulators.samsung_mdc import SamsungMdcKnobs, SamsungMdcSimulator
from simulators.sony_adcp import SonyAdcpKnobs, SonyAdcpSimulator
from simulators.tesira import TesiraKnobs, TesiraSimulator
from simulators.visca import ViscaKnobs, ViscaSimulator

SIMULATORS: dict[str, type[Simulator[Any]]] = {
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
