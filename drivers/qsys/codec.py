"""Q-SYS QRC wire format: NUL-framed JSON-RPC 2.0 messages and error codes. Shared by driver and simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer

PORT = 1710
TERMINATOR = b"\0"
MAX_MESSAGE = 4 * 1024 * 1024  # Component.GetControls on a big design runs to hundreds of kB

RequestId = int | float
"""QRC ids "must be a number"."""


class QrcError(IntEnum):
    """Error codes a Core puts in a JSON-RPC `error` object."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    SERVER_ERROR = -32603
    STANDBY = -32604
    BAD_PAGE_REQUEST_ID = 2
    BAD_PAGE_REQUEST = 3
    MISSING_FILE = 4
    CHANGE_GROUPS_EXHAUSTED = 5
    UNKNOWN_CHANGE_GROUP = 6
    UNKNOWN_COMPONENT = 7
    UNKNOWN_CONTROL = 8
    ILLEGAL_MIXER_CHANNEL = 9
    LOGON_REQUIRED = 10


ERROR_MEANINGS = {
    QrcError.PARSE_ERROR: "parse error",
    QrcError.INVALID_REQUEST: "invalid request",
    QrcError.METHOD_NOT_FOUND: "method not found",
    QrcError.INVALID_PARAMS: "invalid params",
    QrcError.SERVER_ERROR: "server error",
    QrcError.STANDBY: "Core is on standby",
    QrcError.BAD_PAGE_REQUEST_ID: "invalid page request ID",
    QrcError.BAD_PAGE_REQUEST: "bad page request",
    QrcError.MISSING_FILE: "missing file",
    QrcError.CHANGE_GROUPS_EXHAUSTED: "change groups exhausted",
    QrcError.UNKNOWN_CHANGE_GROUP: "unknown change group",
    QrcError.UNKNOWN_COMPONENT: "unknown component name",
    QrcError.UNKNOWN_CONTROL: "unknown control",
    QrcError.ILLEGAL_MIXER_CHANNEL: "illegal mixer channel index",
    QrcError.LOGON_REQUIRED: "logon required",
}


def meaning(code: int) -> str:
    """What an error code means, for messages; `error <code>` for codes not in the table."""
    try:
        return ERROR_MEANINGS[QrcError(code)]
    except ValueError:
        return f"error {code}"


class InvalidMessage(ProtocolError):
    """A frame that is not a JSON-RPC message; `rpc_code` and `request_id` shape the error reply."""

    def __init__(
        self, message: str, rpc_code: int = QrcError.INVALID_REQUEST, request_id: Any = None
    ) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    """A method call; without an `id` it is a notification and gets no response."""

    method: str
    params: Any = None
    id: RequestId | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": self.method}
        if self.params is not None:
            body["params"] = self.params
        if self.id is not None:
            body["id"] = self.id
        return _dump(body)


@dataclass(frozen=True, slots=True)
class RpcError:
    """The `error` member of a response."""

    code: int
    message: str = ""
    data: Any = None

    def describe(self) -> str:
        """`unknown control (8): <Core's message>`."""
        text = f"{meaning(self.code)} ({self.code})"
        if self.message and self.message.casefold() != meaning(self.code).casefold():
            text += f": {self.message}"
        return text


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to the request with the same `id` (or `id` None for unparseable input)."""

    id: RequestId | None
    result: Any = None
    error: RpcError | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.id}
        if self.error is not None:
            error: dict[str, Any] = {"code": self.error.code, "message": self.error.message}
            if self.error.data is not None:
                error["data"] = self.error.data
            body["error"] = error
        else:
            body["result"] = self.result
        return _dump(body)


Message = Request | Response


def _dump(body: dict[str, Any]) -> bytes:
    # ASCII-only output: a lone surrogate in a string still encodes (as an escape).
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return text.encode() + TERMINATOR


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(frame: bytes) -> Any:
    """One frame (NUL removed) → a JSON value; InvalidMessage(-32700) if it is not JSON."""
    try:
        return json.loads(frame.decode("utf-8"), parse_float=_finite, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidMessage(
            f"not JSON ({type(err).__name__}): {frame[:60]!r}", QrcError.PARSE_ERROR
        ) from None


def _is_id(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_message(obj: Any) -> Message:
    """A decoded JSON value → Request or Response; InvalidMessage(-32600) if it is neither.

    Liberal where real peers differ: `jsonrpc` may be missing or the number 2.0.
    """
    if not isinstance(obj, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if raw_id is not None and not _is_id(raw_id):
        raise InvalidMessage(f"id must be a number, got {raw_id!r}")
    msg_id: RequestId | None = raw_id
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str) or not method:
            raise InvalidMessage(
                f"method must be a non-empty string, got {method!r}", request_id=msg_id
            )
        return Request(method, obj.get("params"), msg_id)
    if "error" in obj:
        error = obj["error"]
        if not isinstance(error, dict) or not _is_id(error.get("code")):
            raise InvalidMessage(f"malformed error object {error!r}", request_id=msg_id)
        message = error.get("message")
        return Response(
            msg_id,
            error=RpcError(
                int(error["code"]), message if isinstance(message, str) else "", error.get("data")
            ),
        )
    if "result" in obj:
        return Response(msg_id, obj["result"])
    raise InvalidMessage(
        "neither a request nor a response (no method, result or error)", request_id=msg_id
    )


def decode(frame: bytes) -> Message:
    """One frame (NUL removed) → a message; InvalidMessage (a ProtocolError) when it is not one."""
    return to_message(parse_json(frame))


def is_blank(frame: bytes) -> bool:
    """True for frames of whitespace only (e.g. a LF some clients send after the NUL)."""
    return not frame.strip()


class QrcFramer:
    """Splits the byte stream at NUL and decodes each frame; bad frames come back as ProtocolError."""

    def __init__(self, max_len: int = MAX_MESSAGE) -> None:
        self._frames = DelimiterFramer(TERMINATOR, max_len)

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        out: list[Message | ProtocolError] = []
        for frame in self._frames.feed(data):
            if isinstance(frame, ProtocolError):
                out.append(frame)
            elif not is_blank(frame):
                try:
                    out.append(decode(frame))
                except ProtocolError as err:
                    out.append(err)
        return out

    def reset(self) -> None:
        self._frames.reset()
