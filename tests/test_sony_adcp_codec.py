"""Sony ADCP codec: wire format, reply parsing, framing and round trips.

Random bytes through every parser and framer: tests/test_fuzz_codecs.py.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ErrorCode, ProtocolError
from drivers.sony_adcp.codec import (
    MAX_LINE,
    Command,
    ErrorReply,
    Ok,
    Value,
    auth_digest,
    default_input_name,
    error_states,
    parse_command,
    parse_greeting,
    parse_list,
    parse_reply,
    parse_timer,
)
from drivers.sony_adcp.config import SonyAdcpConfig
from drivers.sony_adcp.driver import SonyAdcpDriver
from drivers.transport.framing import Framer


def framer() -> Framer[bytes]:
    """The framer the driver reads projector lines with."""
    config = SonyAdcpConfig.model_validate({"driver": "sony_adcp", "transport": "tcp://h"})
    return SonyAdcpDriver("p", config, lambda c: None).create_framer()


def test_digest_is_sha256_of_challenge_then_password_in_lowercase_hex() -> None:
    # FIPS 180-2 test vector: SHA-256("abc")
    assert auth_digest("ab", "c") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert auth_digest("7f3a", "Projector") == hashlib.sha256(b"7f3aProjector").hexdigest()


def test_command_wire_format_quotes_string_values() -> None:
    assert Command("power", "on").encode() == b'power "on"\r\n'
    assert Command("power_status").encode() == b"power_status ?\r\n"
    assert Command("brightness", 50).encode() == b"brightness 50\r\n"
    assert str(Command("input", "hdmi1")) == 'input "hdmi1"'
    assert parse_command(b'input "hdmi2"') == Command("input", "hdmi2")
    assert parse_command(b"error ?") == Command("error")
    assert parse_command(b"contrast -5 ") == Command("contrast", -5)


def test_replies() -> None:
    assert parse_reply(b"ok") == (Ok(), b"")
    assert parse_reply(b"OK") == (Ok(), b"")  # after a good digest; case differs
    assert parse_reply(b'"cooling1"') == (Value("cooling1"), b"")
    assert parse_reply(b'["err_fan","err_temp"]') == (Value(["err_fan", "err_temp"]), b"")
    assert parse_reply(b"1234") == (Value(1234), b"")
    reply, _ = parse_reply(b"err_inactive")
    assert reply == ErrorReply("err_inactive") and reply.code is ErrorCode.BUSY
    assert parse_reply(b"ERR_VAL")[0] == ErrorReply("err_val")
    assert ErrorReply("err_val").code is ErrorCode.INVALID_ARGS
    assert ErrorReply("err_new_thing").code is ErrorCode.DEVICE_ERROR
    assert parse_reply(b'\x90\xa1#&"on"') == (Value("on"), b"\x90\xa1#&")


def test_greetings() -> None:
    assert parse_greeting(b"NOKEY") == (None, b"")
    assert parse_greeting(b"a1b2c3d4") == ("a1b2c3d4", b"")
    assert parse_greeting(b"\x91\x92NOKEY") == (None, b"\x91\x92")
    for bad in (b"", b"\x90\x91", b"two words", b"x" * 65):
        with pytest.raises(ProtocolError):
            parse_greeting(bad)


@pytest.mark.parametrize(
    "line", [b"", b"  ", b"\x80\x81", b"{bad", b'"unterminated', b"[" * 5000, b"nope"]
)
def test_not_a_reply(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(line)


@pytest.mark.parametrize(
    "line", [b"power", b"power on", b'POWER "on"', b'power ["on"]', b"power true", b"? ?"]
)
def test_malformed_commands(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_command(line)


def test_value_helpers() -> None:
    assert parse_list("no_err", "no_err", "error") == []
    assert parse_list(["err_fan", "err_temp"], "no_err", "error") == ["err_fan", "err_temp"]
    assert parse_list("err_fan", "no_err", "error") == ["err_fan"]
    assert error_states(["err_temp"], ["warn_temp", "warn_highland"]) == {
        "highland": "warning",
        "temp": "error",
    }
    timers = [{"operation": 900}, {"light_src": 120}]
    assert parse_timer(timers, "light_src") == 120 and parse_timer(timers, "lamp") is None
    assert default_input_name("hdmi1") == "HDMI 1" and default_input_name("video") == "Video"
    assert default_input_name("hdbaset") == "HDBaseT"
    for bad in (
        lambda: parse_list(3, "no_err", "error"),
        lambda: parse_timer(["x"], "light_src"),
        lambda: parse_timer([{"light_src": -1}], "light_src"),
        lambda: parse_timer([{"light_src": True}], "light_src"),
    ):
        with pytest.raises(ProtocolError):
            bad()


def test_framing_split_merged_and_overlong_lines() -> None:
    stream = b'NOKEY\r\n"standby"\r\nok\r\n["err_fan"]\r\n'
    whole = framer().feed(stream)
    assert whole == [b"NOKEY", b'"standby"', b"ok", b'["err_fan"]']
    bytewise = framer()
    assert [f for i in range(len(stream)) for f in bytewise.feed(stream[i : i + 1])] == whole
    cut = framer()
    out = cut.feed(b'"x' + b"y" * MAX_LINE)  # no terminator yet: dropped once too long
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    assert cut.feed(b'y"\r\nok\r\n') == [b"ok"]  # the long line's tail is no reply


json_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@given(json_values)
def test_value_round_trip(value: object) -> None:
    reply = Value(value)
    assert parse_reply(reply.encode().rstrip(b"\r\n")) == (reply, b"")


names = st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True)


@given(names, st.one_of(st.none(), st.integers(), st.text(alphabet="abc_1 x", max_size=10)))
def test_command_round_trip(name: str, value: str | int | None) -> None:
    command = Command(name, value)
    assert parse_command(command.encode().rstrip(b"\r\n")) == command


@given(
    st.lists(st.sampled_from([b"ok", b'"on"', b"err_val", b"[1,2]", b"NOKEY"]), max_size=8),
    st.data(),
)
def test_chunking_never_changes_frames(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunked = framer()
    assert [frame for piece in pieces for frame in chunked.feed(piece)] == lines
