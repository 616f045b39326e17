"""Tesira wire format: Telnet stripping, line framing, value parsing (with property tests)."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.tesira.codec import (
    Err,
    ErrorKind,
    Ok,
    Other,
    Publish,
    encode_command,
    encode_publish,
    encode_value_reply,
    format_value,
    parse_line,
    parse_values,
    reply_framer,
    tokenize,
)
from drivers.transport.telnet import IAC, NOP, SB, SE, Negotiation, Verb

NOP_COMMAND = bytes((IAC, NOP))


def feed_all(chunks: list[bytes]) -> tuple[list[bytes], list[Negotiation], bytes]:
    """Frames, the negotiations seen and the bytes the framer answered with."""
    seen: list[Negotiation] = []
    sent = bytearray()
    framer = reply_framer(sent.extend, on_negotiation=seen.append)
    frames: list[bytes] = []
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert not isinstance(frame, ProtocolError), frame
            frames.append(frame)
    return frames, seen, bytes(sent)


def test_documented_replies_parse() -> None:
    assert parse_line(b'+OK "value":-10.000000') == Ok({"value": -10.0})
    assert parse_line(b'+OK "value":true').value is True
    assert parse_line(b"+OK").value is None
    assert parse_line(b"+OK 2").value == 2  # concise
    aliases = parse_line(b'+OK "list":["123" "AudioMeter1" "DEVICE" "Level1"]')
    assert isinstance(aliases, Ok) and aliases.fields["list"] == [
        "123",
        "AudioMeter1",
        "DEVICE",
        "Level1",
    ]
    multi = parse_line(b'+OK "time":"12:00" "number":"503-367-3568" "line":"2"')
    assert isinstance(multi, Ok) and multi.fields["time"] == "12:00"
    enum = parse_line(b'+OK "callState":[{"state":VOIP_CALL_STATE_IDLE "lineId":0}]')
    assert isinstance(enum, Ok) and enum.fields["callState"] == [
        {"state": "VOIP_CALL_STATE_IDLE", "lineId": 0}
    ]
    assert parse_line(b'! "publishToken":"MyLevelName" "value":-98.099998') == Publish(
        "MyLevelName", -98.099998
    )
    assert parse_line(b'! "publishToken":"" "value":-100.000000') == Publish("", -100.0)
    assert parse_line(b'! "myLevelName" -40.244328') == Publish("myLevelName", -40.244328)
    banner = parse_line(b"Welcome to the Tesira Text Protocol Server...")
    assert isinstance(banner, Other) and banner.is_banner
    assert parse_line(b"Level1 get level 1") == Other("Level1 get level 1")  # an echo


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (
            b'-ERR address not found: {"deviceId":0 "classCode":0 "instanceNum":0}',
            ErrorKind.ADDRESS_NOT_FOUND,
        ),
        (
            b"-ERR Parse error at 8: verb was not one of the commands supported by Services",
            ErrorKind.PARSE_ERROR,
        ),
        (b"-ERR 'Aliases' is not supported by TextSession::Attributes", ErrorKind.NOT_SUPPORTED),
        (
            b"-ERR INVALID_PARAMETER Index out of range:channelIndex min:1 max:8 received:10",
            ErrorKind.INVALID_PARAMETER,
        ),
        (b"-ERR Value out of range: attr:level min:-100 max:12", ErrorKind.INVALID_PARAMETER),
        (b"-ERR WRONG_STATE", ErrorKind.WRONG_STATE),
        (b"-ERR ALREADY_SUBSCRIBED", ErrorKind.ALREADY_SUBSCRIBED),
        (b"-CANNOT_DELIVER", ErrorKind.CANNOT_DELIVER),
        (b"-GENERAL_FAILURE", ErrorKind.GENERAL_FAILURE),
        (b"-ERR something new", ErrorKind.OTHER),
    ],
)
def test_error_lines_are_classified(line: bytes, kind: ErrorKind) -> None:
    message = parse_line(line)
    assert isinstance(message, Err) and message.kind is kind
    assert message.text == line[1:].decode()


@pytest.mark.parametrize(
    "line",
    [
        b'+OK "value":',
        b'+OK "value":[1 2',
        b'+OK "unterminated',
        b'! "publishToken":5 "value":1',
        b"! 1",
    ],
)
def test_malformed_lines_raise_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_line(line)


def test_nesting_is_bounded() -> None:
    with pytest.raises(ProtocolError):
        parse_values("[" * 10_000)


def test_commands_are_encoded_compactly_and_quoted_when_needed() -> None:
    assert encode_command("Level1", "set", "level", 1, -10.0) == b"Level1 set level 1 -10\n"
    assert encode_command("Level1", "set", "level", 1, -10.5) == b"Level1 set level 1 -10.5\n"
    assert encode_command("Mute1", "set", "mute", 2, True) == b"Mute1 set mute 2 true\n"
    assert encode_command("My Level", "get", "level", 1) == b'"My Level" get level 1\n'
    assert [t.text for t in tokenize('"My Level" get level 1')] == ["My Level", "get", "level", "1"]
    with pytest.raises(ValueError):
        encode_command("Level1", "set", "level", 1, math.nan)


def test_telnet_negotiation_is_stripped_and_reported_in_order() -> None:
    stream = (
        bytes((IAC, Verb.DO, 24, IAC, Verb.WILL, 1))
        + b"\r\nWelcome to the Tesira Text Protocol Server...\r\n"
        + b'+OK "va'
        + bytes((IAC, Verb.DO, 32))
        + b'lue":1.000000\r\n'
        + bytes((IAC, SB, 24, 1, IAC, IAC, 7, IAC, SE))
        + NOP_COMMAND
        + b"+OK\r\x00"
    )
    frames, seen, sent = feed_all([stream])
    assert frames == [
        b"Welcome to the Tesira Text Protocol Server...",
        b'+OK "value":1.000000',
        b"+OK",
    ]
    assert [str(n) for n in seen] == ["DO 24", "WILL 1", "DO 32"]
    assert [str(n.refusal()) for n in seen] == ["WONT 24", "DONT 1", "WONT 32"]
    assert sent == bytes((IAC, Verb.WONT, 24, IAC, Verb.DONT, 1, IAC, Verb.WONT, 32))
    assert Negotiation(Verb.WONT, 5).refusal() is None  # nothing to answer


def test_cr_nul_endings_never_leave_a_nul_on_the_next_line() -> None:
    data = b'+OK "value":-10.000000\r\x00! "publishToken":"t" "value":true\r\x00+OK\r\x00'
    for cut in range(len(data) + 1):  # every split point, including between CR and NUL
        frames, _, _ = feed_all([data[:cut], data[cut:]])
        assert frames == [b'+OK "value":-10.000000', b'! "publishToken":"t" "value":true', b"+OK"]


def test_escaped_iac_is_a_data_byte() -> None:
    frames, seen, sent = feed_all([b"a" + bytes((IAC, IAC)) + b"b\r\n"])
    assert frames == [b"a\xffb"] and seen == [] and sent == b""


def test_overlong_subnegotiation_is_reported_not_buffered_forever() -> None:
    framer = reply_framer(bytearray().extend)
    out = framer.feed(bytes((IAC, SB)) + b"x" * 5000 + b"\r\n+OK\r\n")
    assert any(isinstance(f, ProtocolError) for f in out)
    assert out[-1] == b"+OK"


# ---- property tests ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_random_bytes_only_ever_raise_protocol_error(chunks: list[bytes]) -> None:
    framer = reply_framer(bytearray().extend)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            if isinstance(frame, ProtocolError):
                continue
            with contextlib.suppress(ProtocolError):
                parse_line(frame)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_ever_raises_protocol_error(text: str) -> None:
    for line in (text, "+OK " + text, "! " + text, "-" + text):
        with contextlib.suppress(ProtocolError):
            parse_line(line.encode())
    with contextlib.suppress(ProtocolError):
        tokenize(text)


_LINE = st.binary(min_size=1, max_size=30).map(
    lambda b: bytes(c for c in b if c not in (0, 10, 13, IAC)) or b"x"
)
_TELNET = st.one_of(
    st.builds(lambda v, o: bytes((IAC, v, o)), st.sampled_from(list(Verb)), st.integers(0, 255)),
    st.just(NOP_COMMAND),
    st.binary(max_size=10).map(
        lambda b: bytes((IAC, SB)) + b.replace(bytes((IAC,)), b"") + bytes((IAC, SE))
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_LINE, st.lists(st.tuples(st.integers(0, 40), _TELNET), max_size=3)), max_size=6
    ),
    st.sampled_from([b"\r\n", b"\r\x00"]),
    st.integers(1, 7),
)
def test_any_iac_sequence_is_stripped_and_every_request_answered(
    lines: list[tuple[bytes, list[tuple[int, bytes]]]], ending: bytes, chunk: int
) -> None:
    stream = b""
    wanted: list[Negotiation] = []
    for line, inserts in lines:
        last = 0
        for pos, command in sorted((p % (len(line) + 1), c) for p, c in inserts):
            stream += line[last:pos] + command
            last = pos
            if command[1] in set(Verb):
                wanted.append(Negotiation(Verb(command[1]), command[2]))
        stream += line[last:] + ending
    frames, seen, sent = feed_all([stream[i : i + chunk] for i in range(0, len(stream), chunk)])
    assert frames == [line for line, _ in lines]
    assert seen == wanted
    refused = {Verb.DO: Verb.WONT, Verb.WILL: Verb.DONT}
    assert sent == b"".join(
        bytes((IAC, refused[n.verb], n.option)) for n in seen if n.verb in refused
    )
    for negotiation in seen:
        refusal = negotiation.refusal()
        if negotiation.verb in (Verb.DO, Verb.WILL):
            assert refusal is not None and refusal.answers(negotiation)
            assert refusal.verb in (Verb.WONT, Verb.DONT)
        else:
            assert refusal is None


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
    st.one_of(
        st.booleans(),
        st.integers(-1000, 1000).map(lambda i: i / 8),  # exact at 6 decimals
        st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
        st.none(),
    ),
    st.booleans(),
)
def test_publish_and_reply_round_trip(token: str, value: object, verbose: bool) -> None:
    publish = parse_line(encode_publish(token, value, verbose=verbose).encode())  # type: ignore[arg-type]
    assert publish == Publish(token, value)
    reply = parse_line(encode_value_reply(value, verbose=verbose).encode())  # type: ignore[arg-type]
    assert isinstance(reply, Ok) and reply.value == value
    assert parse_values(format_value([value, {"k": value}]))[1] == [[value, {"k": value}]]  # type: ignore[list-item]
