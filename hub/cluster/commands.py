"""Commands from any hub: a command for a device owned elsewhere goes to its owner over Redis.

Each hub listens on its own pub/sub channel (`avhub:node:<id>`) for requests and replies.
A hub that gets a command for a device it does not own reads the device's lease, sends
the request to the holder and waits for the ack, which is the owner's own `run_command`
reply: the same results and error codes as a local command. While no live hub holds the
lease (its owner just died) the command waits for the takeover, up to
`hub.cluster.command_timeout`; when the lease changes hands meanwhile, the request goes
to the new owner (so a command whose owner died while running it may run twice; AV
commands are set-this-value commands, safe to repeat). A request unanswered for
`command_timeout` goes to the same owner again (a request or its answer can be lost while
Redis pauses): the owner runs each request id once and answers a repeat from memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from drivers.errors import ErrorCode
from hub.cluster.scripts import RoomKeys, channel
from hub.cluster.tasks import STOP_WAIT, stop_tasks
from hub.commands import Reply, error_reply
from hub.store import dumps

if TYPE_CHECKING:
    from hub.cluster.node import ClusterNode

log = logging.getLogger("avhub.cluster")

LONGEST = 600.0  # a command its live owner is running is waited for at most this long
REMEMBERED = 1000  # answers an owner keeps by request id, for requests sent again
_MOVED = {"moved": True}

LocalRunner = Callable[[str, Any, str], Awaitable[Reply | None]]


class CommandBus:
    """Forwards commands to the devices' owners and runs the ones sent here."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.run_here: LocalRunner | None = None  # (room, data, where) → reply; None: not here
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()  # ids of forwarded requests running here
        self._answered: dict[str, dict[str, Any]] = {}  # the last REMEMBERED answers, by id

    async def run(self) -> None:
        """Listen on this hub's channel; after a Redis failure, wait for it and listen again."""
        node = self.node
        while True:
            await node.wait_available()
            pubsub = node.listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel(node.node_id))
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._received(message["data"])
            except (RedisError, OSError, TimeoutError) as err:
                node.lost(err)
            except Exception:
                log.exception("cluster command listener failed; listening again")
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def forward(self, room_id: str, device: str, data: Any, where: str) -> Reply:
        """Run a command on the hub that owns `device`, waiting for a takeover if needed."""
        node = self.node
        loop = asyncio.get_running_loop()
        settings = node.settings
        step = settings.lease_ttl / 5
        give_up = loop.time() + settings.command_timeout  # without an owner to send it to
        last_resort = loop.time() + LONGEST
        request_id = secrets.token_hex(8)
        key = RoomKeys.of(room_id).lease(device)
        target: str | None = None
        future: asyncio.Future[dict[str, Any]] | None = None
        again = give_up  # when to send the request to the same owner again
        asked: str | None = None  # the owner it went to last
        moved = False  # that owner said it does not hold the lease
        try:
            while True:
                if not node.available:
                    return _unavailable(device)
                if node.ownership.owns(room_id, device) and self.run_here is not None:
                    reply = await self.run_here(room_id, data, where)
                    if reply is not None:
                        return reply
                try:
                    holder = await node.redis.get(key)
                except (RedisError, OSError, TimeoutError) as err:
                    node.lost(err)
                    return _unavailable(device)
                owner = holder.partition("|")[0] if holder else None
                if owner is None or owner == node.node_id:
                    target = None  # no owner yet, or this hub takes it on its next tick
                elif owner != target or future is None or loop.time() >= again:
                    # To the owner; to the same owner again after `command_timeout` without
                    # an answer (a request or reply lost while Redis paused): it runs a
                    # request once and answers a repeat from what it remembers.
                    if future is None or owner != target:
                        future = loop.create_future()
                        self._waiting[request_id] = future
                    request = {"id": request_id, "from": node.node_id, "room": room_id}
                    try:
                        heard = await node.redis.publish(
                            channel(owner), dumps({**request, "data": data})
                        )
                    except (RedisError, OSError, TimeoutError) as err:
                        node.lost(err)
                        return _unavailable(device)
                    target = owner if heard else None
                    again = loop.time() + settings.command_timeout
                    if owner != asked:  # a new owner: `command_timeout` for it to take it
                        give_up, asked, moved = again, owner, False
                now = loop.time()
                limit = give_up if target is None or moved else last_resort
                if now >= limit:
                    return error_reply(
                        ErrorCode.TIMEOUT,
                        f"{device}: no hub took the command within "
                        f"{settings.command_timeout:g}s (no owner reachable)",
                    )
                if future is None or target is None:
                    await asyncio.sleep(min(step, limit - now))
                    continue
                try:
                    async with asyncio.timeout(min(step, limit - now)):
                        answer = await asyncio.shield(future)
                except TimeoutError:
                    continue  # still running there? check the lease and wait on
                if answer.get("moved"):  # not the owner (yet, or any more): look again soon
                    target, future, moved = None, None, True
                    await asyncio.sleep(min(step, max(0.0, limit - loop.time())))
                    continue
                result: Reply = answer["reply"]
                return result
        finally:
            self._waiting.pop(request_id, None)

    async def stop(self) -> None:
        await stop_tasks(list(self._serving), STOP_WAIT)

    # ---- messages ------------------------------------------------------------------

    def _received(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            request_id = message["id"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed cluster message")
            return
        if "data" in message:
            task = asyncio.ensure_future(self._serve(message))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
            return
        future = self._waiting.get(request_id)
        if future is not None and not future.done():
            future.set_result(message)

    async def _serve(self, message: dict[str, Any]) -> None:
        """Run a command another hub forwarded, if this hub owns the device; answer it.

        A request sent again (its answer was lost) is not run again: while it runs, the
        first run answers; once it has, the answer is sent again.
        """
        request_id = str(message["id"])
        if request_id in self._running:
            return
        answer = self._answered.get(request_id)
        if answer is None:
            reply: Reply | None = None
            room_id, data = message.get("room"), message.get("data")
            device = data.get("device") if isinstance(data, dict) else None
            if (
                isinstance(room_id, str)
                and isinstance(device, str)
                and self.node.ownership.owns(room_id, device)
                and self.run_here is not None
            ):
                self._running.add(request_id)
                try:
                    reply = await self.run_here(room_id, data, f"forwarded {room_id}")
                finally:
                    self._running.discard(request_id)
            answer = {"id": request_id, **({"reply": reply} if reply is not None else _MOVED)}
            if reply is not None:
                self._answered[request_id] = answer
                if len(self._answered) > REMEMBERED:
                    del self._answered[next(iter(self._answered))]
        try:
            await self.node.redis.publish(channel(str(message.get("from"))), dumps(answer))
        except (RedisError, OSError, TimeoutError) as err:
            self.node.lost(err)  # the requester sends it again; the answer is remembered


def _unavailable(device: str) -> Reply:
    return error_reply(
        ErrorCode.STORE_UNAVAILABLE,
        f"{device} is run by another hub and Redis cannot be reached to forward the command",
    )
