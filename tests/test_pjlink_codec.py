"""PJLink codec: spec vectors, parsing rules and property tests."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.pjlink.codec import (
    AuthFailure,
    Command,
    Greeting,
    Reply,
    auth_digest,
    default_input_name,
    parse_command,
    parse_errors,
    parse_lamps,
    parse_message,
    parse_mutes,
)


def test_spec_digest_vectors() -> None:
    assert auth_digest("498e4a67", "JBMIAProjectorLink") == "5d8409bc1c3fa39749434aa3a5c38682"
    assert auth_digest("a572f60c", "password") == "e3d97429adffa11bce1f7275813d4bde"


def test_command_and_reply_wire_format() -> None:
    assert Command(1, "POWR", "1").encode() == b"%1POWR 1\r"
    assert Command(1, "POWR").encode("ab" * 16) == b"abababababababababababababababab%1POWR ?\r"
    assert parse_message(b"%1POWR=1") == (Reply(1, "POWR", "1"), b"")
    assert parse_message(b"%1inpt=err2")[0].error == "ERR2"  # type: ignore[union-attr]
    assert parse_message(b"%1powr=ok")[0].ok  # type: ignore[union-attr]
    assert parse_message(b"PJLINK 0") == (Greeting(None), b"")
    assert parse_message(b"PJLINK 1 498e4a67") == (Greeting("498e4a67"), b"")
    assert isinstance(parse_message(b"pjlink erra")[0], AuthFailure)
    assert parse_message(b"\x80\x81junk%1NAME=Hall") == (Reply(1, "NAME", "Hall"), b"\x80\x81junk")
    assert parse_message(b"%1NAME=") == (Reply(1, "NAME", ""), b"")


@pytest.mark.parametrize("line", [b"", b"hello", b"%3POWR=1", b"%1PO=1", b"PJLINK 7"])
def test_not_pjlink(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_message(line)


def test_value_tables() -> None:
    assert parse_mutes("31") == (True, True) and parse_mutes("21") == (False, True)
    assert parse_errors("000010")["filter"] == "warning"
    assert parse_lamps("1000 1 50 0") == [{"hours": 1000, "on": True}, {"hours": 50, "on": False}]
    assert default_input_name("31") == "HDMI 1" and default_input_name("3A") == "HDMI A"
    for bad in (lambda: parse_mutes("99"), lambda: parse_errors("0001"), lambda: parse_lamps("12")):
        with pytest.raises(ProtocolError):
            bad()


@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    for parse in (parse_message, parse_command):
        with contextlib.suppress(ProtocolError):
            parse(data)


bodies = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=4)
params = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=64)


@given(st.sampled_from([1, 2]), bodies, params)
def test_reply_round_trip(pjclass: int, body: str, param: str) -> None:
    reply = Reply(pjclass, body, param)
    assert parse_message(reply.encode().rstrip(b"\r")) == (reply, b"")


@given(st.sampled_from([1, 2]), bodies, params, st.sampled_from(["", "0123456789abcdef" * 2]))
def test_command_round_trip(pjclass: int, body: str, param: str, digest: str) -> None:
    command = Command(pjclass, body, param)
    got_digest, got = parse_command(command.encode(digest).rstrip(b"\r"))
    assert got == command and got_digest == (digest or None)
