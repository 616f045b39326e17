"""Device simulators. `SIMULATORS` maps each simulator kind (= driver name) to its class."""

from __future__ import annotations

from typing import Any

from simulators.base import Knobs, Session, Simulator, start_many
from simulators.extron_sis import ExtronKnobs, ExtronSimulator
from simulators.generic import GenericKnobs, GenericSimulator
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator
from simulators.qsys import QsysKnobs, QsysSimulator
from simulators.samsung_mdc import SamsungMdcKnobs, SamsungMdcSimulator
from simulators.tesira import TesiraKnobs, TesiraSimulator
from simulators.visca import ViscaKnobs, ViscaSimulator

SIMULATORS: dict[str, type[Simulator[Any]]] = {
    "pjlink": PjlinkSimulator,
    "samsung_mdc": SamsungMdcSimulator,
    "extron_sis": ExtronSimulator,
    "tesira": TesiraSimulator,
    "visca": ViscaSimulator,
    "qsys": QsysSimulator,
    "generic": GenericSimulator,
}

__all__ = [
    "SIMULATORS",
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
    "TesiraKnobs",
    "TesiraSimulator",
    "ViscaKnobs",
    "ViscaSimulator",
    "start_many",
]
