"""JSON-lines control of a benchmark child process: requests on stdin, one reply line each."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("bench")

Handler = Callable[..., Awaitable[dict[str, Any]]]
READY = "ready"


def reply(message: dict[str, Any]) -> None:
    """Write one reply line to stdout (the orchestrator reads it)."""
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve(target: object, ready: dict[str, Any]) -> None:
    """Announce `ready`, then run `{"op": name, ...}` requests until `close` or EOF.

    Request `name` calls `target.op_<name>(**args)`. Requests run one at a time, in
    order; an exception becomes `{"error": ...}`.
    """
    handlers: dict[str, Handler] = {
        name[3:]: getattr(target, name) for name in dir(target) if name.startswith("op_")
    }
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reply({READY: True, **ready})
    while line := await reader.readline():
        request = json.loads(line)
        op = request.pop("op")
        if op == "close":
            reply({"ok": True})
            return
        try:
            reply({"ok": True, **await handlers[op](**request)})
        except Exception as err:
            log.error("op %s failed:\n%s", op, traceback.format_exc())
            reply({"error": f"{op}: {type(err).__name__}: {err}"})


def setup_logging() -> None:
    """Child processes log warnings to stderr (the orchestrator keeps it in a file)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
