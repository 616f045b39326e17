"""DelimiterFramer, the line framer of drivers and simulators alike: splits, caps, never lets a tail through."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer, FixedLengthFramer


def feed_chunks(framer: DelimiterFramer, chunks: list[bytes]) -> list[bytes | None]:
    """Everything the framer returns for `chunks`, each ProtocolError as None."""
    return [
        None if isinstance(item, ProtocolError) else item
        for chunk in chunks
        for item in framer.feed(chunk)
    ]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_frames_end_at_any_terminator_and_empty_ones_are_skipped() -> None:
    framer = DelimiterFramer(b"\r\n")
    assert framer.feed(b"one\r\ntwo\rthree\n\n\rfo") == [b"one", b"two", b"three"]
    assert framer.pending == b"fo"
    assert framer.feed(b"ur\r") == [b"four"] and framer.pending == b""


def test_over_long_line_is_reported_once_and_dropped_whole() -> None:
    framer = DelimiterFramer(b"\r", max_len=8)
    out = framer.feed(b"123456789")
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    assert "frame over 8 bytes dropped: b'123456789'" in str(out[0])
    assert framer.pending == b""
    assert framer.feed(b"more of it") == []  # still the same line: no second report
    assert framer.feed(b"%1POWR=1\rnext\r") == [b"next"]  # its tail is never a frame


def test_the_report_of_an_over_long_line_shows_the_same_bytes_however_it_arrived() -> None:
    whole = DelimiterFramer(b"\r", max_len=4).feed(b"1234567")
    split = DelimiterFramer(b"\r", max_len=4)
    reported = split.feed(b"12345") + split.feed(b"67")
    expected = ["frame over 4 bytes dropped: b'12345'..."]
    assert [str(e) for e in whole] == [str(e) for e in reported] == expected


def test_a_line_of_exactly_max_len_is_kept() -> None:
    out = DelimiterFramer(b"\r", max_len=8).feed(b"12345678\r123456789\rok\r")
    assert out[0] == b"12345678" and isinstance(out[1], ProtocolError) and out[2:] == [b"ok"]


def test_over_long_line_in_one_chunk_is_dropped_too() -> None:
    out = DelimiterFramer(b"\n", max_len=4).feed(b"a\nlong line\nb\n")
    assert out[0] == b"a" and isinstance(out[1], ProtocolError) and out[2:] == [b"b"]


def test_reset_forgets_the_line_being_dropped() -> None:
    framer = DelimiterFramer(b"\r", max_len=4)
    framer.feed(b"too long")
    framer.reset()  # a new connection: its first line is a line of its own
    assert framer.feed(b"ok\r") == [b"ok"]


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"0123456789"]), max_size=40),
    st.lists(st.integers(0, 400), max_size=10),
)
@example(parts=[b"0123456789", b"0123456789", b"\r", b"a", b"\r"], cuts=[12])
def test_how_the_stream_is_chunked_never_changes_the_frames(
    parts: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(parts)
    whole = feed_chunks(DelimiterFramer(b"\r\n", max_len=12), [data])
    assert feed_chunks(DelimiterFramer(b"\r\n", max_len=12), split_at(data, cuts)) == whole
    assert feed_chunks(DelimiterFramer(b"\r\n", max_len=12), [bytes([b]) for b in data]) == whole


@given(
    st.lists(st.one_of(st.binary(max_size=20), st.sampled_from([b"\r", b"\n"])), max_size=30),
    st.lists(st.integers(0, 600), max_size=8),
)
@example(parts=[b"x" * 20, b"\r"], cuts=[])
def test_frames_never_exceed_max_len_nor_hold_a_terminator(
    parts: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(parts)
    for item in feed_chunks(DelimiterFramer(b"\r\n", max_len=16), split_at(data, cuts)):
        if isinstance(item, bytes):
            assert 0 < len(item) <= 16 and b"\r" not in item and b"\n" not in item


@given(st.lists(st.binary(min_size=4, max_size=4), max_size=20), st.lists(st.integers(0, 80)))
def test_fixed_length_frames_never_depend_on_how_bytes_were_split(
    frames: list[bytes], cuts: list[int]
) -> None:
    framer = FixedLengthFramer(4)
    data = b"".join(frames)
    assert [f for chunk in split_at(data + b"\xa5\x01", cuts) for f in framer.feed(chunk)] == frames
    assert framer.feed(b"\x02\x03") == [b"\xa5\x01\x02\x03"]  # the tail was kept
