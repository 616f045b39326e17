"""Extron SIS wire format: framing both ways, reply grammar, round-trips, random bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.extron_sis.codec import (
    AudioMute,
    Banner,
    Command,
    CommandFramer,
    ErrorReply,
    Kind,
    Login,
    PasswordPrompt,
    PresetRecalled,
    PresetSaved,
    QuickTie,
    Reply,
    ReplyFramer,
    SisError,
    Text,
    Tie,
    TieAll,
    TieTable,
    Verbose,
    VideoMute,
    Volume,
    banner,
    db_to_volume,
    parse_command,
    parse_mute_table,
    parse_reply,
    parse_size,
    parse_version,
    table_command,
    tie_command,
    verbose_command,
    volume_to_db,
)


def reply(line: bytes) -> Reply:
    return parse_reply(line)[0]


def feed_all(framer: ReplyFramer | CommandFramer, chunks: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert not isinstance(frame, ProtocolError)
            frames.append(frame)
    return frames


# ---- replies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"Out3 In1 All", Tie(3, 1, Kind.ALL)),
        (b"Out03 In01 All", Tie(3, 1, Kind.ALL)),
        (b"Out004 In012 Vid", Tie(4, 12, Kind.VIDEO)),
        (b"Out4 In8 RGB", Tie(4, 8, Kind.VIDEO)),
        (b"Out4 In6 Aud", Tie(4, 6, Kind.AUDIO)),
        (b"Out3 In0 All", Tie(3, 0, Kind.ALL)),
        (b"In5 All", TieAll(5, Kind.ALL)),
        (b"In02 Vid", TieAll(2, Kind.VIDEO)),
        (b"08 08 12 00 -- -- Vid", TieTable(Kind.VIDEO, (8, 8, 12, 0, None, None))),
        (b"1 2 Aud", TieTable(Kind.AUDIO, (1, 2))),
        (b"Qik", QuickTie()),
        (b"Rpr03", PresetRecalled(3)),
        (b"Rpr 3", PresetRecalled(3)),
        (b"Spr09", PresetSaved(9)),
        (b"Vmt3*1", VideoMute(3, 1)),
        (b"Vmt03 0", VideoMute(3, 0)),
        (b"Vmt1", VideoMute(None, 1)),
        (b"Amt03*1", AudioMute(3, True)),
        (b"Amt0", AudioMute(None, False)),
        (b"Out01 Vol50", Volume(1, 50)),
        (b"Out7 Vol5", Volume(7, 5)),
        (b"Vrb3", Verbose(3)),
        (b"E10", ErrorReply("E10")),
        (b"Login Administrator", Login("administrator")),
        (b"Login User", Login("user")),
        (b"Password:", PasswordPrompt()),
        (b"1.23", Text("1.23")),
        (b"V8X4 A8X4", Text("V8X4 A8X4")),
        (b"In01 Aud+02", Text("In01 Aud+02")),  # input gain, not a tie
        (b"Mon, 25 Nov 2024 10:00:00", Text("Mon, 25 Nov 2024 10:00:00")),
    ],
)
def test_reply_grammar(line: bytes, expected: Reply) -> None:
    assert reply(line) == expected


def test_banner_fields_with_and_without_commas() -> None:
    found = reply(b"(c) Copyright 2007, Extron Electronics, CP 300 450 MAV IP, V1.05, 60-624-01")
    assert isinstance(found, Banner)
    assert (found.model, found.firmware, found.part) == ("CP 300 450 MAV IP", "1.05", "60-624-01")
    found = reply(b"(c) Copyright 2014, Extron Electronics DTPCP84, V1.01, 60-1143-01")
    assert isinstance(found, Banner) and found.model == "DTPCP84"
    odd = reply(b"(c) Extron something else")
    assert isinstance(odd, Banner) and odd.model is None


def test_junk_before_a_reply_is_separated() -> None:
    assert parse_reply(b"\x85\x9f#&Out03 In01 All") == (Tie(3, 1, Kind.ALL), "\x85\x9f#&")
    with pytest.raises(ProtocolError):
        parse_reply(b"\x85\x9f#&")
    with pytest.raises(ProtocolError):
        parse_reply(b"Out03\x00In01 All")


def test_error_meanings() -> None:
    error = reply(b"E24")
    assert isinstance(error, ErrorReply) and error.error is SisError.E24
    assert "administrator" in error.meaning
    unknown = reply(b"E99")
    assert isinstance(unknown, ErrorReply) and unknown.error is None
    assert unknown.meaning == "unknown error"


def test_query_answers() -> None:
    assert parse_size("V8X4 A8X4") == (8, 4, True)
    assert parse_size("V16X16") == (16, 16, False)
    assert parse_size("60-882-01") is None
    assert parse_version("1.23") == "1.23"
    assert parse_version("Ver01*2.04.0001") == "2.04.0001"
    assert parse_mute_table("0010 3000") == [0, 0, 1, 0, 3, 0, 0, 0]
    assert parse_mute_table("1.23") is None


def test_volume_steps_and_db() -> None:
    assert volume_to_db(64) == 0
    assert volume_to_db(50) == -14
    assert volume_to_db(1) == -63
    assert volume_to_db(0) == -85
    assert [db_to_volume(db) for db in (0, -14, -63, -70, -80, -85, 5)] == [64, 50, 1, 1, 0, 0, 64]
    for step in range(65):
        assert db_to_volume(volume_to_db(step)) == step


reply_values = st.one_of(
    st.builds(Tie, st.integers(1, 999), st.integers(0, 999), st.sampled_from(Kind)),
    st.builds(TieAll, st.integers(0, 999), st.sampled_from(Kind)),
    st.builds(
        TieTable,
        st.sampled_from([Kind.VIDEO, Kind.AUDIO]),
        st.lists(st.one_of(st.none(), st.integers(0, 999)), min_size=1, max_size=16).map(tuple),
    ),
    st.just(QuickTie()),
    st.builds(PresetRecalled, st.integers(1, 999)),
    st.builds(PresetSaved, st.integers(1, 999)),
    st.builds(VideoMute, st.one_of(st.none(), st.integers(1, 999)), st.integers(0, 2)),
    st.builds(AudioMute, st.one_of(st.none(), st.integers(1, 999)), st.booleans()),
    st.builds(Volume, st.integers(1, 999), st.integers(0, 64)),
    st.builds(Verbose, st.integers(0, 3)),
    st.builds(ErrorReply, st.sampled_from(list(SisError)).map(str)),
    st.builds(Login, st.sampled_from(["administrator", "user"])),
    st.builds(
        banner,
        st.integers(1990, 2099),
        st.just("DXP 88 HDMI"),
        st.just("1.23"),
        st.just("60-882-01"),
    ),
)


@given(reply_values, st.booleans())
def test_replies_round_trip_through_the_framer(value: Reply, pad: bool) -> None:
    data = value.encode(pad)
    frames = feed_all(ReplyFramer(), [data])
    assert [reply(f) for f in frames] == [value]


@given(st.lists(reply_values, max_size=8), st.data())
def test_any_split_of_a_stream_gives_the_same_replies(
    values: list[Reply], data: st.DataObject
) -> None:
    stream = b"".join(v.encode() for v in values) + PasswordPrompt().encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    frames = feed_all(ReplyFramer(), chunks)
    assert [reply(f) for f in frames] == [*values, PasswordPrompt()]


@given(st.binary(max_size=600))
def test_random_bytes_never_break_the_reply_side(data: bytes) -> None:
    framer = ReplyFramer()
    for chunk in (data[: len(data) // 2], data[len(data) // 2 :]):
        for frame in framer.feed(chunk):
            if not isinstance(frame, ProtocolError):
                with contextlib.suppress(ProtocolError):
                    parse_reply(frame)


def test_password_prompt_without_line_ending_is_a_frame() -> None:
    framer = ReplyFramer()
    assert framer.feed(b"(c) Copyright 2012, Extron\r\nMon, 1 Jan\r\n\r\nPass") == [
        b"(c) Copyright 2012, Extron",
        b"Mon, 1 Jan",
    ]
    assert framer.feed(b"word:") == [b"Password:"]
    assert framer.feed(b"\r\nLogin User\r\n") == [b"Login User"]


def test_telnet_negotiation_is_removed_even_when_split() -> None:
    stream = b"\xff\xfb\x01Qik\r\n\xff\xfa\x18\x01abc\xff\xf0Rpr01\xff\xff\r\n\xff\xfd\x1f"
    for cut in range(len(stream) + 1):
        framer = ReplyFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [b"Qik", b"Rpr01\xff"]


def test_over_long_reply_is_reported_not_kept() -> None:
    frames = ReplyFramer(max_len=20).feed(b"x" * 30)
    assert len(frames) == 1 and isinstance(frames[0], ProtocolError)


# ---- commands -----------------------------------------------------------------------


def test_commands_end_at_their_action_character() -> None:
    framer = CommandFramer()
    stream = b"1*1!02*02&003*003%4*8$\r\n5*!Q\x1b3CV\r"
    tokens = feed_all(framer, [stream])
    assert tokens == [
        b"1*1!",
        b"02*02&",
        b"003*003%",
        b"4*8$",
        b"\r",
        b"\n",
        b"5*!",
        b"Q",
        b"\x1b3CV\r",
    ]
    assert [parse_command(t) for t in tokens][:2] == [Command("1*1", "!"), Command("02*02", "&")]
    assert parse_command(b"\r") == Command("", "", eol=True)


def test_esc_commands_end_at_cr_or_pipe_and_w_replaces_esc() -> None:
    tokens = feed_all(CommandFramer(), [b"W3CV|\x1b0*1*1VC\r\x1b+Q3*4!3*5%\rWVM|"])
    assert [parse_command(t) for t in tokens] == [
        Command("3", "CV", esc=True),
        Command("0*1*1", "VC", esc=True),
        Command("3*4!3*5%", "+Q", esc=True),
        Command("", "VM", esc=True),
    ]


def test_a_command_split_across_packets() -> None:
    framer = CommandFramer()
    assert framer.feed(b"12*") == []
    assert framer.feed(b"3") == []
    assert framer.feed(b"!\x1b3C") == [b"12*3!"]
    assert framer.feed(b"V\r") == [b"\x1b3CV\r"]


def test_a_stale_partial_command_is_dropped() -> None:
    now = [0.0]
    framer = CommandFramer(char_timeout=10, clock=lambda: now[0])
    assert framer.feed(b"1*") == []
    now[0] = 11.0
    assert framer.feed(b"2!") == [b"2!"]


def test_malformed_commands() -> None:
    for token in (b"\x1b\x01\r", b"\x1b3CV", b"1*3\r", b"\x80"):
        with pytest.raises(ProtocolError):
            parse_command(token)
    frames = CommandFramer(max_len=8).feed(b"\x1b" + b"1" * 20)
    assert any(isinstance(f, ProtocolError) for f in frames)


command_values = st.one_of(
    st.builds(
        tie_command,
        st.integers(0, 999),
        st.one_of(st.none(), st.integers(1, 999)),
        st.sampled_from(Kind),
    ),
    st.builds(table_command, st.sampled_from([Kind.VIDEO, Kind.AUDIO]), st.integers(1, 999)),
    st.builds(verbose_command, st.one_of(st.none(), st.integers(0, 3))),
    st.builds(Command, st.integers(1, 99).map(str), st.sampled_from(list("VBZ.,"))),
    st.sampled_from([Command("", "Q"), Command("", "I"), Command("", "VM", esc=True)]),
    st.builds(
        lambda i, o: Command(f"{i}*{o}!", "+Q", esc=True), st.integers(1, 99), st.integers(1, 99)
    ),
)


@given(st.lists(command_values, max_size=8), st.data())
def test_commands_round_trip_through_any_split(
    commands: list[Command], data: st.DataObject
) -> None:
    stream = b"".join(c.encode() for c in commands)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    tokens = feed_all(CommandFramer(), chunks)
    assert b"".join(tokens) == stream  # lossless
    assert [parse_command(t) for t in tokens] == commands


@given(st.binary(max_size=400))
def test_random_bytes_never_break_the_command_side(data: bytes) -> None:
    for frame in CommandFramer().feed(data):
        if not isinstance(frame, ProtocolError):
            with contextlib.suppress(ProtocolError):
                parse_command(frame)
