"""Command dispatch: one `{device, action, args}` command of a room, answered as an ack.

Both front doors (Socket.IO `command`, HTTP `POST .../devices/<id>/<action>`) hand the
command to `Room.command`, which ends here; every failure becomes an error reply
(DESIGN.md §3), never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from drivers.base import Driver
from drivers.errors import AvhubError, CommandError, ErrorCode

log = logging.getLogger("avhub.commands")

Reply = dict[str, Any]


def error_reply(code: ErrorCode, message: str) -> Reply:
    """The failed-ack shape: `{"ok": false, "error": {"code", "message"}}`."""
    return {"ok": False, "error": {"code": code.value, "message": message}}


def result_code(reply: Reply) -> str:
    """`ok`, or the error code of a failed reply (what `/metrics` counts commands by)."""
    return "ok" if reply["ok"] else str(reply["error"]["code"])


async def run_command(drivers: Mapping[str, Driver[Any]], data: Any, where: str) -> Reply:
    """Validate and run one command against `drivers`; `where` labels log lines."""
    try:
        if not isinstance(data, dict):
            raise CommandError(
                ErrorCode.INVALID_ARGS, "a command is an object {device, action, args}"
            )
        device, action = data.get("device"), data.get("action")
        if not isinstance(device, str) or not isinstance(action, str):
            raise CommandError(ErrorCode.INVALID_ARGS, "device and action must be strings")
        driver = drivers.get(device)
        if driver is None:
            raise CommandError(ErrorCode.UNKNOWN_DEVICE, f"no device {device!r} in this room")
        result = await driver.execute(action, data.get("args"))
    except AvhubError as err:
        return error_reply(err.code, str(err))
    except Exception as err:
        log.exception("%s: command %r failed", where, data)
        return error_reply(ErrorCode.INTERNAL, f"internal error: {type(err).__name__}")
    return {"ok": True, "result": result}
