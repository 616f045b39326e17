"""Samsung MDC codec: the byte examples of the protocol note, the framer, property tests."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.samsung_mdc.codec import (
    TLS_PREAMBLE,
    ChecksumError,
    Cmd,
    Frame,
    MdcFramer,
    Reply,
    Status,
    checksum,
    decode_frame,
    decode_text,
    input_code,
    input_name,
    parse_reply,
)

# (request frame, its bytes, the reply, its bytes) from protocols/samsung-mdc.md §3
EXAMPLES = [
    (Frame(Cmd.POWER, 1), "AA 11 01 00 12", Reply(1, True, Cmd.POWER, b"\x01"), "AA FF 01 03 41 11 01 56"),
    (Frame(Cmd.POWER, 1, b"\x01"), "AA 11 01 01 01 14", Reply(1, True, Cmd.POWER, b"\x01"), "AA FF 01 03 41 11 01 56"),
    (Frame(Cmd.POWER, 1, b"\x00"), "AA 11 01 01 00 13", Reply(1, True, Cmd.POWER, b"\x00"), "AA FF 01 03 41 11 00 55"),
    (Frame(Cmd.POWER, 0, b"\x01"), "AA 11 00 01 01 13", Reply(0, True, Cmd.POWER, b"\x01"), "AA FF 00 03 41 11 01 55"),
    (Frame(Cmd.VOLUME, 0, b"\x18"), "AA 12 00 01 18 2B", Reply(0, True, Cmd.VOLUME, b"\x18"), "AA FF 00 03 41 12 18 6D"),
    (Frame(Cmd.MUTE, 1, b"\x01"), "AA 13 01 01 01 16", Reply(1, True, Cmd.MUTE, b"\x01"), "AA FF 01 03 41 13 01 58"),
    (Frame(Cmd.INPUT_SOURCE, 1, b"\x21"), "AA 14 01 01 21 37", Reply(1, True, Cmd.INPUT_SOURCE, b"\x21"), "AA FF 01 03 41 14 21 79"),
]  # fmt: skip


@pytest.mark.parametrize(("request_frame", "request_hex", "reply", "reply_hex"), EXAMPLES)
def test_verified_byte_examples(
    request_frame: Frame, request_hex: str, reply: Reply, reply_hex: str
) -> None:
    assert request_frame.encode() == bytes.fromhex(request_hex)
    assert decode_frame(bytes.fromhex(request_hex)) == request_frame
    assert reply.encode() == bytes.fromhex(reply_hex)
    assert parse_reply(bytes.fromhex(reply_hex)) == reply


def test_status_query_and_the_published_status_reply() -> None:
    assert Frame(Cmd.STATUS, 1).encode() == bytes.fromhex("AA 00 01 00 01")
    reply = parse_reply(bytes.fromhex("AA FF 00 09 41 00 00 06 00 14 00 00 00 63"))
    assert reply.ack and reply.rcmd == Cmd.STATUS
    status = Status.decode(reply.values)
    assert status == Status(power=False, volume=6, mute=False, input=0x14)
    assert input_name(status.input) == "PC"
    assert Reply(0, True, Cmd.STATUS, status.encode()).encode() == bytes.fromhex(
        "AA FF 00 09 41 00 00 06 00 14 00 00 00 63"
    )


def test_checksum_excludes_the_header_and_wraps() -> None:
    assert checksum(bytes.fromhex("12 00 01 18")) == 0x2B
    assert checksum(bytes([0xFF, 0xFF, 0x03])) == 0x01
    frame = Frame(Cmd.MODEL_NAME, 0xFE, b"\xff" * 3).encode()
    assert frame[-1] == (0x8A + 0xFE + 3 + 3 * 0xFF) & 0xFF


def test_nak_reply_and_its_error_byte() -> None:
    raw = Reply(1, False, Cmd.POWER, b"\x01").encode()
    assert raw[:6] == bytes.fromhex("AA FF 01 03 4E 11")
    reply = parse_reply(raw)
    assert not reply.ack and reply.error == 0x01 and reply.rcmd == Cmd.POWER
    assert Reply(1, True, Cmd.POWER, b"\x01").error is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("AA FF 01 03 41 11 01 57", "checksum"),
        ("AA FF 01 03 41 11 01", "length"),
        ("AB FF 01 03 41 11 01 56", "not an MDC frame"),
        ("AA 11 01 00 12", "expected a reply"),
        ("AA FF 01 01 41 42", "too short"),
        ("AA FF 01 02 58 11 6B", "neither ACK nor NAK"),
    ],
)
def test_malformed_replies_raise_protocol_error(raw: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_reply(bytes.fromhex(raw))


def test_bad_checksum_is_a_checksum_error_carrying_the_frame() -> None:
    raw = bytes.fromhex("AA FF 01 03 41 11 01 57")
    with pytest.raises(ChecksumError) as info:
        decode_frame(raw)
    assert info.value.frame == raw and "expected 0x56" in str(info.value)


def test_input_names_and_codes() -> None:
    assert input_code("HDMI 1") == input_code("hdmi1") == input_code("HDMI_1") == 0x21
    assert input_code("DisplayPort 1") == input_code("DP 1") == input_code("dp1") == 0x25
    assert input_code("0x21") == input_code("21") == 0x21
    assert input_code("Input 0x99") == 0x99 and input_name(0x99) == "Input 0x99"
    assert input_code("SDI 1") is None
    assert input_name(0x25) == "DisplayPort 1"


def test_text_values_lose_their_padding() -> None:
    assert decode_text(b"QM55B\x00\x00  ") == "QM55B"


def test_frame_encode_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        Frame(0x100, 0).encode()
    with pytest.raises(ValueError):
        Frame(Cmd.POWER, 0, bytes(256)).encode()


# ---- framer ---------------------------------------------------------------------------


def feed_all(framer: MdcFramer, chunks: list[bytes]) -> list[bytes | ProtocolError]:
    return [item for chunk in chunks for item in framer.feed(chunk)]


def test_framer_joins_split_frames_and_splits_merged_ones() -> None:
    one, two = bytes.fromhex("AA FF 01 03 41 11 01 56"), bytes.fromhex("AA FF 01 03 41 12 18 6E")
    stream = one + two
    framer = MdcFramer(replies_only=True)
    assert feed_all(framer, [stream[i : i + 1] for i in range(len(stream))]) == [one, two]
    assert framer.feed(stream) == [one, two]


def test_framer_resyncs_on_the_header_after_junk() -> None:
    good = bytes.fromhex("AA FF 01 03 41 11 01 56")
    out = MdcFramer(replies_only=True).feed(b"\x01\x02junk" + good)
    assert isinstance(out[0], ProtocolError) and "6 bytes" in str(out[0])
    assert out[1:] == [good]


def test_framer_skips_a_stray_header_that_starts_no_reply() -> None:
    good = bytes.fromhex("AA FF 01 03 41 11 01 56")
    out = MdcFramer(replies_only=True).feed(b"\xaa\x11" + good)
    assert isinstance(out[0], ProtocolError) and out[1:] == [good]


def test_framer_reports_bad_checksum_and_keeps_the_next_frame() -> None:
    bad, good = bytes.fromhex("AA FF 01 03 41 11 01 57"), bytes.fromhex("AA FF 01 03 41 11 00 55")
    out = MdcFramer().feed(bad + good)
    assert isinstance(out[0], ChecksumError) and out[0].frame == bad
    assert out[1:] == [good]


def test_framer_passes_requests_unless_replies_only() -> None:
    request = Frame(Cmd.VOLUME, 1, b"\x10").encode()
    assert MdcFramer().feed(request) == [request]
    assert all(isinstance(x, ProtocolError) for x in MdcFramer(replies_only=True).feed(request))


def test_framer_recognises_the_tls_greeting_even_split() -> None:
    framer = MdcFramer(replies_only=True)
    assert framer.feed(TLS_PREAMBLE[:6]) == []
    assert framer.feed(TLS_PREAMBLE[6:]) == [TLS_PREAMBLE]
    out = framer.feed(b"MDX" + bytes.fromhex("AA FF 01 03 41 11 01 56"))
    assert isinstance(out[0], ProtocolError) and out[1] == bytes.fromhex("AA FF 01 03 41 11 01 56")


# ---- properties -----------------------------------------------------------------------

frames = st.builds(
    Frame,
    cmd=st.integers(0, 0xFE),
    display_id=st.integers(0, 0xFE),
    data=st.binary(max_size=40),
)
replies = st.builds(
    Reply,
    display_id=st.integers(0, 0xFE),
    ack=st.booleans(),
    rcmd=st.integers(0, 0xFF),
    values=st.binary(max_size=40),
)


@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_random_bytes_never_raise_and_frames_are_valid(
    chunks: list[bytes], replies_only: bool
) -> None:
    framer = MdcFramer(replies_only)
    for item in feed_all(framer, chunks):
        if isinstance(item, ProtocolError):
            continue
        assert isinstance(item, bytes)
        if item != TLS_PREAMBLE:
            frame = decode_frame(item)  # the framer only lets good checksums through
            assert not replies_only or frame.cmd == 0xFF


@given(st.binary(max_size=300))
def test_parsers_raise_only_protocol_error(raw: bytes) -> None:
    for parse in (decode_frame, parse_reply, Status.decode):
        with contextlib.suppress(ProtocolError):
            parse(raw)


@given(frames)
def test_frame_round_trip(frame: Frame) -> None:
    assert decode_frame(frame.encode()) == frame


@given(replies)
def test_reply_round_trip(reply: Reply) -> None:
    assert parse_reply(reply.encode()) == reply


@given(st.lists(replies, min_size=1, max_size=5), st.data())
def test_framer_round_trips_a_reply_stream_cut_anywhere(
    replies: list[Reply], data: st.DataObject
) -> None:
    stream = b"".join(r.encode() for r in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    out = feed_all(MdcFramer(replies_only=True), chunks)
    assert [parse_reply(item) for item in out if isinstance(item, bytes)] == replies
    assert len(out) == len(replies)


@given(st.lists(frames, min_size=1, max_size=4), st.binary(max_size=20))
def test_framer_finds_frames_after_junk_without_headers(frames: list[Frame], junk: bytes) -> None:
    junk = junk.replace(b"\xaa", b"").replace(b"M", b"")
    stream = b"".join(junk + f.encode() for f in frames)
    out = MdcFramer().feed(stream)
    assert [decode_frame(x) for x in out if isinstance(x, bytes)] == frames
