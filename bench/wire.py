"""A light WebSocket client speaking Engine.IO v4 / Socket.IO v5 text packets.

One `asyncio.BufferedProtocol` per connection reads into a fixed buffer (a plain
`Protocol` makes asyncio allocate 256 KiB per `recv`, which costs more than the
message) and parses server frames as they arrive, so a received event costs a
slice, a UTF-8 decode and a callback: no task, no queue. Frames to the server
carry a zero mask (legal, and free to apply).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from typing import Any

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
_ZERO_MASK = b"\x00\x00\x00\x00"
RECV_SIZE = 65536


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set, zero mask key)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _ZERO_MASK + payload


class WsClient(asyncio.BufferedProtocol):
    """One client WebSocket: HTTP upgrade, then `on_text(str)` per text message."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        on_text: Callable[[str], None],
        on_close: Callable[[], None],
    ) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"
            "\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._on_text = on_text
        self._on_close = on_close
        self._buf = bytearray()
        self._recv = memoryview(bytearray(RECV_SIZE))
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(OP_TEXT, text.encode()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._recv

    def buffer_updated(self, nbytes: int) -> None:
        buf = self._buf
        buf += self._recv[:nbytes]
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self._fail(HandshakeError(status.decode("latin-1")))
                return
            self._upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, length = buf[pos], buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if n < start + length:
                break
            payload = bytes(buf[start : start + length])
            pos = start + length
            opcode = b0 & 0x0F
            if opcode == OP_TEXT:
                self._on_text(payload.decode())
            elif opcode == OP_PING:
                self.transport.write(ws_frame(OP_PONG, payload))  # type: ignore[union-attr]
            elif opcode == OP_CLOSE:
                self.close()
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("closed"))
        self._on_close()

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
            self.opened.exception()  # retrieved: a refused connect is an ordinary outcome
        if self.transport is not None:
            self.transport.close()


# ---- Engine.IO / Socket.IO text packets --------------------------------------------

EIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def sio_connect(namespace: str, auth: dict[str, Any]) -> str:
    """Engine.IO MESSAGE carrying a Socket.IO CONNECT with `auth`."""
    return f"40{namespace},{json.dumps(auth, separators=(',', ':'))}"


def sio_call(namespace: str, ack_id: int, event: str, data: Any) -> str:
    """Engine.IO MESSAGE carrying a Socket.IO EVENT that asks for an ack."""
    return f"42{namespace},{ack_id}{json.dumps([event, data], separators=(',', ':'))}"


def split_namespace(text: str) -> tuple[str, str]:
    """`42/rooms/x,[...]` → (`/rooms/x`, `[...]`); the namespace is `/` when absent."""
    if len(text) > 2 and text[2] == "/":
        comma = text.find(",", 2)
        if comma < 0:
            return text[2:], ""
        return text[2:comma], text[comma + 1 :]
    return "/", text[2:]


def split_ack(body: str) -> tuple[int, Any]:
    """`17[{...}]` → (17, [{...}])."""
    i = 0
    while body[i].isdigit():
        i += 1
    return int(body[:i]), json.loads(body[i:])
