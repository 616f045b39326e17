"""`--log-format json` (hub/logs.py): one JSON object per line, with room and device; and
what the hub logs as it stops."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.app import Hub, _StopSteps
from hub.logs import JsonFormatter
from simulators.pjlink import PjlinkSimulator
from tests.helpers import pjlink_at
from tests.panel import Panel


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("avhub.driver", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


@pytest.mark.parametrize(
    ("rec", "room", "device"),
    [
        (
            record("%s offline: %s (retrying)", "lecture-hall/projector-left", "refused"),
            "lecture-hall",
            "projector-left",
        ),
        (record("%s: refused a panel", "/rooms/board"), "board", None),
        (record("reload: room %s added", "annex", room="annex"), "annex", None),
        (record("x/y said so", room="r1", device="d1"), "r1", "d1"),
        (record("hub listening on http://127.0.0.1:8080/a/b"), None, None),
        (record("started 3 simulators on loopback"), None, None),
    ],
)
def test_each_line_is_one_json_object_with_room_and_device(
    rec: logging.LogRecord, room: str | None, device: str | None
) -> None:
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    data = json.loads(line)
    assert set(data) == {"time", "level", "logger", "room", "device", "message"}
    assert (data["room"], data["device"]) == (room, device)
    assert data["level"] == "warning" and data["logger"] == "avhub.driver"
    assert data["message"] == rec.getMessage() and data["time"].endswith("+00:00")


def test_a_traceback_stays_on_the_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        rec = logging.LogRecord("avhub", logging.ERROR, __file__, 1, "failed", (), None)
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


async def test_a_slow_shutdown_names_its_step_and_the_hub_says_when_it_stopped(
    hub_factory: Any,
    panels: Callable[..., Panel],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = await pjlink_sims()
    hub: Hub = await hub_factory({"rooms": {"lab": {"devices": {"proj": pjlink_at(sim.port)}}}})
    panel = panels(hub, "lab")
    await panel.connect()
    monkeypatch.setattr(_StopSteps, "SLOW", -1.0)  # every step counts as slow
    monkeypatch.setattr(_StopSteps, "STUCK", 0.0)  # and the stop as stuck, at its first turn
    caplog.set_level(logging.INFO, logger="avhub.hub")
    await hub.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "avhub.hub"]
    steps = [m.split(": ", 1)[1].split(" took ")[0] for m in said if m.startswith("stopping: ")]
    assert steps == [
        "driver services",
        "listening sockets",
        "rooms and their drivers",
        "panels",
        "web server",
    ]
    assert said[-1].startswith("stopped in ")
    (stuck,) = [m for m in said if m.startswith("still stopping after 0 s")]
    assert "(done: driver services" in stuck  # the steps finished by the first turn
    assert "proj-worker: " in stuck  # each task, and where it waits
