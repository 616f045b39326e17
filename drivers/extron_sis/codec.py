"""Extron SIS wire format: commands, replies, framing both ways. Shared by driver and simulator.

Controller → switcher: simple commands complete at their action character (`1*3!`);
Esc commands (`Esc` or `W`) complete at CR or `|`. Switcher → controller: lines ending
CR LF, except the `Password:` prompt, which has no line ending.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer
from drivers.transport.telnet import TelnetFramer

PORT = 23
ESC = b"\x1b"
CR = b"\r"
EOL = b"\r\n"
MAX_REPLY = 512
MAX_COMMAND = 256
VOLUME_MAX = 64  # 0 dB; 1 dB per step down to 1 (-63 dB), then 0 is -85 dB
VOLUME_FLOOR_DB = -85
TABLE_WIDTH = 16  # outputs per `VC` tie-table answer
PROMPT = b"Password:"


class Kind(StrEnum):
    """What a tie switches: video and audio together, or one of them (breakaway)."""

    ALL = "all"
    VIDEO = "video"
    AUDIO = "audio"


TIE_ACTION = {Kind.ALL: "!", Kind.VIDEO: "&", Kind.AUDIO: "$"}
ACTION_KIND = {"!": Kind.ALL, "&": Kind.VIDEO, "%": Kind.VIDEO, "$": Kind.AUDIO}
KIND_TAG = {Kind.ALL: "All", Kind.VIDEO: "Vid", Kind.AUDIO: "Aud"}
_TAG_KIND = {"all": Kind.ALL, "vid": Kind.VIDEO, "rgb": Kind.VIDEO, "aud": Kind.AUDIO}
TABLE_KIND = {Kind.VIDEO: 1, Kind.AUDIO: 2}


class SisError(StrEnum):
    """Error answers (`Exx`) and what each means."""

    E01 = "E01"
    E10 = "E10"
    E11 = "E11"
    E12 = "E12"
    E13 = "E13"
    E14 = "E14"
    E17 = "E17"
    E21 = "E21"
    E22 = "E22"
    E24 = "E24"
    E25 = "E25"
    E26 = "E26"
    E27 = "E27"
    E28 = "E28"


ERROR_MEANINGS = {
    SisError.E01: "invalid input number",
    SisError.E10: "unrecognised command",
    SisError.E11: "invalid preset number (or preset not saved)",
    SisError.E12: "invalid output number",
    SisError.E13: "invalid value (out of range)",
    SisError.E14: "not valid for this configuration",
    SisError.E17: "invalid for this signal type, or timed out",
    SisError.E21: "invalid room number",
    SisError.E22: "switcher busy",
    SisError.E24: "privilege violation (needs an administrator login)",
    SisError.E25: "device not present",
    SisError.E26: "maximum number of connections exceeded",
    SisError.E27: "invalid event number",
    SisError.E28: "bad filename or file not found",
}


def volume_to_db(volume: int) -> int:
    """Output volume step (0-64) → dB: 64 is 0 dB, 1 dB per step, 0 is -85 dB."""
    return volume - VOLUME_MAX if volume > 0 else VOLUME_FLOOR_DB


def db_to_volume(db: float) -> int:
    """dB → the nearest output volume step (0-64)."""
    lowest = volume_to_db(1)
    if db < (lowest + VOLUME_FLOOR_DB) / 2:
        return 0
    return max(1, min(VOLUME_MAX, round(db) + VOLUME_MAX))


def number(n: int, pad: bool = True) -> str:
    """Numbers in replies: two digits when `pad` (`Out03`), plain otherwise (`Out3`)."""
    return f"{n:02d}" if pad else str(n)


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Command:
    """One controller → switcher command.

    `1*3!` is Command("1*3", "!"); `Esc3CV CR` is Command("3", "CV", esc=True);
    `Esc+Q1*2!CR` is Command("1*2!", "+Q", esc=True). A bare CR or LF between
    commands is Command("", "", eol=True).
    """

    args: str
    action: str
    esc: bool = False
    eol: bool = False

    def encode(self) -> bytes:
        if self.eol:
            return CR
        if self.esc:
            if self.action == "+Q":
                return ESC + f"+Q{self.args}".encode() + CR
            return ESC + f"{self.args}{self.action}".encode() + CR
        return f"{self.args}{self.action}".encode()


_SIMPLE = re.compile(rb"([0-9*+\-]*)([\x21-\x7e])")
_ESC_BODY = re.compile(rb"([0-9*]*)([A-Za-z]{1,8})")
_QUICK = re.compile(rb"\+Q((?:\d+\*\d+[!&%$])*)", re.IGNORECASE)
_PARAM = b"0123456789*+-"


def parse_command(token: bytes) -> Command:
    """One token from `CommandFramer` → Command; ProtocolError when it is not SIS."""
    if token in (b"\r", b"\n"):
        return Command("", "", eol=True)
    if token[:1] in (ESC, b"W", b"w"):
        if not token.endswith((b"\r", b"|")):
            raise ProtocolError(f"unterminated Esc command {token[:40]!r}")
        body = token[1:-1]
        if m := _QUICK.fullmatch(body):
            return Command(m.group(1).decode(), "+Q", esc=True)
        if m := _ESC_BODY.fullmatch(body):
            return Command(m.group(1).decode(), m.group(2).decode().upper(), esc=True)
        raise ProtocolError(f"malformed Esc command {token[:40]!r}")
    if m := _SIMPLE.fullmatch(token):
        return Command(m.group(1).decode(), m.group(2).decode())
    raise ProtocolError(f"malformed command {token[:40]!r}")


class CommandFramer:
    """Cuts the controller's byte stream into command tokens, losslessly.

    A simple command ends at its action character (anything but digits, `*`, `+`,
    `-`); an Esc (or `W`) command ends at CR or `|`; a CR or LF outside a command is a
    token of its own. Concatenated tokens give back the input, so a password typed
    before login can be reassembled from them. A partial command older than
    `char_timeout` seconds is dropped when the next byte comes, as the unit does.
    """

    def __init__(
        self,
        char_timeout: float | None = None,
        max_len: int = MAX_COMMAND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._char_timeout = char_timeout
        self._max_len = max_len
        self._clock = clock
        self._buf = bytearray()
        self._esc = False
        self._last = 0.0

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        out: list[bytes | ProtocolError] = []
        now = self._clock()
        if self._buf and self._char_timeout is not None and now - self._last > self._char_timeout:
            self.reset()
        self._last = now
        for byte in data:
            char = bytes((byte,))
            if not self._buf:
                if char in (b"\r", b"\n"):
                    out.append(char)
                    continue
                self._esc = char in (ESC, b"W", b"w")
                if self._esc:
                    self._buf += char
                    continue
            self._buf += char
            done = char in (b"\r", b"|") if self._esc else char not in _PARAM
            if done:
                out.append(bytes(self._buf))
                self._buf.clear()
            elif len(self._buf) > self._max_len:
                out.append(ProtocolError(f"command over {self._max_len} bytes dropped"))
                self._buf.clear()
        return out

    def reset(self) -> None:
        self._buf.clear()
        self._esc = False


def tie_command(input_: int, output: int | None, kind: Kind) -> Command:
    """`3*2!` ties input 3 to output 2; output None ties it to every output; input 0 unties."""
    target = "" if output is None else str(output)
    return Command(f"{input_}*{target}", TIE_ACTION[kind])


def table_command(kind: Kind, start: int, preset: int = 0) -> Command:
    """`Esc0*1*1VC`: the video (1) or audio (2) ties of 16 outputs from `start`."""
    return Command(f"{preset}*{start}*{TABLE_KIND[kind]}", "VC", esc=True)


def verbose_command(mode: int | None) -> Command:
    """`Esc3CV` sets verbose mode 3; `EscCV` reads the mode."""
    return Command("" if mode is None else str(mode), "CV", esc=True)


def mute_command(output: int | None, mute: int, action: str) -> Command:
    """`3*1Z` mutes output 3 audio (`B`: video); output None is the global `1*Z`."""
    return Command(f"{mute}*" if output is None else f"{output}*{mute}", action)


QUERY_FIRMWARE = Command("", "Q")
QUERY_PART = Command("", "N")
QUERY_SIZE = Command("", "I")
VIEW_MUTES = Command("", "VM", esc=True)


# ---------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class Tie:
    """`Out03 In01 All`: an input tied to one output (input 0: untied)."""

    output: int
    input: int
    kind: Kind

    def encode(self, pad: bool = True) -> bytes:
        tag = KIND_TAG[self.kind]
        return f"Out{number(self.output, pad)} In{number(self.input, pad)} {tag}".encode() + EOL


@dataclass(frozen=True, slots=True)
class TieAll:
    """`In05 All`: an input tied to every output."""

    input: int
    kind: Kind

    def encode(self, pad: bool = True) -> bytes:
        return f"In{number(self.input, pad)} {KIND_TAG[self.kind]}".encode() + EOL


@dataclass(frozen=True, slots=True)
class TieTable:
    """`08 08 00 -- ... Vid`: the input tied to each of up to 16 outputs (None: no such output)."""

    kind: Kind
    inputs: tuple[int | None, ...]

    def encode(self, pad: bool = True) -> bytes:
        cells = ["--" if i is None else number(i, pad) for i in self.inputs]
        return " ".join([*cells, KIND_TAG[self.kind]]).encode() + EOL


@dataclass(frozen=True, slots=True)
class QuickTie:
    """`Qik`: several ties changed at once (front panel, quick tie); read the table again."""

    def encode(self, pad: bool = True) -> bytes:
        return b"Qik" + EOL


@dataclass(frozen=True, slots=True)
class PresetRecalled:
    """`Rpr05`."""

    preset: int

    def encode(self, pad: bool = True) -> bytes:
        return f"Rpr{number(self.preset, pad)}".encode() + EOL


@dataclass(frozen=True, slots=True)
class PresetSaved:
    """`Spr05`."""

    preset: int

    def encode(self, pad: bool = True) -> bytes:
        return f"Spr{number(self.preset, pad)}".encode() + EOL


@dataclass(frozen=True, slots=True)
class VideoMute:
    """`Vmt03*1` (one output) or `Vmt1` (output None: every output)."""

    output: int | None
    mute: int

    def encode(self, pad: bool = True) -> bytes:
        where = "" if self.output is None else f"{number(self.output, pad)}*"
        return f"Vmt{where}{self.mute}".encode() + EOL


@dataclass(frozen=True, slots=True)
class AudioMute:
    """`Amt03*1` (one output) or `Amt1` (output None: every output)."""

    output: int | None
    mute: bool

    def encode(self, pad: bool = True) -> bytes:
        where = "" if self.output is None else f"{number(self.output, pad)}*"
        return f"Amt{where}{int(self.mute)}".encode() + EOL


@dataclass(frozen=True, slots=True)
class Volume:
    """`Out01 Vol50`: output volume step 0-64."""

    output: int
    volume: int

    def encode(self, pad: bool = True) -> bytes:
        return f"Out{number(self.output, pad)} Vol{number(self.volume, pad)}".encode() + EOL


@dataclass(frozen=True, slots=True)
class Verbose:
    """`Vrb3`."""

    mode: int

    def encode(self, pad: bool = True) -> bytes:
        return f"Vrb{self.mode}".encode() + EOL


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """`E10`: the switcher refused the command."""

    code: str

    @property
    def error(self) -> SisError | None:
        return SisError.__members__.get(self.code)

    @property
    def meaning(self) -> str:
        error = self.error
        return ERROR_MEANINGS[error] if error is not None else "unknown error"

    def encode(self, pad: bool = True) -> bytes:
        return self.code.encode() + EOL


@dataclass(frozen=True, slots=True)
class Login:
    """`Login Administrator` or `Login User`."""

    level: str  # "administrator" or "user"

    def encode(self, pad: bool = True) -> bytes:
        return EOL + f"Login {self.level.capitalize()}".encode() + EOL


@dataclass(frozen=True, slots=True)
class PasswordPrompt:
    """`Password:`, sent without a line ending; sent again after a wrong password."""

    def encode(self, pad: bool = True) -> bytes:
        return EOL + PROMPT


@dataclass(frozen=True, slots=True)
class Banner:
    """`(c) Copyright 2012, Extron Electronics, DXP 84 HDMI, V1.05, 60-1013-01`."""

    text: str
    model: str | None = None
    firmware: str | None = None
    part: str | None = None

    def encode(self, pad: bool = True) -> bytes:
        return self.text.encode() + EOL


@dataclass(frozen=True, slots=True)
class Text:
    """Any other line: an untagged query answer (`07`, `1.23`, `V8X4 A8X4`) or the date."""

    text: str

    def encode(self, pad: bool = True) -> bytes:
        return self.text.encode() + EOL


Reply = (
    Tie
    | TieAll
    | TieTable
    | QuickTie
    | PresetRecalled
    | PresetSaved
    | VideoMute
    | AudioMute
    | Volume
    | Verbose
    | ErrorReply
    | Login
    | PasswordPrompt
    | Banner
    | Text
)


def banner(year: int, model: str, firmware: str, part: str) -> Banner:
    """The copyright line a unit sends on connect."""
    text = f"(c) Copyright {year}, Extron Electronics, {model}, V{firmware}, {part}"
    return Banner(text, model, firmware, part)


_KIND = r"(all|vid|aud|rgb)"
_BANNER = re.compile(
    r"\(c\)\s*Copyright\s+\d{4},\s*Extron Electronics,?\s*(?P<model>.*?),\s*"
    r"V(?P<firmware>\d+\.\d+(?:\.\d+)*),\s*(?P<part>60-\d+-\d+)",
    re.IGNORECASE,
)
_JUNK = re.compile(r"^[^A-Za-z0-9(+\-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [  # (first letters of a match, pattern, kind)
    ("o", re.compile(rf"Out(\d+) ?In(\d+) ?{_KIND}", re.I), "tie"),
    ("i", re.compile(rf"In(\d+) ?{_KIND}", re.I), "tie_all"),
    ("o", re.compile(r"Out(\d+) ?Vol(\d+)", re.I), "volume"),
    ("0123456789-", re.compile(rf"((?:\d+|-+)(?: +(?:\d+|-+))*) +{_KIND}", re.I), "table"),
    ("v", re.compile(r"Vmt(?:(\d+)[* ])?(\d)", re.I), "video_mute"),
    ("a", re.compile(r"Amt(?:(\d+)[* ])?([01])", re.I), "audio_mute"),
    ("r", re.compile(r"Rpr ?(\d+)", re.I), "recalled"),
    ("s", re.compile(r"Spr ?(\d+)", re.I), "saved"),
    ("v", re.compile(r"Vrb ?(\d)", re.I), "verbose"),
    ("E", re.compile(r"E(\d\d)"), "error"),
    ("q", re.compile(r"Qik", re.I), "quick"),
    ("l", re.compile(r"Login (Administrator|User)", re.I), "login"),
    ("p", re.compile(r"Password:", re.I), "prompt"),
]
_BY_FIRST: dict[str, list[tuple[re.Pattern[str], str]]] = {}
"""The patterns a line can match, by its first character: a line is tried against those only."""
for _firsts, _pattern, _kind in _PATTERNS:
    for _first in {*_firsts, *(_firsts.upper() if _pattern.flags & re.I else "")}:
        _BY_FIRST.setdefault(_first, []).append((_pattern, _kind))


def parse_reply(line: bytes) -> tuple[Reply, str]:
    """One switcher line (terminator removed) → (reply, junk found before it).

    Numbers may be zero-padded or not. Raises ProtocolError for a line with no text
    or with control or non-ASCII bytes after its start.
    """
    text = line.decode("latin-1")
    junk_match = _JUNK.match(text)
    junk = junk_match.group(0) if junk_match else ""
    text = text[len(junk) :].strip()
    if not text:
        raise ProtocolError(f"no text in {line[:40]!r}")
    if not _PRINTABLE.fullmatch(text):
        raise ProtocolError(f"not SIS text: {line[:60]!r}")
    if text.lower().startswith("(c)"):
        if m := _BANNER.match(text):
            return Banner(
                text, m.group("model").strip(), m.group("firmware"), m.group("part")
            ), junk
        return Banner(text), junk
    for pattern, name in _BY_FIRST.get(text[0], ()):
        if m := pattern.fullmatch(text):
            return _build(name, m), junk
    return Text(text), junk


def _build(name: str, m: re.Match[str]) -> Reply:
    g = m.groups()
    match name:
        case "tie":
            return Tie(int(g[0]), int(g[1]), _TAG_KIND[g[2].lower()])
        case "tie_all":
            return TieAll(int(g[0]), _TAG_KIND[g[1].lower()])
        case "volume":
            return Volume(int(g[0]), int(g[1]))
        case "table":
            cells = g[0].split()
            inputs = tuple([None if c[0] == "-" else int(c) for c in cells])
            return TieTable(_TAG_KIND[g[1].lower()], inputs)
        case "video_mute":
            return VideoMute(None if g[0] is None else int(g[0]), int(g[1]))
        case "audio_mute":
            return AudioMute(None if g[0] is None else int(g[0]), g[1] == "1")
        case "recalled":
            return PresetRecalled(int(g[0]))
        case "saved":
            return PresetSaved(int(g[0]))
        case "verbose":
            return Verbose(int(g[0]))
        case "error":
            return ErrorReply(f"E{g[0]}")
        case "quick":
            return QuickTie()
        case "login":
            return Login(g[0].lower())
        case _:
            return PasswordPrompt()


_SIZE = re.compile(r"V(\d+)X(\d+)(?:\s*A(\d+)X(\d+))?", re.IGNORECASE)
_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)*)")


def parse_size(text: str) -> tuple[int, int, bool] | None:
    """`V8X4 A8X4` → (8 inputs, 4 outputs, has audio); None when the text is not a size."""
    m = _SIZE.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3) is not None


def parse_version(text: str) -> str | None:
    """`1.23` (or a tagged `Ver01*1.23`) → `1.23`."""
    m = _VERSION.search(text)
    return m.group(1) if m else None


_MUTE_DIGITS = re.compile(r"[0-3]+")


def parse_mute_table(text: str) -> list[int] | None:
    """`EscVM` answer `0010 3000` → per output 0 (none), 1 (video), 2 (audio), 3 (both)."""
    digits = text.replace(" ", "")
    if not _MUTE_DIGITS.fullmatch(digits):
        return None
    return [int(c) for c in digits]


# ---------------------------------------------------------------------------- reply framing


_PROMPT = PROMPT.lower()


class ReplyFramer:
    """Switcher lines (CR, LF or CR LF) with Telnet IAC removed; also the bare `Password:`.

    The prompt has no line ending, so it is handed over as a frame once the
    unterminated tail ends with it. `last_data` is when bytes last arrived, so a
    caller can tell a quiet line from one still sending.
    """

    __slots__ = ("_clock", "_lines", "_telnet", "last_data")

    def __init__(
        self, max_len: int = MAX_REPLY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lines = DelimiterFramer(b"\r\n", max_len)
        # Stripped, never answered: whether units negotiate at all is unconfirmed, and
        # on RS-232 a stray 0xFF must not make the driver write to the switcher.
        self._telnet = TelnetFramer(self._lines)
        self._clock = clock
        self.last_data = clock()

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self.last_data = self._clock()
        frames = self._telnet.feed(data)
        lines = self._lines
        if lines.pending_size and lines.pending.rstrip().lower().endswith(_PROMPT):
            frames.append(lines.take_pending().strip())
        return frames

    @property
    def pending(self) -> bytes:
        """Bytes of a line not finished yet."""
        return self._lines.pending

    def reset(self) -> None:
        self._telnet.reset()
