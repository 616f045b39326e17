"""Logging for `avhub run`: readable text lines (the default) or one JSON object per line.

JSON lines carry `time`, `level`, `logger`, `room`, `device` and `message` (and
`exception` with a traceback) for log shippers. `room` and `device` come from logging
extras (`extra={"room": ..., "device": ...}`) or, for lines that do not set them, from the
label a line starts with: drivers write `room/device: ...`, namespaces `/rooms/<room>: ...`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
NOISY = ("aiohttp.access", "engineio", "socketio")

_ID = r"[a-z0-9][a-z0-9_-]{0,63}"
_DEVICE_LABEL = re.compile(rf"({_ID})/({_ID})\b(?![/.])")
_ROOM_LABEL = re.compile(rf"/rooms/({_ID})\b")


def counted(n: int, noun: str) -> str:
    """`1 room`, `3 rooms`: a count for a log line or a message."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def where(record: logging.LogRecord, message: str) -> tuple[str | None, str | None]:
    """(room, device) of a log record: its extras, else the label its message starts with."""
    room: object = getattr(record, "room", None)
    device: object = getattr(record, "device", None)
    if room is None and device is None:
        if m := _DEVICE_LABEL.match(message):
            room, device = m.groups()
        elif m := _ROOM_LABEL.match(message):
            room = m.group(1)
    return (
        room if isinstance(room, str) else None,
        device if isinstance(device, str) else None,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        room, device = where(record, message)
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "room": room,
            "device": device,
            "message": message,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    """Log to stderr at `level`, as text lines or JSON lines; library chatter at warning."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
