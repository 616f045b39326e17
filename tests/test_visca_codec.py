"""VISCA codec: the byte strings of protocols/visca-ip.md, malformed input, property tests."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.visca.codec import (
    MAX_PACKET,
    POWER_INQUIRY,
    POWER_ON,
    RESET,
    DatagramFramer,
    Message,
    PayloadType,
    PresetAction,
    Reply,
    ReplyKind,
    SerialFramer,
    ViscaError,
    decode_message,
    from_nibbles,
    memory,
    nibbles,
    packet,
    pan_tilt_drive,
    pan_tilt_position,
    parse_command,
    parse_pan_tilt_drive,
    parse_reply,
    parse_zoom_drive,
    split_packets,
    zoom_drive,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_messages_match_the_documented_examples() -> None:
    power_on = Message(PayloadType.COMMAND, 1, packet(1, POWER_ON)).encode()
    assert power_on == h("01 00 00 06 00 00 00 01 81 01 04 00 02 FF")
    inquiry = Message(PayloadType.INQUIRY, 2, packet(1, POWER_INQUIRY)).encode()
    assert inquiry == h("01 10 00 05 00 00 00 02 81 09 04 00 FF")
    recall = Message(PayloadType.COMMAND, 3, packet(1, memory(PresetAction.RECALL, 1))).encode()
    assert recall == h("01 00 00 07 00 00 00 03 81 01 04 3F 02 01 FF")
    assert Message(PayloadType.CONTROL, 0, RESET).encode() == h("02 00 00 01 00 00 00 00 01")
    ack = decode_message(h("01 11 00 03 00 00 00 01 90 41 FF"))
    assert ack == Message(PayloadType.REPLY, 1, h("90 41 FF"))
    assert decode_message(h("02 01 00 01 00 00 00 00 01")).type is PayloadType.CONTROL_REPLY


@pytest.mark.parametrize(
    ("wire", "reply"),
    [
        ("90 41 FF", Reply(1, ReplyKind.ACK, 1)),
        ("90 52 FF", Reply(1, ReplyKind.COMPLETION, 2)),
        ("90 50 02 FF", Reply(1, ReplyKind.COMPLETION, 0, h("02"))),
        ("90 60 02 FF", Reply(1, ReplyKind.ERROR, 0, error=ViscaError.SYNTAX)),
        ("90 60 03 FF", Reply(1, ReplyKind.ERROR, 0, error=ViscaError.BUFFER_FULL)),
        ("A0 61 41 FF", Reply(2, ReplyKind.ERROR, 1, error=ViscaError.NOT_EXECUTABLE)),
        ("90 38 FF", Reply(1, ReplyKind.NETWORK_CHANGE)),
        ("88 30 02 FF", Reply(0, ReplyKind.BROADCAST, data=h("30 02"))),
    ],
)
def test_replies_are_classified(wire: str, reply: Reply) -> None:
    assert parse_reply(h(wire)) == reply
    assert reply.encode() == h(wire)


@pytest.mark.parametrize(
    "wire",
    ["90 41", "90 FF", "81 41 FF", "95 41 FF", "90 41 FF FF", "90 70 FF", "90 60 FF", "00" * 17],
)
def test_malformed_replies_are_protocol_errors(wire: str) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(h(wire))


@pytest.mark.parametrize(
    "wire",
    [
        "01 00 00 05 00 00 00 01 81 01 04 00 02 FF",  # length says 5, payload is 6
        "03 00 00 01 00 00 00 01 01",  # unknown payload type
        "01 00 00 00 00 00 00 01",  # no payload
        "01 00 00 11 00 00 00 01" + " 00" * 17,  # payload over 16 bytes
    ],
)
def test_bad_headers_are_protocol_errors(wire: str) -> None:
    with pytest.raises(ProtocolError):
        decode_message(h(wire))


@pytest.mark.parametrize(
    ("pan", "tilt", "wire"),
    [
        (0, 5, "01 06 01 01 05 03 01"),  # up
        (0, -5, "01 06 01 01 05 03 02"),  # down
        (-3, 0, "01 06 01 03 01 01 03"),  # left
        (4, 0, "01 06 01 04 01 02 03"),  # right
        (-2, 3, "01 06 01 02 03 01 01"),  # up-left
        (2, 3, "01 06 01 02 03 02 01"),  # up-right
        (-2, -3, "01 06 01 02 03 01 02"),  # down-left
        (0x18, -0x14, "01 06 01 18 14 02 02"),  # down-right, fastest
        (0, 0, "01 06 01 01 01 03 03"),  # stop
    ],
)
def test_pan_tilt_directions(pan: int, tilt: int, wire: str) -> None:
    assert pan_tilt_drive(pan, tilt) == h(wire)
    assert parse_pan_tilt_drive(h(wire)) == (pan, tilt)


def test_zoom_speeds() -> None:
    assert zoom_drive(0) == h("01 04 07 00")
    assert zoom_drive(1) == h("01 04 07 20")
    assert zoom_drive(3) == h("01 04 07 22")
    assert zoom_drive(-8) == h("01 04 07 37")
    assert zoom_drive(99) == h("01 04 07 27")  # clamped to the fastest
    assert parse_zoom_drive(h("01 04 07 02")) == 1  # standard tele
    assert parse_zoom_drive(h("01 04 07 03")) == -1  # standard wide
    with pytest.raises(ValueError):
        parse_zoom_drive(h("01 04 07 28"))


def test_positions_are_nibble_coded() -> None:
    assert nibbles(0x4000) == h("04 00 00 00")
    assert nibbles(-1) == h("0F 0F 0F 0F")
    assert pan_tilt_position(h("0F 0F 0F 0F 00 01 02 03")) == (-1, 0x123)
    with pytest.raises(ProtocolError):
        from_nibbles(h("10 00"))


def test_two_packets_in_one_datagram_are_two_messages() -> None:
    """Some clones send ACK and completion in one datagram."""
    frames = DatagramFramer().feed(h("01 11 00 06 00 00 00 09 90 41 FF 90 51 FF"))
    assert frames == [
        Message(PayloadType.REPLY, 9, h("90 41 FF")),
        Message(PayloadType.REPLY, 9, h("90 51 FF")),
    ]


def test_serial_framer_cuts_at_ff_and_skips_junk() -> None:
    framer = SerialFramer()
    assert framer.feed(h("90 41")) == []
    frames = framer.feed(h("FF 90 51 FF 12 34 FF 90"))
    assert frames[:2] == [
        Message(PayloadType.REPLY, None, h("90 41 FF")),
        Message(PayloadType.REPLY, None, h("90 51 FF")),
    ]
    assert isinstance(frames[2], ProtocolError)
    assert framer.feed(h("50 02 FF")) == [Message(PayloadType.REPLY, None, h("90 50 02 FF"))]


def test_commands_parse_address_and_body() -> None:
    assert parse_command(h("81 01 04 00 02 FF")) == (1, POWER_ON)
    assert parse_command(h("88 30 01 FF")) == (8, h("30 01"))
    for bad in ("80 01 FF", "90 01 FF", "81 01"):
        with pytest.raises(ProtocolError):
            parse_command(h(bad))


# ---- properties ------------------------------------------------------------------------


@given(st.binary(max_size=40))
def test_random_bytes_never_raise_anything_but_protocol_error(data: bytes) -> None:
    for parse in (decode_message, parse_reply, parse_command, split_packets):
        with contextlib.suppress(ProtocolError):
            parse(data)
    for framer in (DatagramFramer(), SerialFramer()):
        for item in framer.feed(data):
            assert isinstance(item, Message | ProtocolError)


@given(st.lists(st.binary(max_size=20), max_size=8))
def test_serial_framer_survives_any_chunking(chunks: list[bytes]) -> None:
    framer = SerialFramer()
    for chunk in chunks:
        for item in framer.feed(chunk):
            if isinstance(item, Message):
                assert 3 <= len(item.payload) <= MAX_PACKET and item.payload[-1] == 0xFF


@given(
    st.sampled_from(PayloadType),
    st.integers(0, 0xFFFFFFFF),
    st.binary(min_size=1, max_size=MAX_PACKET),
)
def test_messages_round_trip(kind: PayloadType, seq: int, payload: bytes) -> None:
    message = Message(kind, seq, payload)
    assert decode_message(message.encode()) == message


_data = st.binary(max_size=12).map(lambda b: bytes(x & 0x0F for x in b))


@given(
    st.integers(1, 7),
    st.sampled_from([ReplyKind.ACK, ReplyKind.COMPLETION, ReplyKind.ERROR]),
    st.integers(0, 15),
    _data,
    st.sampled_from(ViscaError),
)
def test_replies_round_trip(
    address: int, kind: ReplyKind, socket: int, data: bytes, error: ViscaError
) -> None:
    if kind is ReplyKind.ACK:
        reply = Reply(address, kind, socket)
    elif kind is ReplyKind.ERROR:
        reply = Reply(address, kind, socket, error=error)
    else:
        reply = Reply(address, kind, socket, data)
    assert parse_reply(reply.encode()) == reply


@given(st.integers(-0xFF, 0xFF), st.integers(-0xFF, 0xFF))
def test_pan_tilt_drives_round_trip(pan: int, tilt: int) -> None:
    assert parse_pan_tilt_drive(pan_tilt_drive(pan, tilt)) == (pan, tilt)


@given(st.integers(-8, 8))
def test_zoom_drives_round_trip(speed: int) -> None:
    assert parse_zoom_drive(zoom_drive(speed)) == speed


@given(st.integers(-0x8000, 0x7FFF))
def test_signed_positions_round_trip(value: int) -> None:
    assert from_nibbles(nibbles(value), signed=True) == value
