"""Epson ESC/VP21 codec: the ESC/VP.net packet, replies, the prompt-aware framer.

Random bytes through every parser and framer, split anywhere: tests/test_fuzz_codecs.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.epson_escvp.codec import (
    MAX_LINE,
    POWER_STATES,
    PROMPT,
    REFUSAL,
    Command,
    EscvpFramer,
    Packet,
    PacketType,
    Reply,
    Status,
    connect_reply,
    connect_request,
    error_states,
    parse_command,
    parse_lamp_hours,
    parse_reply,
    source_name,
)
from drivers.errors import ProtocolError

HANDSHAKE = b"ESC/VP.net\x10\x03\x00\x00\x00\x00"  # the 16 bytes every driver sends
HANDSHAKE_OK = b"ESC/VP.net\x10\x03\x00\x00\x20\x00"


def replies() -> EscvpFramer:
    return EscvpFramer(prompts=True)


def commands() -> EscvpFramer:
    return EscvpFramer(prompts=False)


def test_handshake_bytes() -> None:
    assert connect_request().encode() == HANDSHAKE
    assert connect_reply(Status.OK).encode() == HANDSHAKE_OK
    assert Packet.decode(HANDSHAKE_OK) == Packet(PacketType.CONNECT, Status.OK)
    packet = connect_request("secret")
    raw = packet.encode()
    assert len(raw) == 16 + 18 and raw[15] == 1
    assert Packet.decode(raw).password == "secret" and Packet.decode(HANDSHAKE).password is None
    with pytest.raises(ValueError):
        connect_request("x" * 17)
    for bad in (HANDSHAKE[:12], HANDSHAKE[:15] + b"\x01", b"HELLO/VP.net" + HANDSHAKE[10:]):
        with pytest.raises(ProtocolError):
            Packet.decode(bad)


def test_commands_and_replies() -> None:
    assert Command("PWR", "ON").encode() == b"PWR ON\r"
    assert Command("PWR").encode() == b"PWR?\r"
    assert parse_command(b"source 30") == Command("SOURCE", "30")
    assert parse_command(b"LAMP?") == Command("LAMP")
    assert parse_reply(b"PWR=01") == (Reply("PWR", "01"), b"")
    assert parse_reply(b"ERR") == (REFUSAL, b"") and REFUSAL.refused
    assert parse_reply(b"ERR=04") == (Reply("ERR", "04"), b"")  # the answer to ERR?
    assert parse_reply(b"\x90\xa1#&SOURCE=A0") == (Reply("SOURCE", "A0"), b"\x90\xa1#&")
    assert parse_reply(b"NAME=Room:1") == (Reply("NAME", "Room:1"), b"")


@pytest.mark.parametrize("line", [b"", b"PWR", b"=01", b"pwr=01", b"PWR=\x01", b"\xff\xfe"])
def test_not_a_reply(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(line)


@pytest.mark.parametrize("line", [b"", b"PWR", b"PWR ", b"1PWR?", b"PWR?x", b"PWR\tON"])
def test_malformed_commands(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_command(line)


def test_reply_stream_with_handshake_prompts_and_errors() -> None:
    stream = HANDSHAKE_OK + b":PWR=01\r:ERR\r:SOURCE=30\r:NAME=Room:1\r:"
    frames = [HANDSHAKE_OK, PROMPT, b"PWR=01", PROMPT, b"ERR", PROMPT, b"SOURCE=30", PROMPT]
    frames += [b"NAME=Room:1", PROMPT]
    assert replies().feed(stream) == frames
    bytewise = replies()
    assert [f for i in range(len(stream)) for f in bytewise.feed(stream[i : i + 1])] == frames


def test_junk_before_a_prompt_is_reported_and_the_prompt_kept() -> None:
    out = replies().feed(b"\x90\x91#:\r\n\rLAMP=12\r\n:")
    assert isinstance(out[0], ProtocolError) and out[1:] == [PROMPT, b"LAMP=12", PROMPT]


def test_overlong_lines_are_dropped_whole() -> None:
    framer = replies()
    out = framer.feed(b"NAME=" + b"x" * MAX_LINE)
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    assert framer.feed(b"xx:yy\r:") == [PROMPT]  # the tail (with its colon) is not a prompt
    assert framer.feed(b"PWR=04\r:") == [b"PWR=04", PROMPT]
    merged = replies().feed(b"x" * (MAX_LINE + 1) + b"\rPWR=04\r:")
    assert isinstance(merged[0], ProtocolError) and merged[1:] == [b"PWR=04", PROMPT]


@pytest.mark.parametrize("prompts", [True, False])
def test_an_overlong_line_is_reported_alike_whole_or_byte_by_byte(prompts: bool) -> None:
    data = b"X" * 30 + b"\r"
    whole = EscvpFramer(prompts=prompts, max_len=24).feed(data)
    framer = EscvpFramer(prompts=prompts, max_len=24)
    pieces = [frame for i in range(len(data)) for frame in framer.feed(data[i : i + 1])]
    assert (
        [str(e) for e in whole]
        == [str(e) for e in pieces]
        == ["line over 24 bytes dropped: b'XXXXXXXXXXXXXXXXXXXXXXXXX'..."]
    )


def test_command_stream_keeps_lone_crs() -> None:
    stream = HANDSHAKE + b"\rPWR?\r\nSOURCE 30\r\r"
    expected = [HANDSHAKE, b"", b"PWR?", b"SOURCE 30", b""]
    assert commands().feed(stream) == expected
    bytewise = commands()
    assert [f for i in range(len(stream)) for f in bytewise.feed(stream[i : i + 1])] == expected
    assert commands().feed(b"ESC\r") == [b"ESC"]  # a line that only starts like a packet


def test_value_tables() -> None:
    assert POWER_STATES["02"][0] == "warming" and POWER_STATES["05"] == ("off", "abnormal standby")
    assert source_name("30") == "HDMI" and source_name("A0") == "HDMI 2"
    assert source_name("11") == "Computer 1 (11)" and source_name("5F") == "Source 5F"
    assert error_states("00") == {} and error_states("04") == {"temperature": "error"}
    assert error_states("0a") == {"auto_iris": "error"} and error_states("7E") == {
        "error_7E": "error"
    }
    assert parse_lamp_hours("1234") == 1234 and parse_lamp_hours("100 200") == 100
    for bad in (
        lambda: error_states("4"),
        lambda: parse_lamp_hours("x"),
        lambda: parse_lamp_hours(""),
        lambda: parse_lamp_hours("²"),  # a digit to str.isdigit, not to int()
    ):
        with pytest.raises(ProtocolError):
            bad()


reply_frames = st.sampled_from(
    [b"PWR=01", b"ERR", b"SOURCE=A0", b"NAME=a:b", b"LAMP=0", HANDSHAKE_OK, PROMPT]
)


@given(st.lists(reply_frames, max_size=10), st.data())
def test_chunking_never_changes_frames(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(f if f == PROMPT or f.startswith(b"ESC") else f + b"\r" for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    framer = replies()
    assert [frame for piece in pieces for frame in framer.feed(piece)] == frames
