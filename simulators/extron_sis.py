"""Extron SIS matrix switcher simulator (protocols/extron-sis.md §8)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.extron_sis.codec import (
    ACTION_KIND,
    PORT,
    TABLE_WIDTH,
    VOLUME_MAX,
    AudioMute,
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
    SisError,
    Text,
    Tie,
    TieAll,
    TieTable,
    Verbose,
    VideoMute,
    Volume,
    banner,
    number,
    parse_command,
)
from drivers.extron_sis.config import MAX_PORTS, ExtronSisConfig
from drivers.transport.framing import Framer
from simulators.base import AuthKnobs, Session, Simulator, Writer

log = logging.getLogger(__name__)

IAC_BURST = bytes([0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x1F, 0xFF, 0xFA, 0x18, 0x01, 0xFF, 0xF0])
"""WILL ECHO, DO NAWS, and a terminal-type subnegotiation, as some Telnet servers open with."""
MAX_PASSWORD_INPUT = 256
_PAIR = re.compile(r"(\d+)\*(\d*)")
_ONE = re.compile(r"\d+")
_STEP = re.compile(r"(\d+)([+-])")
_QUICK_TIE = re.compile(r"(\d+)\*(\d+)([!&%$])")
_TABLE = re.compile(r"(\d+)\*(\d+)\*([12])")

E01, E10, E11, E12, E13, E14 = (ErrorReply(e) for e in ("E01", "E10", "E11", "E12", "E13", "E14"))
E22, E24 = ErrorReply("E22"), ErrorReply("E24")

Handler = Callable[[Session, "_Client", Command], Reply]


class ExtronKnobs(AuthKnobs):
    """Extron switcher knobs. State knobs only set the start state."""

    inputs: int = Field(8, ge=1, le=MAX_PORTS, description="number of inputs")
    outputs: int = Field(8, ge=1, le=MAX_PORTS, description="number of outputs")
    audio: bool = Field(True, description="audio ties with breakaway ($); off: video only")
    volume: bool = Field(True, description="output volume 0-64 (V); off: E10")
    audio_mute: bool = Field(True, description="output audio mute (Z); off: E10")
    video_mute: bool = Field(True, description="output video mute (B); off: E10")
    presets: int = Field(32, ge=1, le=MAX_PORTS, description="number of global presets")
    password: str | None = Field(
        None, min_length=1, description="administrator password (TCP asks for it)"
    )
    user_password: str | None = Field(
        None, min_length=1, description="user password; needs password too"
    )
    model: str = Field("DXP 88 HDMI", description="model in the copyright banner")
    part: str = Field("60-882-01", pattern=r"^60-\d+-\d+$", description="part number (N)")
    firmware: str = Field("1.23", pattern=r"^\d+\.\d+$", description="firmware version (Q)")
    year: int = Field(2012, ge=1990, le=2099, description="copyright year in the banner")
    pad: bool = Field(True, description="zero-padded numbers in answers (Out03 In01 All)")
    serial: bool = Field(
        False,
        description="TCP sessions behave as the RS-232 port (a serial gateway): no banner, "
        "no password, verbose 1; pty sessions always do",
    )
    verbose: Literal[0, 1, 2, 3] | None = Field(
        None, description="verbose mode of new connections; unset: 0 (TCP) or 1 (serial)"
    )
    iac_burst: bool = Field(False, description="open with Telnet IAC option negotiation")
    interleave: bool = Field(
        False,
        description="as each command arrives, tie the next input to the last output from the "
        "front panel first, so its notice comes between the command and its answer",
    )
    errors: dict[str, str] = Field(
        default_factory=dict,
        description="answer these commands with an error, e.g. V=E22 (keys: ! & % $ . , B Z V "
        "Q N I CV VC VM +Q)",
    )
    char_timeout: Duration = Field(
        10.0, gt=0, description="a partial command older than this is dropped"
    )
    idle_timeout: Duration | None = Field(
        300.0, gt=0, description="close a session when no command arrived for this long"
    )
    max_clients: int | None = Field(
        200, ge=1, description="close extra connections at once, before any banner"
    )

    @field_validator("errors")
    @classmethod
    def _codes(cls, value: dict[str, str]) -> dict[str, str]:
        if bad := [code for code in value.values() if not re.fullmatch(r"E\d\d", code)]:
            raise ValueError(f"not SIS error codes (like E22): {bad}")
        return {(k.upper() if k.isalpha() else k): v for k, v in value.items()}

    @model_validator(mode="after")
    def _user_needs_admin(self) -> ExtronKnobs:
        if self.user_password is not None and self.password is None:
            raise ValueError("user_password needs an administrator password too")
        return self


@dataclass(slots=True)
class _Client:
    """Per-connection state: verbose mode and login level (None: waiting for the password)."""

    verbose: int
    level: str | None
    typed: bytearray = field(default_factory=bytearray)

    @property
    def hears_changes(self) -> bool:
        return self.level is not None and self.verbose in (1, 3)

    @property
    def tagged(self) -> bool:
        return self.verbose in (2, 3)


class ExtronSimulator(Simulator[ExtronKnobs]):
    """An Extron matrix switcher: login, verbose modes, ties with breakaway, volume, mutes, presets.

    Sessions in verbose mode 1 or 3 hear every change made by other sessions or the
    front panel (`press_*` / `set_*` methods). The RS-232 port (`start_pty`) has no
    banner or password and starts in verbose mode 1. `stop()` keeps the state, so
    `start()` on the same port continues where it was.

    Faults: its device error is E22 (switcher busy); `fail_auth` prompts every new TCP
    connection for a password and re-prompts whatever is typed (the RS-232 port has
    no password). Saved presets survive a reboot; ties, volumes and mutes do not.
    """

    kind = "extron_sis"
    knobs_model = ExtronKnobs
    default_port = PORT
    line_end = b"\r\n"
    serial = True

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The switcher has the device's password, size and audio/mute features."""
        if not isinstance(device, ExtronSisConfig):
            return {}
        options: dict[str, Any] = {
            "serial": device.transport.is_serial,  # e.g. socket:// to a serial gateway
            "audio": device.audio,
            "volume": device.volume,
            "audio_mute": device.audio_mute,
            "video_mute": device.video_mute,
        }
        for key in ("password", "inputs", "outputs"):
            if (value := getattr(device, key)) is not None:
                options[key] = value
        return options

    def __init__(self, knobs: ExtronKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # commands per action, errors included
        self.notices: Counter[str] = Counter()  # changes announced, by kind: "Tie", "Volume"...
        self._presets: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        self._interleaved = 0
        self.reset_state()
        self._clients: dict[Session, _Client] = {}
        self._on_serial_port: set[Session] = set()
        self._simple: dict[str, Handler] = {
            **dict.fromkeys("!&%$", self._tie),
            ".": self._recall,
            ",": self._save,
            "B": self._video_mute,
            "Z": self._audio_mute,
            "V": self._volume,
            "Q": self._query(lambda: self.knobs.firmware),
            "N": self._query(lambda: self.knobs.part),
            "I": self._query(self._size),
        }
        self._esc: dict[str, Handler] = {
            "CV": self._verbose,
            "VC": self._table,
            "VM": self._mute_table,
            "+Q": self._quick,
        }

    def reset_state(self) -> None:
        """Input n tied to output n, full volume, nothing muted, no preset recalled."""
        k = self.knobs
        self._video = {o: o if o <= k.inputs else 0 for o in range(1, k.outputs + 1)}
        self._audio = dict(self._video)
        self._volumes = dict.fromkeys(self._video, VOLUME_MAX)
        self._audio_mutes = dict.fromkeys(self._video, False)
        self._video_mutes = dict.fromkeys(self._video, False)
        self._preset: int | None = None

    # -- state, read-only; change it through the front panel ---------------------

    @property
    def video_ties(self) -> dict[int, int]:
        """Output → video input (0: untied)."""
        return dict(self._video)

    @property
    def audio_ties(self) -> dict[int, int]:
        return dict(self._audio)

    @property
    def volumes(self) -> dict[int, int]:
        """Output → volume step 0-64."""
        return dict(self._volumes)

    @property
    def audio_mutes(self) -> dict[int, bool]:
        return dict(self._audio_mutes)

    @property
    def video_mutes(self) -> dict[int, bool]:
        return dict(self._video_mutes)

    @property
    def preset(self) -> int | None:
        """The global preset recalled last."""
        return self._preset

    def verbose_modes(self) -> list[int]:
        """The verbose mode of every logged-in session."""
        return [c.verbose for c in self._clients.values() if c.level is not None]

    # -- front panel (tests; not over the network) ------------------------------

    def press_tie(self, input_: int, output: int | None = None, kind: Kind | str = "all") -> None:
        """Tie from the front panel (output None: every output); verbose sessions hear of it."""
        kind = Kind(kind)
        self._need(0 <= input_ <= self.knobs.inputs, f"no input {input_}")
        self._need(output is None or output in self._video, f"no output {output}")
        self._apply_ties([(input_, output, kind)])
        notice = TieAll(input_, kind) if output is None else Tie(output, input_, kind)
        self._notify(notice)

    def press_quick(self, ties: Iterable[tuple[int, int]]) -> None:
        """Several (input, output) ties at once, announced as `Qik`."""
        batch: list[tuple[int, int | None, Kind]] = [(i, o, Kind.ALL) for i, o in ties]
        for input_, output, _ in batch:
            self._need(0 <= input_ <= self.knobs.inputs and output in self._video, "bad tie")
        self._apply_ties(batch)
        self._notify(QuickTie())

    def press_preset(self, preset: int) -> None:
        """Recall a saved global preset from the front panel (`Rpr`)."""
        self._need(preset in self._presets, f"preset {preset} is not saved")
        self._load_preset(preset)
        self._notify(PresetRecalled(preset))

    def set_volume(self, output: int, volume: int) -> None:
        self._need(output in self._volumes and 0 <= volume <= VOLUME_MAX, "bad volume")
        self._volumes[output] = volume
        self._notify(Volume(output, volume))

    def set_audio_mute(self, output: int, mute: bool) -> None:
        self._need(output in self._audio_mutes, f"no output {output}")
        self._audio_mutes[output] = mute
        self._notify(AudioMute(output, mute))

    def set_video_mute(self, output: int, mute: bool) -> None:
        self._need(output in self._video_mutes, f"no output {output}")
        self._video_mutes[output] = mute
        self._notify(VideoMute(output, int(mute)))

    @staticmethod
    def _need(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(message)

    # -- sessions --------------------------------------------------------------

    def make_framer(self) -> CommandFramer:
        return CommandFramer(self.knobs.char_timeout)

    def open_session(
        self, writer: Writer, peer: str, framer: Framer[bytes] | None = None
    ) -> Session | None:
        """A session; one that is not a TCP connection is on the RS-232 port (a pty)."""
        session = super().open_session(writer, peer, framer)
        if session is not None and not isinstance(writer, asyncio.Transport):
            self._on_serial_port.add(session)
        return session

    async def session_started(self, session: Session) -> None:
        k = self.knobs
        serial = k.serial or session in self._on_serial_port
        verbose = k.verbose if k.verbose is not None else (1 if serial else 0)
        level = None if (k.password or k.fail_auth) and not serial else "administrator"
        self._clients[session] = _Client(verbose, level)
        if serial:
            return
        if k.iac_burst:
            await session.send(IAC_BURST)
        await session.send(banner(k.year, k.model, k.firmware, k.part).encode())
        await session.send(Text(time.strftime("%a, %d %b %Y %H:%M:%S")).encode())
        if level is None:
            await session.send(PasswordPrompt().encode())

    def session_ended(self, session: Session) -> None:
        self._clients.pop(session, None)
        self._on_serial_port.discard(session)

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        client = self._clients.get(session)
        if client is None:
            return
        if client.level is None:
            await self._password(session, client, frame)
            return
        try:
            command = parse_command(frame)
        except ProtocolError as err:
            log.info("%s: %s", session, err)
            await session.send(E10.encode())
            return
        if command.eol:
            return
        if self.knobs.interleave:
            await self._interleave(session, client)
        reply = self._execute(session, client, command)
        await session.send(reply.encode(self.knobs.pad))

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """E22 (busy) for any command of a logged-in session."""
        client = self._clients.get(session)
        if client is None or client.level is None:
            return False
        try:
            command = parse_command(frame)
        except ProtocolError:
            return False
        if command.eol:
            return False
        await session.send(E22.encode(self.knobs.pad))
        return True

    async def _password(self, session: Session, client: _Client, frame: bytes) -> None:
        """Bytes before login are the password, up to CR or LF."""
        client.typed += frame
        line, cut, _ = bytes(client.typed).partition(b"\r")
        line, lf, _ = line.partition(b"\n")
        if not (cut or lf):
            if len(client.typed) > MAX_PASSWORD_INPUT:
                client.typed.clear()
            return
        client.typed.clear()
        if not line:
            return  # the LF of a CR LF, or an empty line
        level = self._check_password(line.decode("latin-1"))
        if level is None:
            log.info("%s: wrong password", session)
            await session.send(PasswordPrompt().encode())
            return
        client.level = level
        await session.send(Login(level).encode())

    def _check_password(self, typed: str) -> str | None:
        if self.knobs.fail_auth:
            return None
        for level, password in (
            ("administrator", self.knobs.password),
            ("user", self.knobs.user_password),
        ):
            if password is not None and hmac.compare_digest(typed.encode(), password.encode()):
                return level
        return None

    def _execute(self, session: Session, client: _Client, command: Command) -> Reply:
        action = command.action.upper() if command.action.isalpha() else command.action
        self.received[action] += 1
        table = self._esc if command.esc else self._simple
        handler = table.get(action)
        if handler is None:
            return E10
        if action in self.knobs.errors:
            return ErrorReply(self.knobs.errors[action])
        return handler(session, client, command)

    async def _interleave(self, session: Session, client: _Client) -> None:
        """A front-panel tie made just before a command runs; its notice precedes the answer."""
        self._interleaved += 1
        input_ = self._interleaved % self.knobs.inputs + 1
        output = self.knobs.outputs
        self._apply_ties([(input_, output, Kind.ALL)])
        notice = Tie(output, input_, Kind.ALL)
        self._notify(notice, source=session)
        if client.hears_changes:
            await session.send(notice.encode(self.knobs.pad))

    def _notify(self, reply: Reply, source: Session | None = None) -> None:
        """Count a change and push its notice to every verbose 1/3 session but `source`."""
        self.notices[type(reply).__name__] += 1
        data = reply.encode(self.knobs.pad)
        for session, client in self._clients.items():
            if session is not source and client.hears_changes:
                session.push(data)

    # -- commands --------------------------------------------------------------

    def _tie(self, session: Session, client: _Client, command: Command) -> Reply:
        kind = ACTION_KIND[command.action]
        if kind is Kind.AUDIO and not self.knobs.audio:
            return E14
        if m := _ONE.fullmatch(command.args):  # view an output's tie
            read = int(m.group(0))
            if read not in self._video:
                return E12
            tied = (self._audio if kind is Kind.AUDIO else self._video)[read]
            return Tie(read, tied, kind) if client.tagged else self._number(tied)
        m = _PAIR.fullmatch(command.args)
        if m is None:
            return E10
        input_, output = int(m.group(1)), int(m.group(2)) if m.group(2) else None
        if input_ > self.knobs.inputs:
            return E01
        if output is not None and output not in self._video:
            return E12
        self._apply_ties([(input_, output, kind)])
        reply = TieAll(input_, kind) if output is None else Tie(output, input_, kind)
        self._notify(reply, source=session)
        return reply

    def _apply_ties(self, ties: Iterable[tuple[int, int | None, Kind]]) -> None:
        for input_, output, kind in ties:
            targets = list(self._video) if output is None else [output]
            for o in targets:
                if kind is not Kind.AUDIO:
                    self._video[o] = input_
                if kind is not Kind.VIDEO and self.knobs.audio:
                    self._audio[o] = input_

    def _quick(self, session: Session, client: _Client, command: Command) -> Reply:
        ties = _QUICK_TIE.findall(command.args)
        batch: list[tuple[int, int | None, Kind]] = []
        for input_, output, action in ties:
            if int(input_) > self.knobs.inputs:
                return E01
            if int(output) not in self._video:
                return E12
            batch.append((int(input_), int(output), ACTION_KIND[action]))
        self._apply_ties(batch)
        self._notify(QuickTie(), source=session)
        return QuickTie()

    def _recall(self, session: Session, client: _Client, command: Command) -> Reply:
        if not _ONE.fullmatch(command.args) or int(command.args) not in self._presets:
            return ErrorReply(SisError.E11)
        preset = int(command.args)
        self._load_preset(preset)
        self._notify(PresetRecalled(preset), source=session)
        return PresetRecalled(preset)

    def _load_preset(self, preset: int) -> None:
        video, audio = self._presets[preset]
        self._video.update(video)
        self._audio.update(audio)
        self._preset = preset

    def _save(self, session: Session, client: _Client, command: Command) -> Reply:
        if not _ONE.fullmatch(command.args) or not 1 <= int(command.args) <= self.knobs.presets:
            return ErrorReply(SisError.E11)
        if client.level != "administrator":
            return E24
        preset = int(command.args)
        self._presets[preset] = (dict(self._video), dict(self._audio))
        self._notify(PresetSaved(preset), source=session)
        return PresetSaved(preset)

    def _mute(
        self, session: Session, client: _Client, command: Command, mutes: dict[int, bool]
    ) -> Reply | tuple[int | None, bool]:
        """Shared B/Z grammar: `3*1` one output, `1*` every output, `3` read."""
        if m := _ONE.fullmatch(command.args):
            output = int(m.group(0))
            return (output, mutes[output]) if output in mutes else E12
        m = _PAIR.fullmatch(command.args)
        if m is None:
            return E10
        first, second = int(m.group(1)), m.group(2)
        value = first if not second else int(second)
        if value not in (0, 1):
            return E13
        targets = list(mutes) if not second else [first]
        if second and first not in mutes:
            return E12
        mutes.update(dict.fromkeys(targets, bool(value)))
        return (None if not second else first), bool(value)

    def _video_mute(self, session: Session, client: _Client, command: Command) -> Reply:
        if not self.knobs.video_mute:
            return E10
        result = self._mute(session, client, command, self._video_mutes)
        if not isinstance(result, tuple):
            return result
        output, mute = result
        reply = VideoMute(output, int(mute))
        if _ONE.fullmatch(command.args):  # a read
            return reply if client.tagged else Text(str(int(mute)))
        self._notify(reply, source=session)
        return reply

    def _audio_mute(self, session: Session, client: _Client, command: Command) -> Reply:
        if not self.knobs.audio_mute:
            return E10
        result = self._mute(session, client, command, self._audio_mutes)
        if not isinstance(result, tuple):
            return result
        output, mute = result
        reply = AudioMute(output, mute)
        if _ONE.fullmatch(command.args):
            return reply if client.tagged else Text(str(int(mute)))
        self._notify(reply, source=session)
        return reply

    def _volume(self, session: Session, client: _Client, command: Command) -> Reply:
        if not self.knobs.volume:
            return E10
        args = command.args
        if m := _ONE.fullmatch(args):
            output = int(m.group(0))
            if output not in self._volumes:
                return E12
            volume = self._volumes[output]
            return Volume(output, volume) if client.tagged else self._number(volume)
        if m := _STEP.fullmatch(args):
            output, step = int(m.group(1)), 1 if m.group(2) == "+" else -1
            volume = self._volumes.get(output, 0) + step
        elif (m := _PAIR.fullmatch(args)) and m.group(2):
            output, volume = int(m.group(1)), int(m.group(2))
            if volume > VOLUME_MAX:
                return E13
        else:
            return E10
        if output not in self._volumes:
            return E12
        self._volumes[output] = max(0, min(VOLUME_MAX, volume))
        reply = Volume(output, self._volumes[output])
        self._notify(reply, source=session)
        return reply

    def _verbose(self, session: Session, client: _Client, command: Command) -> Reply:
        if not command.args:
            return Verbose(client.verbose) if client.tagged else Text(str(client.verbose))
        if command.args not in ("0", "1", "2", "3"):
            return E13
        client.verbose = int(command.args)
        return Verbose(client.verbose)

    def _table(self, session: Session, client: _Client, command: Command) -> Reply:
        m = _TABLE.fullmatch(command.args)
        if m is None:
            return E10
        preset, first, kind = int(m.group(1)), int(m.group(2)), m.group(3)
        if kind == "2" and not self.knobs.audio:
            return E14
        if preset and preset not in self._presets:
            return ErrorReply(SisError.E11)
        if first not in self._video:
            return E12
        video, audio = self._presets[preset] if preset else (self._video, self._audio)
        ties = video if kind == "1" else audio
        cells = tuple(ties.get(o) for o in range(first, first + TABLE_WIDTH))
        return TieTable(Kind.VIDEO if kind == "1" else Kind.AUDIO, cells)

    def _mute_table(self, session: Session, client: _Client, command: Command) -> Reply:
        if command.args or not (self.knobs.audio_mute or self.knobs.video_mute):
            return E10
        digits = (int(self._video_mutes[o]) + 2 * int(self._audio_mutes[o]) for o in self._video)
        return Text("".join(str(d) for d in digits))

    def _query(self, value: Callable[[], str]) -> Handler:
        def answer(session: Session, client: _Client, command: Command) -> Reply:
            return Text(value()) if not command.args else E10

        return answer

    def _size(self) -> str:
        k = self.knobs
        size = f"V{k.inputs}X{k.outputs}"
        return f"{size} A{k.inputs}X{k.outputs}" if k.audio else size

    def _number(self, value: int) -> Text:
        return Text(number(value, self.knobs.pad))
