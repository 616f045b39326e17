"""The test kit (hub/testkit.py), under the name the project's driver tests import it by.

A driver test file subclasses `Rig` with its device's defaults and gets started rigs
from the `rigs` fixture (tests/conftest.py), which stops every driver and simulator
after the test.
"""

from __future__ import annotations

from typing import Any

from drivers.base import Driver
from drivers.errors import ErrorCode
from hub.testkit import PtyRig, R, Rig, RigStarter, error_of
from tests.helpers import seconds_until, until

__all__ = ["PtyRig", "R", "Rig", "RigStarter", "error_of", "refused_login_backs_off"]


async def refused_login_backs_off(rig: Rig[Any, Any], driver: Driver[Any]) -> None:
    """`driver`, refused its credentials, is offline `auth_failed`, retries with the longest
    backoff (a few tries a second, not a tight loop) and answers commands `device_offline`.

    Needs `reconnect_max` near 0.3 s on the driver.
    """
    await until(lambda: driver.state["offline_reason"] == "auth_failed", message="auth_failed")
    assert driver.online is False
    first = rig.sim.connections
    took = await seconds_until(lambda: rig.sim.connections >= first + 3, message="3 more tries")
    # The longest backoff (reconnect_max, ±20 %) between tries: a tight loop would make
    # hundreds of tries in the time three take.
    assert took >= 2 * 0.3 * 0.8, took
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE and "auth_failed" in str(err)
