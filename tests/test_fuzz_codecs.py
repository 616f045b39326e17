"""Fuzzing every framer and codec parser: random bytes, split at random points.

Two properties, for each protocol: only the errors a parser documents ever escape
it (ProtocolError and its subclasses; ValueError where a helper says so; framers
raise nothing and report bad bytes in-band), and feeding a stream in pieces gives
the same frames as feeding it whole. Inputs mix the protocol's own bytes (headers,
terminators, digits, quotes, IAC) with noise, so the generated cases reach past
the first check of each parser.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.epson_escvp import codec as epson
from drivers.errors import ProtocolError
from drivers.extron_sis import codec as extron
from drivers.pjlink import codec as pjlink
from drivers.qsys import codec as qsys
from drivers.samsung_mdc import codec as mdc
from drivers.sony_adcp import codec as adcp
from drivers.tesira import codec as tesira
from drivers.transport.framing import DelimiterFramer, Framer, PassThroughFramer
from drivers.transport.telnet import Negotiation, TelnetFramer
from drivers.visca import codec as visca

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stream(alphabet: bytes, max_size: int = 120) -> st.SearchStrategy[bytes]:
    """Bytes mostly from `alphabet` (a protocol's own), some of any value."""
    byte = st.one_of(st.sampled_from(list(alphabet)), st.integers(0, 255))
    return st.lists(byte, max_size=max_size).map(bytes)


def pieces(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """`data` cut at `cuts` (positions beyond its end are clamped)."""
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


CUTS = st.lists(st.integers(0, 200), max_size=12)


def feed_all(framer: Framer[Any], chunks: list[bytes]) -> list[Any]:
    """Everything `framer` returns for `chunks`, errors as ("error", message)."""
    out: list[Any] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            out.append(("error", str(item)) if isinstance(item, ProtocolError) else item)
    return out


def frames_only(items: list[Any]) -> list[Any]:
    return [item for item in items if not (isinstance(item, tuple) and item[0] == "error")]


def fixed_clock() -> float:
    return 0.0


# ---- framers: same frames however the stream is split ------------------------------------

EPSON_BYTES = epson.connect_request().encode() + b"PWR=01 ERR SOURCE? a:b \r\n:\x20\x41"

# Each framer with the alphabet its protocol speaks, and whether its error reports are
# split-proof too (framers that report skipped junk once per read group it by read).
FRAMERS: dict[str, tuple[Callable[[], Framer[Any]], bytes, bool]] = {
    "delimiter": (lambda: DelimiterFramer(b"\r\n", max_len=16), b"ab\r\n", True),
    "pjlink_lines": (
        lambda: DelimiterFramer(b"\r\n", max_len=pjlink.MAX_LINE + 64),
        b"%1POWR=ERR PJLINK\r\n",
        True,
    ),
    "extron_commands": (
        lambda: extron.CommandFramer(char_timeout=10.0, max_len=20, clock=fixed_clock),
        b"1*2!\x1bWw|CVQ+-\r\n",
        True,
    ),
    "tesira_replies": (
        lambda: tesira.reply_framer(lambda answer: None),
        b'+OK "value":-1.5 ! -ERR\r\n\x00\xff\xfb\xfd\xfa\xf0\x18',
        True,
    ),
    "tesira_commands": (
        lambda: TelnetFramer(DelimiterFramer(tesira.TERMINATORS, 32)),
        b"Level1 get level 1\n\r\x00\xff\xfb\xfd\xfa\xf0",
        True,
    ),
    "qsys": (lambda: qsys.QrcFramer(max_len=64), b'{"id":1,"method":"NoOp"}[]\x00 ', True),
    "mdc": (lambda: mdc.MdcFramer(), b"\xaa\xff\x00\x01\x03\x41\x12MDCSTART<<TLS>>", False),
    "mdc_replies": (lambda: mdc.MdcFramer(replies_only=True), b"\xaa\xff\x00\x03\x41\x4e", False),
    "visca_serial": (lambda: visca.SerialFramer(), b"\x81\x90\x01\x04\x00\x02\x41\x51\xff", True),
    "sony_adcp_lines": (
        lambda: DelimiterFramer(adcp.TERMINATOR, max_len=64),
        b'ok err_val "on" [{}]:,NOKEY\r\n',
        True,
    ),
    "epson_replies": (
        lambda: epson.EscvpFramer(prompts=True, max_len=24),
        EPSON_BYTES,
        True,
    ),
    "epson_commands": (
        lambda: epson.EscvpFramer(prompts=False, max_len=24),
        EPSON_BYTES,
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(FRAMERS))
def test_framers_give_the_same_frames_however_the_stream_is_split(name: str) -> None:
    make, alphabet, exact = FRAMERS[name]

    @FUZZ
    @given(stream(alphabet, 200), CUTS)
    def check(data: bytes, cuts: list[int]) -> None:
        whole = feed_all(make(), [data])
        split = feed_all(make(), pieces(data, cuts))
        assert (split if exact else frames_only(split)) == (whole if exact else frames_only(whole))

    check()


@FUZZ
@given(stream(extron.PROMPT + b"\r\n\xff\xfb\x01abc E10", 200), CUTS)
def test_extron_reply_framer_gives_the_same_lines_however_the_stream_is_split(
    data: bytes, cuts: list[int]
) -> None:
    """The `Password:` prompt has no line end: it is a frame when a read ends with it, so
    a read that ends there splits what one read would keep as one line. Lines that do
    not run through a prompt are the same either way."""

    def lines(chunks: list[bytes]) -> list[Any]:
        framer = extron.ReplyFramer(max_len=64, clock=fixed_clock)
        return [
            f
            for f in frames_only(feed_all(framer, chunks))
            if extron.PROMPT.lower() not in f.lower()
        ]

    if extron.PROMPT.lower() not in data.lower():
        assert lines(pieces(data, cuts)) == lines([data])
    else:
        lines(pieces(data, cuts))  # never raises


@FUZZ
@given(stream(b"\xff\xfb\xfc\xfd\xfe\xfa\xf0\x18\x01 ab\n", 200), CUTS)
def test_telnet_negotiations_come_out_the_same_however_the_stream_is_split(
    data: bytes, cuts: list[int]
) -> None:
    def run(chunks: list[bytes]) -> tuple[list[Any], list[Negotiation]]:
        heard: list[Negotiation] = []
        framer = TelnetFramer(DelimiterFramer(b"\n", 64), on_negotiation=heard.append)
        return feed_all(framer, chunks), heard

    assert run(pieces(data, cuts)) == run([data])


@FUZZ
@given(st.lists(stream(b"\x01\x00\x11\x02\x81\x90\xff", 40), max_size=6))
def test_datagram_framers_never_raise(datagrams: list[bytes]) -> None:
    for framer in (visca.DatagramFramer(), PassThroughFramer()):
        for datagram in datagrams:
            for item in framer.feed(datagram):
                assert isinstance(item, bytes | visca.Message | ProtocolError)


# ---- parsers: only the documented errors escape ------------------------------------------


def only(errors: tuple[type[Exception], ...], parse: Callable[[Any], Any], data: Any) -> None:
    """`parse(data)` returns or raises one of `errors`; anything else fails the test."""
    with contextlib.suppress(*errors):
        parse(data)


PROTOCOL = (ProtocolError,)


@FUZZ
@given(stream(b"%12POWRINPT=?ERR1 PJLINKerra0123456789abcdef \r", 80))
def test_pjlink_parsers(data: bytes) -> None:
    only(PROTOCOL, pjlink.parse_message, data)
    only(PROTOCOL, pjlink.parse_command, data)
    text = data.decode("latin-1")
    for parse in (pjlink.parse_mutes, pjlink.parse_errors, pjlink.parse_lamps):
        only(PROTOCOL, parse, text)


@FUZZ
@given(stream(b"0123456789*!&%$.,BVZQN+-\x1bWw|\rCVMQik", 60))
def test_extron_command_parser(data: bytes) -> None:
    only(PROTOCOL, extron.parse_command, data)


@FUZZ
@given(stream(b"OutInAllVidAudVolVmtAmtRprSprVrbE0123456789 *-QikLogin (c)Password:", 120))
def test_extron_reply_parser(data: bytes) -> None:
    only(PROTOCOL, extron.parse_reply, data)
    text = data.decode("latin-1")
    extron.parse_size(text)  # these return None for what they do not recognise
    extron.parse_version(text)
    extron.parse_mute_table(text)


@FUZZ
@given(stream(b'+OK -ERR ! "value":publishToken[]{}:,.-0123456789eEinfnatruelsl\\ \t', 160))
def test_tesira_parsers(data: bytes) -> None:
    only(PROTOCOL, tesira.parse_line, data)
    text = data.decode("utf-8", "replace")
    only(PROTOCOL, tesira.tokenize, text)
    only(PROTOCOL, tesira.parse_values, text)
    only((ValueError,), Negotiation.parse, text)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RPC_KEYS = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "code"])


@FUZZ
@given(
    st.dictionaries(RPC_KEYS, JSON, max_size=5),
    st.dictionaries(st.sampled_from(["code", "message", "data"]), JSON, max_size=3),
    stream(b'{}[]":,0123456789.eE-truefalsnul\\ ', 80),
)
def test_qsys_decoder(obj: dict[str, Any], error: dict[str, Any], noise: bytes) -> None:
    obj = {**obj, "error": error} if "error" in obj else obj
    only((qsys.InvalidMessage,), qsys.decode, json.dumps(obj).encode())
    only((qsys.InvalidMessage,), qsys.decode, noise)


@FUZZ
@given(stream(b"\xaa\xff\x00\x01\x02\x41\x4e\x11\x12", 40))
def test_mdc_parsers(data: bytes) -> None:
    only(PROTOCOL, mdc.decode_frame, data)
    only(PROTOCOL, mdc.parse_reply, data)
    only(PROTOCOL, mdc.Status.decode, data)
    mdc.decode_text(data)
    mdc.input_code(data.decode("latin-1"))


@FUZZ
@given(stream(b"\x01\x00\x10\x11\x20\x02\x0f\x81\x88\x90\x09\x04\x06\x41\x50\x60\xff", 40))
def test_visca_parsers(data: bytes) -> None:
    for parse in (
        visca.decode_message,
        visca.split_packets,
        visca.check_packet,
        visca.parse_command,
        visca.parse_reply,
        visca.from_nibbles,
        visca.pan_tilt_position,
        visca.zoom_position,
        visca.power_value,
    ):
        only(PROTOCOL, parse, data)
    for drive in (visca.parse_pan_tilt_drive, visca.parse_zoom_drive):
        only((ValueError,), drive, data)


@FUZZ
@given(stream(b'NOKEYok err_cmd "on" ?[]{}:,0123456789-abcdefghijklmnopqrstuvwxyz_\\ ', 80))
def test_sony_adcp_parsers(data: bytes) -> None:
    for parse in (adcp.parse_reply, adcp.parse_greeting, adcp.parse_command):
        only(PROTOCOL, parse, data)


@FUZZ
@given(JSON)
def test_sony_adcp_value_readers(value: Any) -> None:
    """Query answers are any JSON: the readers of each one take it or raise ProtocolError."""
    only(PROTOCOL, lambda v: adcp.parse_word(v, "input"), value)
    only(PROTOCOL, lambda v: adcp.parse_list(v, adcp.NO_ERROR, "error"), value)
    only(PROTOCOL, lambda v: adcp.parse_timer(v, "light_src"), value)


@FUZZ
@given(stream(EPSON_BYTES + b"PWRSOURCELAMPMUTEON OFF=?0123456789ABCDEF", 80))
def test_epson_parsers(data: bytes) -> None:
    for parse in (epson.parse_reply, epson.parse_command, epson.Packet.decode):
        only(PROTOCOL, parse, data)
    text = data.decode("latin-1")
    for read in (epson.parse_lamp_hours, epson.error_states):
        only(PROTOCOL, read, text)


@FUZZ
@given(st.integers(1, 6000), st.sampled_from([b"+OK ", b'! "level" ', b'+OK "value":-']))
def test_tesira_numbers_of_any_length_are_values_or_protocol_errors(
    digits: int, start: bytes
) -> None:
    """A line holds up to 64 KiB: an integer past Python's 4300-digit conversion limit
    used to raise ValueError out of parse_line."""
    only(PROTOCOL, tesira.parse_line, start + b"7" * digits)


def test_tesira_integer_past_the_conversion_limit_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="number"):
        tesira.parse_line(b"+OK " + b"1" * 5000)
