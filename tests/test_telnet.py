"""The Telnet layer: commands out of the byte stream, negotiation answered by a policy."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer
from drivers.transport.telnet import (
    IAC,
    NOP,
    SB,
    SE,
    Negotiation,
    Policy,
    Telnet,
    TelnetFramer,
    Verb,
    accept_offered,
    escape,
    ignore_all,
    refuse_all,
    subnegotiation,
)

DO, DONT, WILL, WONT = Verb.DO, Verb.DONT, Verb.WILL, Verb.WONT


def cmd(*parts: int) -> bytes:
    return bytes((IAC, *parts))


def feed_chunks(telnet: Telnet, chunks: list[bytes]) -> tuple[bytes, list[Negotiation], bytes]:
    """Clean data, negotiations seen and answer bytes over several reads."""
    data, answer = b"", b""
    seen: list[Negotiation] = []
    for chunk in chunks:
        got = telnet.feed(chunk)
        assert not got.errors, got.errors
        data += got.data
        seen += got.negotiations
        answer += got.answer
    return data, seen, answer


# A reply with everything in it: negotiation before and inside it, an escaped 0xFF,
# a subnegotiation holding an escaped 0xFF, a NOP.
STREAM = (
    cmd(DO, 24)
    + b'+OK "va'
    + cmd(WILL, 1)
    + b"lue"
    + cmd(IAC)
    + b'":1\r\n'
    + cmd(SB, 24, 0, IAC, IAC, 7)
    + cmd(SE)
    + cmd(NOP)
    + b"+OK"
    + cmd(DONT, 3)
    + b"\r\n"
)
CLEAN = b'+OK "value\xff":1\r\n+OK\r\n'
SEEN = [Negotiation(DO, 24), Negotiation(WILL, 1), Negotiation(DONT, 3)]
REFUSALS = cmd(WONT, 24) + cmd(DONT, 1)


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_a_command_split_at_any_point_is_parsed_whole(cut: int) -> None:
    telnet = Telnet(refuse_all)
    assert feed_chunks(telnet, [STREAM[:cut], STREAM[cut:]]) == (CLEAN, SEEN, REFUSALS)
    assert telnet.buffered == 0


def test_byte_by_byte_equals_one_read() -> None:
    one = feed_chunks(Telnet(refuse_all), [STREAM])
    assert one == (CLEAN, SEEN, REFUSALS)
    assert feed_chunks(Telnet(refuse_all), [bytes((b,)) for b in STREAM]) == one


def test_iac_iac_is_one_literal_0xff_byte() -> None:
    telnet = Telnet(refuse_all)
    assert telnet.feed(b"a" + cmd(IAC) + cmd(IAC) + b"b").data == b"a\xff\xffb"
    assert telnet.feed(b"x\xff").data == b"x"  # half of a pair: held, not data yet
    got = telnet.feed(b"\xffy")
    assert got.data == b"\xffy" and not got.negotiations and not got.replies


def test_negotiation_in_the_middle_of_a_reply_leaves_the_reply_whole() -> None:
    telnet = Telnet(refuse_all)
    got = telnet.feed(b'+OK "val' + cmd(DO, 32) + b'ue":1\r\n')
    assert got.data == b'+OK "value":1\r\n'
    assert got.negotiations == (Negotiation(DO, 32),) and got.answer == cmd(WONT, 32)


def test_subnegotiation_body_is_unescaped_and_dropped_from_data() -> None:
    telnet = Telnet()
    body = bytes((24, 0)) + b"\xff\xffVT100\xff"
    stream = b"a" + subnegotiation(body) + b"b"  # each 0xFF of the body sent as IAC IAC
    for cut in range(len(stream) + 1):
        first, second = telnet.feed(stream[:cut]), telnet.feed(stream[cut:])
        assert first.data + second.data == b"ab"
        assert first.subnegotiations + second.subnegotiations == (body,)
    assert telnet.buffered == 0


def test_other_commands_inside_a_subnegotiation_do_not_end_it() -> None:
    got = Telnet(refuse_all).feed(cmd(SB, 1) + cmd(DO) + b"\x05" + cmd(SE) + b"z")
    assert got.data == b"z" and got.subnegotiations == (b"\x01\x05",)
    assert not got.negotiations and not got.replies


def test_two_byte_commands_are_dropped() -> None:
    got = Telnet(refuse_all).feed(cmd(NOP) + b"a" + cmd(249) + cmd(SE) + cmd(7) + b"b")
    assert got.data == b"ab" and not got.negotiations and not got.subnegotiations


@pytest.mark.parametrize(
    ("policy", "answers"),
    [
        (refuse_all, [cmd(WONT, 1), cmd(DONT, 3), b"", b"", cmd(WONT, 44), cmd(DONT, 44)]),
        (ignore_all, [b"", b"", b"", b"", b"", b""]),
        (accept_offered([1, 3]), [b"", b"", b"", b"", cmd(WONT, 44), cmd(DONT, 44)]),
    ],
    ids=["refuse_all", "ignore_all", "accept_offered"],
)
def test_each_policy_answers_as_it_says(policy: Policy, answers: list[bytes]) -> None:
    telnet = Telnet(policy)
    requests = [cmd(DO, 1), cmd(WILL, 3), cmd(DONT, 1), cmd(WONT, 3), cmd(DO, 44), cmd(WILL, 44)]
    assert [telnet.feed(r).answer for r in requests] == answers


def test_a_policy_of_ones_own_sees_every_request_in_order() -> None:
    asked: list[Negotiation] = []

    def accept_echo(request: Negotiation) -> Negotiation | None:
        asked.append(request)
        return Negotiation(DO, 1) if request == Negotiation(WILL, 1) else request.refusal()

    got = Telnet(accept_echo).feed(cmd(WILL, 1) + b"x" + cmd(DO, 24))
    assert asked == [Negotiation(WILL, 1), Negotiation(DO, 24)]
    assert got.replies == (Negotiation(DO, 1), Negotiation(WONT, 24))
    assert got.answer == cmd(DO, 1) + cmd(WONT, 24)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_an_endless_subnegotiation_is_bounded_reported_and_then_data(chunk: int) -> None:
    telnet = Telnet(max_subnegotiation=64)
    garbage = cmd(SB) + bytes(range(200)) * 5 + b"\xff\xff" * 100 + b"\r\n+OK\r\n"
    data = b""
    errors: list[ProtocolError] = []
    for i in range(0, len(garbage), chunk):
        got = telnet.feed(garbage[i : i + chunk])
        assert telnet.buffered <= 64
        data += got.data
        errors += got.errors
    assert len(errors) == 1 and isinstance(errors[0], ProtocolError)
    assert "over 64 bytes" in str(errors[0])
    assert data.endswith(b"\r\n+OK\r\n")  # the session goes on after the garbage


def test_over_the_cap_by_an_escaped_0xff_is_dropped_too() -> None:
    telnet = Telnet(max_subnegotiation=2)
    got = telnet.feed(cmd(SB, 1, 2, IAC, IAC) + b"ok")
    assert len(got.errors) == 1 and got.data == b"ok" and telnet.buffered == 0


def test_reset_forgets_a_half_read_command() -> None:
    telnet = Telnet(refuse_all)
    telnet.feed(b"a" + cmd(SB, 1, 2))
    assert telnet.buffered == 2
    telnet.reset()
    assert telnet.buffered == 0 and telnet.feed(b"b").data == b"b"
    telnet.feed(bytes((IAC, DO)))
    telnet.reset()
    assert telnet.feed(b"\x18z").data == b"\x18z"


def test_escape_doubles_0xff_and_bad_arguments_are_refused() -> None:
    assert escape(b"a\xffb\xff") == b"a\xff\xffb\xff\xff"
    assert subnegotiation(b"\x2c\xff") == cmd(SB, 0x2C, IAC, IAC) + cmd(SE)
    with pytest.raises(ValueError):
        Telnet(max_subnegotiation=0)
    with pytest.raises(ValueError, match="DO 24"):
        Negotiation.parse("DO 256")
    assert Negotiation.parse(" will 1 ") == Negotiation(WILL, 1)


# ---- TelnetFramer ----------------------------------------------------------------------


def test_framer_strips_answers_through_send_and_reports_each_request() -> None:
    sent = bytearray()
    seen: list[Negotiation] = []
    framer = TelnetFramer(DelimiterFramer(b"\r\n"), refuse_all, sent.extend, seen.append)
    assert framer.feed(STREAM[:9]) == []
    assert framer.feed(STREAM[9:]) == [b'+OK "value\xff":1', b"+OK"]
    assert bytes(sent) == REFUSALS and seen == SEEN


def test_framer_reports_an_over_long_subnegotiation_ahead_of_the_frames() -> None:
    framer = TelnetFramer(DelimiterFramer(b"\n"))
    out = framer.feed(b"one\n" + cmd(SB) + b"x" * 2000 + b"\ntwo\n")
    assert isinstance(out[0], ProtocolError) and out[1:] == [b"one", b"x" * 975, b"two"]


def test_framer_needs_send_for_a_policy_that_answers() -> None:
    with pytest.raises(ValueError, match="send"):
        TelnetFramer(DelimiterFramer(b"\n"), refuse_all)
    TelnetFramer(DelimiterFramer(b"\n"))  # ignore_all: nothing to send


def test_framer_reset_clears_both_layers() -> None:
    framer = TelnetFramer(DelimiterFramer(b"\n"), refuse_all, bytearray().extend)
    framer.feed(b"half" + cmd(DO))
    framer.reset()
    assert framer.feed(b"\x18line\n") == [b"\x18line"]


# ---- properties ------------------------------------------------------------------------


def _outcome(telnet: Telnet, chunks: list[bytes], cap: int) -> tuple[object, ...]:
    data = b""
    seen: list[Negotiation] = []
    replies: list[Negotiation] = []
    subs: list[bytes] = []
    errors: list[str] = []
    for chunk in chunks:
        got = telnet.feed(chunk)
        data += got.data
        seen += got.negotiations
        replies += got.replies
        subs += got.subnegotiations
        errors += [str(e) for e in got.errors]
        assert telnet.buffered <= cap
    return data, seen, replies, subs, errors


_TELNETISH = st.lists(
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from([bytes((IAC,)), cmd(SB), cmd(SE), cmd(IAC), cmd(DO), cmd(NOP)]),
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300), _TELNETISH), st.lists(st.integers(0, 300), max_size=10))
def test_random_bytes_split_anywhere_give_what_one_read_gives(
    stream: bytes, cuts: list[int]
) -> None:
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    chunks = [stream[a:b] for a, b in pairwise(bounds)]
    whole = _outcome(Telnet(refuse_all, max_subnegotiation=16), [stream], 16)
    assert _outcome(Telnet(refuse_all, max_subnegotiation=16), chunks, 16) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64), st.binary(max_size=200))
def test_escaped_data_and_subnegotiations_come_back_exactly(
    before: bytes, after: bytes, body: bytes
) -> None:
    stream = escape(before) + subnegotiation(body) + escape(after)
    data, _, replies, subs, errors = _outcome(Telnet(refuse_all, 200), [stream], 200)
    assert (data, replies, subs, errors) == (before + after, [], [body], [])
