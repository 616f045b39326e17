"""`--log-format json` (hub/logs.py): one JSON object per line, with room and device."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from hub.logs import JsonFormatter


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
