"""Q-SYS QRC codec: NUL framing, JSON-RPC messages, and property tests that never crash it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.qsys.codec import (
    InvalidMessage,
    QrcError,
    QrcFramer,
    Request,
    Response,
    RpcError,
    decode,
    meaning,
)

STATUS = b'{"jsonrpc":"2.0","method":"EngineStatus","params":{"State":"Active"}}\0'
REPLY = b'{"jsonrpc":"2.0","id":7,"result":[{"Name":"MainGain","Value":-12}]}\0'


def test_messages_split_across_reads_are_reassembled() -> None:
    framer = QrcFramer()
    data = STATUS + REPLY
    out: list[Any] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == [
        Request("EngineStatus", {"State": "Active"}),
        Response(7, [{"Name": "MainGain", "Value": -12}]),
    ]


def test_coalesced_messages_come_out_in_order_and_blank_frames_are_skipped() -> None:
    out = QrcFramer().feed(STATUS + b"\n\0" + REPLY + b"\0")
    assert [type(m) for m in out] == [Request, Response]


def test_bad_frames_are_reported_in_place_without_losing_neighbours() -> None:
    out = QrcFramer().feed(STATUS + b"\x80\xfe#junk\0" + b'{"id":1}\0' + b"[1,2]\0" + REPLY)
    assert isinstance(out[0], Request) and isinstance(out[-1], Response)
    errors = out[1:-1]
    assert [e.rpc_code for e in errors if isinstance(e, InvalidMessage)] == [
        QrcError.PARSE_ERROR,
        QrcError.INVALID_REQUEST,
        QrcError.INVALID_REQUEST,
    ]


def test_over_long_message_is_dropped() -> None:
    framer = QrcFramer(max_len=80)  # REPLY (67 bytes) fits
    out = framer.feed(b'{"method":"NoOp","params":"' + b"x" * 100)
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    # the over-long message's tail is dropped with it, not decoded as a (bad) message
    assert framer.feed(b'"}\0' + REPLY) == [Response(7, [{"Name": "MainGain", "Value": -12}])]


@pytest.mark.parametrize(
    "frame",
    [
        b'{"id":1,"result":NaN}',
        b'{"id":1,"result":-Infinity}',
        b'{"id":1,"result":1e400}',
        b"[" * 100_000,
        b'{"id":1,"result":' + b"9" * 5000 + b"}",
        b'{"id":"abc","method":"NoOp"}',
        b'{"id":true,"result":1}',
        b'{"method":""}',
        b'{"id":1,"error":"bad"}',
        b'{"jsonrpc":"2.0","id":1}',
    ],
)
def test_frames_that_are_not_qrc_messages_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(frame)


def test_liberal_in_what_it_accepts() -> None:
    assert decode(b'{"jsonrpc":2.0,"method":"NoOp","id":3}') == Request("NoOp", None, 3)
    assert decode(b'{"method":"NoOp","params":{}}') == Request("NoOp", {})
    error = decode(b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700}}')
    assert error == Response(None, error=RpcError(-32700, ""))


def test_encoding_is_json_rpc_2_with_a_nul_terminator() -> None:
    data = Request("Control.Set", {"Name": "MainGain", "Value": -12.5}, 12).encode()
    assert data.endswith(b"\0") and data.count(b"\0") == 1
    assert json.loads(data[:-1]) == {
        "jsonrpc": "2.0",
        "method": "Control.Set",
        "params": {"Name": "MainGain", "Value": -12.5},
        "id": 12,
    }
    notification = json.loads(Request("NoOp", {}).encode()[:-1])
    assert "id" not in notification and notification["jsonrpc"] == "2.0"


def test_error_descriptions_name_the_code() -> None:
    assert RpcError(8, "Unknown control MainGain").describe() == (
        "unknown control (8): Unknown control MainGain"
    )
    assert RpcError(10, "Logon required").describe() == "logon required (10)"
    assert meaning(99) == "error 99"


# ---- properties ------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ids = st.none() | st.integers(0, 2**31 - 1)
requests = st.builds(Request, st.text(min_size=1), json_values, ids)
errors = st.builds(RpcError, st.integers(-32768, 32767), st.text(), json_values)
responses = st.builds(Response, ids, json_values) | st.builds(
    lambda i, e: Response(i, error=e), ids, errors
)


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_never_raise_from_the_framer(chunks: list[bytes]) -> None:
    framer = QrcFramer(max_len=256)
    for chunk in chunks:
        for item in framer.feed(chunk):
            assert isinstance(item, Request | Response | ProtocolError)


@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(frame)


@given(json_values)
def test_random_json_decodes_or_raises_protocol_error(value: Any) -> None:
    with contextlib.suppress(ProtocolError):
        decode(json.dumps(value).encode())


@given(requests | responses)
def test_encode_decode_round_trip(message: Request | Response) -> None:
    data = message.encode()
    assert data.endswith(b"\0") and b"\0" not in data[:-1]
    assert QrcFramer().feed(data) == [message]
