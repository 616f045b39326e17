"""The test kit (hub/testkit.py), under the name the project's driver tests import it by.

A driver test file subclasses `Rig` with its device's defaults and gets started rigs
from the `rigs` fixture (tests/conftest.py), which stops every driver and simulator
after the test.
"""

from __future__ import annotations

from hub.testkit import PtyRig, R, Rig, RigStarter, error_of

__all__ = ["PtyRig", "R", "Rig", "RigStarter", "error_of"]
