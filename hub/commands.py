"""Command dispatch: one `{device, action, args}` command of a room, answered as an ack.

Both front doors (Socket.IO `command`, HTTP `POST .../devices/<id>/<action>`) hand the
command to `Room.command`, which ends here; every failure becomes an error reply
(DESIGN.md §3), never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from drivers.errors import AvhubError, CommandError, ErrorCode

log = logging.getLogger("avhub.commands")

Reply = dict[str, Any]


class Target(Protocol):
    """What a command reaches: a device, or the way to a device run by another hub."""

    async def execute(self, action: str, raw_args: object = None) -> Any:
        """Run one action; raises AvhubError subclasses carrying an ErrorCode."""
        ...


class Device(Target, Protocol):
    """What a room needs of one of its devices: a driver, or the virtual `room` device."""

    state: dict[str, Any]

    @property
    def online(self) -> bool: ...

    def describe_actions(self) -> dict[str, dict[str, Any]]:
        """Action name → JSON Schema of its arguments (the snapshot's `actions`)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class DetailedError(CommandError):
    """A failure with more to say than a message: `details` join `code` and `message` in the ack."""

    def __init__(self, code: ErrorCode, message: str, details: Mapping[str, Any]) -> None:
        super().__init__(code, message)
        self.details = dict(details)


def error_reply(code: ErrorCode, message: str, **details: Any) -> Reply:
    """The failed-ack shape: `{"ok": false, "error": {"code", "message", ...details}}`."""
    return {"ok": False, "error": {"code": code.value, "message": message, **details}}


def result_code(reply: Reply) -> str:
    """`ok`, or the error code of a failed reply (what `/metrics` counts commands by)."""
    return "ok" if reply["ok"] else str(reply["error"]["code"])


async def run_command(devices: Mapping[str, Target], data: Any, where: str) -> Reply:
    """Validate and run one command against `devices`; `where` labels log lines."""
    try:
        if not isinstance(data, dict):
            raise CommandError(
                ErrorCode.INVALID_ARGS, "a command is an object {device, action, args}"
            )
        device, action = data.get("device"), data.get("action")
        if not isinstance(device, str) or not isinstance(action, str):
            raise CommandError(ErrorCode.INVALID_ARGS, "device and action must be strings")
        target = devices.get(device)
        if target is None:
            raise CommandError(ErrorCode.UNKNOWN_DEVICE, f"no device {device!r} in this room")
        result = await target.execute(action, data.get("args"))
    except DetailedError as err:
        return error_reply(err.code, str(err), **err.details)
    except AvhubError as err:
        return error_reply(err.code, str(err))
    except Exception as err:
        log.exception("%s: command %r failed", where, data)
        return error_reply(ErrorCode.INTERNAL, f"internal error: {type(err).__name__}")
    return {"ok": True, "result": result}
