"""Panels on python-socketio's `AsyncClient`, to weigh against `bench.client` (JSON lines).

`python -m bench.sioclient`: `connect` opens `per_room` clients per room (WebSocket
only) that count the `change` events they get; `count` reports the total.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import socketio

from bench import control


class Clients:
    def __init__(self) -> None:
        self.clients: list[socketio.AsyncClient] = []
        self.changes = 0

    def _on_change(self, data: Any) -> None:
        self.changes += 1

    async def op_connect(self, url: str, rooms: list[str], per_room: int) -> dict[str, Any]:
        for room in rooms:
            for _ in range(per_room):
                client = socketio.AsyncClient(reconnection=False)
                client.on("change", self._on_change, namespace=f"/rooms/{room}")
                await client.connect(url, namespaces=[f"/rooms/{room}"], transports=["websocket"])
                self.clients.append(client)
        return {"ids": list(range(len(self.clients))), "failed": 0, "errors": [], "seconds": 0.0}

    async def op_record(self, on: bool) -> dict[str, Any]:
        """Counting is always on; kept so both clients answer the same requests."""
        return {"receipts": self.changes}

    async def op_count(self) -> dict[str, Any]:
        return {"receipts": self.changes}

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


async def main() -> None:
    clients = Clients()
    try:
        await control.serve(clients, {"pid": os.getpid()})
    finally:
        await clients.close()


if __name__ == "__main__":
    control.setup_logging()
    asyncio.run(main())
