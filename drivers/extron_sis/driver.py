"""Extron SIS matrix switcher driver: ties, output volume and mutes, presets, verbose pushes."""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from drivers.actions import Args, action, config_in
from drivers.base import MORE, NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import (
    AuthError,
    CommandError,
    CommandTimeout,
    DeviceError,
    ErrorCode,
    ProtocolError,
)
from drivers.extron_sis.codec import (
    CR,
    QUERY_FIRMWARE,
    QUERY_PART,
    QUERY_SIZE,
    TABLE_WIDTH,
    VIEW_MUTES,
    VOLUME_FLOOR_DB,
    AudioMute,
    Banner,
    Command,
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
    db_to_volume,
    mute_command,
    parse_mute_table,
    parse_reply,
    parse_size,
    parse_version,
    table_command,
    tie_command,
    verbose_command,
    volume_to_db,
)
from drivers.extron_sis.config import MAX_PORTS, ExtronSisConfig

log = logging.getLogger("avhub.driver.extron_sis")

VERBOSE = 3  # change notices and tagged answers
KEEPALIVE = 240.0  # units close a Telnet session after 5 idle minutes
_PART = re.compile(r"\d{2}-\d{3,4}-\d{2}")
_ERROR_CODES = {
    SisError.E01: ErrorCode.INVALID_ARGS,
    SisError.E10: ErrorCode.DEVICE_ERROR,
    SisError.E11: ErrorCode.INVALID_ARGS,
    SisError.E12: ErrorCode.INVALID_ARGS,
    SisError.E13: ErrorCode.INVALID_ARGS,
    SisError.E14: ErrorCode.DEVICE_ERROR,
    SisError.E17: ErrorCode.DEVICE_ERROR,
    SisError.E21: ErrorCode.INVALID_ARGS,
    SisError.E22: ErrorCode.BUSY,
    SisError.E24: ErrorCode.DEVICE_ERROR,
    SisError.E25: ErrorCode.DEVICE_ERROR,
    SisError.E26: ErrorCode.DEVICE_ERROR,
    SisError.E27: ErrorCode.INVALID_ARGS,
    SisError.E28: ErrorCode.DEVICE_ERROR,
}
_HINTS = {
    SisError.E10: "; this model may not support it (check the device's volume/audio_mute/"
    "video_mute/audio options)",
    SisError.E24: "; the configured password logs in as User, this needs the administrator "
    "password",
}
_OPTIONAL_ACTIONS = {
    "set_level": "volume",
    "set_mute": "audio_mute",
    "set_video_mute": "video_mute",
}

T = TypeVar("T")
Expect = Callable[[Reply], T | Wait]
Query = tuple[Command, Expect[Any], str]
"""A command, the `expect` of its answer and what it does (for errors): see `ask`."""
Port = Annotated[int, Field(ge=1, le=MAX_PORTS)]
Name = Annotated[str, Field(min_length=1)]
PortKind = Literal["input", "output"]
Ref = int | str | None


class ExtronDeviceError(DeviceError):
    """The switcher answered `Exx`."""

    def __init__(self, what: str, reply: ErrorReply) -> None:
        error = reply.error
        code = _ERROR_CODES.get(error, ErrorCode.DEVICE_ERROR) if error else ErrorCode.DEVICE_ERROR
        hint = _HINTS.get(error, "") if error else ""
        super().__init__(code, f"{what}: switcher answered {reply.code} ({reply.meaning}){hint}")
        self.error = reply.code


def _known(kind: PortKind, ref: Ref, info: ValidationInfo) -> Ref:
    """With the device config (`avhub check`), refuse a name or number it rules out."""
    config = config_in(info)
    if isinstance(config, ExtronSisConfig) and ref is not None and ref != 0:
        config.port(kind, ref)
    return ref


class Route(Args):
    input: Annotated[int, Field(ge=0, le=MAX_PORTS)] | Name | None = Field(
        description="input number or name; 0 or null unties"
    )
    output: Port | Name | None = Field(
        None, description="output number or name; omitted: every output"
    )
    kind: Kind = Field(Kind.ALL, description="all: video and audio; video or audio alone")

    _input = field_validator("input")(partial(_known, "input"))
    _output = field_validator("output")(partial(_known, "output"))


class _OutputControl(Args):
    control: str = Field(description="output number or name, e.g. '1'")

    _output = field_validator("control")(partial(_known, "output"))


class SetLevel(_OutputControl):
    level: float = Field(ge=VOLUME_FLOOR_DB, le=0, description="dB; 0 is full volume")


class SetMute(_OutputControl):
    mute: bool


class SetVideoMute(Args):
    mute: bool
    output: Port | Name | None = Field(
        None, description="output number or name; omitted: every output"
    )

    _output = field_validator("output")(partial(_known, "output"))


class Preset(Args):
    preset: Port


class ExtronSisDriver(Driver[ExtronSisConfig, bytes]):
    """An Extron matrix switcher over Telnet (banner, password) or RS-232 (neither).

    Verbose mode 3 is set on every connection, so ties, mutes and volumes changed on
    the front panel or by other controllers arrive as they happen; replies are matched
    by what they say, so such a notice may come between a command and its answer.
    `routes` shows the video ties; with audio breakaway `audio_routes` differ.
    The unit answers commands in the order they came, so the queries of a poll go
    out together and each answer is applied as it is read.
    """

    name = "extron_sis"
    persistent = True
    pipelined = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        self._inputs = cfg.inputs
        self._outputs = cfg.outputs
        self._audio = cfg.audio
        self._video: dict[int, int] = {}
        self._audio_ties: dict[int, int] = {}
        self._reinit = False
        self._polls: list[tuple[bytes, Callable[[bytes], Any]]] = []  # made at login
        self._framer = ReplyFramer()
        # What this model lacks never changes: in the state from the first snapshot on.
        absent = [a for a, flag in _OPTIONAL_ACTIONS.items() if not getattr(cfg, flag)]
        self.state["unavailable_actions"] = absent
        if cfg.input_names:  # names beside the numbers, for panels and macros
            self.state["inputs"] = {str(n): name for n, name in sorted(cfg.input_names.items())}
        if cfg.output_names:
            self.state["outputs"] = {str(n): name for n, name in sorted(cfg.output_names.items())}

    def create_framer(self) -> ReplyFramer:
        self._framer = ReplyFramer()
        return self._framer

    def describe_actions(self) -> dict[str, dict[str, Any]]:
        """Every action, with input and output numbers limited to the matrix size once it
        is known (configured or read); names stay as they are."""
        return sized(super().describe_actions(), self._inputs, self._outputs)

    def unavailable_reason(self, action: str) -> str:
        return f"{_OPTIONAL_ACTIONS[action]} is off in its config"

    # ---- login ----------------------------------------------------------------------

    async def login(self) -> None:
        """Banner and password (TCP), verbose mode 3, identity, and the size unless configured."""
        if not self.config.transport.is_serial:
            await self._greeting()
        await self._set_verbose()
        await self._read_identity()
        if self._inputs is None or self._outputs is None:
            await self._read_size()
            self.publish_actions()  # the size limits the port numbers of the schemas
        self.update(size={"inputs": self._inputs, "outputs": self._outputs})
        self._polls = [
            (data, _Unchanged(self, match))
            for data, match in self._requests(self._tie_queries() + self._output_queries())
        ]

    async def _greeting(self) -> None:
        first = await self.request(None, self._match_greeting)
        if isinstance(first, Banner):
            self.update(model=first.model, firmware=first.firmware, part_number=first.part)
            prompted = await self._prompted()
        else:
            prompted = True
        if prompted:
            await self._log_in()
        elif self.config.password:
            log.info("%s: switcher asked for no password; the configured one is unused", self.label)

    def _match_greeting(self, frame: bytes) -> Banner | PasswordPrompt | Wait:
        reply = self._parse(frame)
        if isinstance(reply, Banner | PasswordPrompt):
            return reply
        return MORE if reply is None or isinstance(reply, Text) else NOT_MINE

    async def _prompted(self) -> bool:
        """True when a Password: prompt follows the banner (and the date line).

        Units send the prompt right after the banner, so once the line has been quiet
        for `prompt_wait` no prompt is coming; bytes still trickling in (a slow link)
        extend the wait, up to `connect_timeout`.
        """

        def match(frame: bytes) -> bool | Wait:
            reply = self._parse(frame)
            if isinstance(reply, PasswordPrompt):
                return True
            return MORE if reply is None or isinstance(reply, Text) else NOT_MINE

        framer, wait = self._framer, self.config.prompt_wait
        give_up = time.monotonic() + self.config.connect_timeout
        while True:
            now = time.monotonic()
            quiet = now - framer.last_data
            if (quiet >= wait and not framer.pending) or now >= give_up:
                return False
            try:
                return bool(await self.request(None, match, timeout=max(wait - quiet, 0.01)))
            except CommandTimeout:
                continue

    async def _log_in(self) -> None:
        password = self.config.password
        if not password:
            raise AuthError(
                f"{self.label}: the switcher asks for a password and none is configured "
                "(set password: for this device)"
            )

        def match(frame: bytes) -> str | Wait:
            reply = self._parse(frame)
            if isinstance(reply, Login):
                return reply.level
            if isinstance(reply, PasswordPrompt):
                raise AuthError(f"{self.label}: the switcher rejected the password")
            return NOT_MINE

        level = await self.request(password.encode() + CR, match)
        self.update(login=level)

    async def _set_verbose(self) -> None:
        def expect(reply: Reply) -> bool | Wait:
            if isinstance(reply, Verbose) or (isinstance(reply, Text) and reply.text.isdigit()):
                return True
            return NOT_MINE

        try:
            await self.ask(verbose_command(VERBOSE), expect, "set verbose mode 3")
        except ExtronDeviceError as err:
            log.warning("%s: %s; changes show only at the next poll", self.label, err)

    async def _read_identity(self) -> None:
        """Firmware (`Q`) and part number (`N`); on RS-232 this also proves the unit answers."""

        def text(reply: Reply) -> str | Wait:
            return reply.text if isinstance(reply, Text) else NOT_MINE

        try:
            firmware = await self.ask(QUERY_FIRMWARE, text, "read the firmware version")
            part = await self.ask(QUERY_PART, text, "read the part number")
        except ExtronDeviceError as err:
            log.info("%s: %s", self.label, err)
            return
        found = _PART.search(part)
        self.update(firmware=parse_version(firmware), part_number=found.group(0) if found else part)

    async def _read_size(self) -> None:
        def expect(reply: Reply) -> tuple[int, int, bool] | Wait:
            size = parse_size(reply.text) if isinstance(reply, Text) else None
            return NOT_MINE if size is None else size

        try:
            inputs, outputs, audio = await self.ask(QUERY_SIZE, expect, "read the matrix size")
        except ExtronDeviceError as err:
            raise ProtocolError(f"{err}; set inputs: and outputs: for this device") from None
        self._inputs = self.config.inputs or inputs
        self._outputs = self.config.outputs or outputs
        self._audio = self.config.audio and audio

    # ---- requests -------------------------------------------------------------------

    def _parse(self, frame: bytes) -> Reply | None:
        """The reply in a line, junk before it logged; None for a line that is not SIS."""
        try:
            reply, junk = parse_reply(frame)
        except ProtocolError:
            return None
        if junk:
            log.warning("%s: skipped %d junk bytes: %r", self.label, len(junk), junk)
        return reply

    async def ask(self, command: Command, expect: Expect[T], what: str) -> T:
        """Send `command`; the first line `expect` accepts (not NOT_MINE) is the answer.

        Lines it does not accept are change notices and go to `unsolicited`; an `Exx`
        line is the answer too, raised as ExtronDeviceError.
        """
        return await self.request(command.encode(), self._matcher(expect, what))

    async def ask_many(self, queries: Sequence[Query]) -> list[Any]:
        """`ask` each query, all written at once; answers are matched in order.

        An `Exx` answer is raised once every query has its answer.
        """
        return await self.request_many(self._requests(queries))

    def _requests(self, queries: Sequence[Query]) -> list[tuple[bytes, Callable[[bytes], Any]]]:
        return [(c.encode(), self._matcher(e, w)) for c, e, w in queries]

    def _matcher(self, expect: Expect[T], what: str) -> Callable[[bytes], T | Wait]:
        def match(frame: bytes) -> T | Wait:
            reply = self._parse(frame)
            if reply is None:
                return NOT_MINE
            if isinstance(reply, ErrorReply):
                raise ExtronDeviceError(what, reply)
            return expect(reply)

        return match

    # ---- state ----------------------------------------------------------------------

    @property
    def outputs(self) -> range:
        return range(1, (self._outputs or 0) + 1)

    def unsolicited(self, frame: bytes) -> None:
        reply = self._parse(frame)
        if reply is None:
            raise ProtocolError(f"not an SIS line: {frame[:60]!r}")
        if not self._apply(reply):
            log.warning("%s: unexpected line from switcher: %r", self.label, frame)

    def _apply(self, reply: Reply) -> bool:
        """Record what a reply or change notice says; False when it says nothing about state."""
        match reply:
            case Tie(output, input_, kind):
                self._apply_tie([output], input_, kind)
            case TieAll(input_, kind):
                self._apply_tie(self.outputs, input_, kind)
            case QuickTie():
                self.refresh()
            case PresetRecalled(preset):
                self.update(preset=preset)
                self.refresh()
            case PresetSaved(preset):
                log.info("%s: preset %d saved", self.label, preset)
            case VideoMute(output, mute):
                targets = self.outputs if output is None else [output]
                self._apply_flags("video_mutes", targets, mute != 0)
            case AudioMute(output, mute):
                self._apply_flags("mutes", self.outputs if output is None else [output], mute)
            case Volume(output, volume):
                if output in self.outputs:
                    levels = dict(self.state.get("levels") or {})
                    levels[str(output)] = volume_to_db(volume)
                    self.update(levels=levels)
            case Banner():
                log.warning("%s: switcher restarted; setting verbose mode again", self.label)
                self._reinit = True
                self.refresh()
            case _:
                return False
        return True

    def _apply_tie(self, outputs: Iterable[int], input_: int, kind: Kind) -> None:
        targets = [o for o in outputs if o in self.outputs]
        if kind is not Kind.AUDIO:
            self._video.update(dict.fromkeys(targets, input_))
        if kind is not Kind.VIDEO:
            self._audio_ties.update(dict.fromkeys(targets, input_))
        self._publish_ties()

    def _publish_ties(self) -> None:
        video = {str(o): self._video.get(o) or None for o in self.outputs}
        if not self._audio:
            self.update(routes=video)
            return
        audio = {str(o): self._audio_ties.get(o) or None for o in self.outputs}
        self.update(routes=video, video_routes=video, audio_routes=audio)

    def _apply_flags(self, key: str, outputs: Iterable[int], on: bool) -> None:
        flags = dict(self.state.get(key) or {})
        flags.update({str(o): on for o in outputs if o in self.outputs})
        self.update({key: flags})

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        """Ties and output audio/video state every poll_interval; also the keep-alive."""
        keepalive = min(self.config.poll_interval, KEEPALIVE)
        return [PollGroup("status", self._poll, keepalive)]

    def _poll(self) -> Awaitable[object]:
        """The poll's requests, made at login: the same every time (the coroutine itself, not
        one awaiting it)."""
        if self._reinit:
            return self._reinit_and_poll()
        return self.request_many(self._polls)

    async def _reinit_and_poll(self) -> None:
        self._reinit = False
        await self._set_verbose()
        await self.request_many(self._polls)

    async def _read_ties(self) -> None:
        await self.ask_many(self._tie_queries())

    def _tie_queries(self) -> list[Query]:
        """Ties of every output, 16 per `Esc0*<first>*<1|2>VC` request, video then audio.

        Each answer is applied as it is read: a notice that comes after it in the
        stream is newer, and a table applied later must not undo it.
        """
        kinds = [Kind.VIDEO, Kind.AUDIO] if self._audio else [Kind.VIDEO]
        return [
            (table_command(kind, first), self._expect_table(kind, first), f"read {kind} ties")
            for kind in kinds
            for first in range(1, len(self.outputs) + 1, TABLE_WIDTH)
        ]

    def _expect_table(self, kind: Kind, first: int) -> Expect[bool]:
        ties = self._video if kind is Kind.VIDEO else self._audio_ties

        def expect(reply: Reply) -> bool | Wait:
            if not isinstance(reply, TieTable) or reply.kind is not kind:
                return NOT_MINE
            outputs, changed = self.outputs, "routes" not in self.state
            for output, input_ in enumerate(reply.inputs, start=first):
                if input_ is not None and output in outputs and ties.get(output) != input_:
                    ties[output] = input_
                    changed = True
            if changed:
                self._publish_ties()
            return True

        return expect

    def _output_queries(self) -> list[Query]:
        """Volume of each output (HVA models) and the mute table, each applied as it is read."""
        cfg = self.config
        queries: list[Query] = []
        if cfg.volume:
            queries += [
                (Command(str(o), "V"), self._expect_volume(o), f"read output {o} volume")
                for o in self.outputs
            ]
        if cfg.audio_mute or cfg.video_mute:
            queries.append((VIEW_MUTES, self._expect_mutes, "read the output mutes"))
        return queries

    def _expect_volume(self, output: int) -> Expect[bool]:
        def expect(reply: Reply) -> bool | Wait:
            if isinstance(reply, Volume) and reply.output == output:
                volume = reply.volume
            elif isinstance(reply, Text) and reply.text.isdigit():
                volume = int(reply.text)
            else:
                return NOT_MINE
            self._apply(Volume(output, volume))
            return True

        return expect

    def _expect_mutes(self, reply: Reply) -> bool | Wait:
        text = reply.text if isinstance(reply, Text) else ""
        table = parse_mute_table(text)
        if table is None:
            return NOT_MINE
        cfg = self.config
        state = {o: table[o - 1] if o <= len(table) else 0 for o in self.outputs}
        if cfg.audio_mute:
            self.update(mutes={str(o): bool(m & 2) for o, m in state.items()})
        if cfg.video_mute:
            self.update(video_mutes={str(o): bool(m & 1) for o, m in state.items()})
        return True

    # ---- actions --------------------------------------------------------------------

    def _check(self, number: int, limit: int | None, what: str) -> None:
        if limit is not None and number > limit:
            raise CommandError(
                ErrorCode.INVALID_ARGS, f"no {what} {number}: this switcher has {limit} {what}s"
            )

    def _port(self, kind: PortKind, ref: int | str) -> int:
        """An input or output given by number or configured name, checked against the size."""
        try:
            number = self.config.port(kind, ref)
        except ValueError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, str(err)) from None
        self._check(number, self._inputs if kind == "input" else self._outputs, kind)
        return number

    def _output_of(self, control: str) -> int:
        output = self._port("output", control)
        if output < 1:
            raise CommandError(ErrorCode.INVALID_ARGS, f"control {control!r} is not an output")
        return output

    @action(
        Route,
        coalesce=lambda a: ("route", a.output, a.kind),
        description="tie an input to an output (or every output); input 0 unties",
    )
    async def route(self, args: Route) -> None:
        input_ = self._port("input", args.input or 0)
        output = None if args.output is None else self._output_of(str(args.output))
        if args.kind is Kind.AUDIO and not self._audio:
            raise CommandError(
                ErrorCode.INVALID_ARGS, f"{self.device_id} does not switch audio separately"
            )
        expect: Expect[Tie | TieAll]
        if output is None:
            expect = answer(TieAll, input=input_)
        else:
            expect = answer(Tie, output=output, input=input_)
        where = "every output" if output is None else f"output {output}"
        command = tie_command(input_, output, args.kind)
        self._apply(await self.ask(command, expect, f"tie input {input_} to {where}"))

    @action(SetLevel, coalesce=lambda a: ("level", a.control), description="output volume in dB")
    async def set_level(self, args: SetLevel) -> None:
        output = self._output_of(args.control)
        command = Command(f"{output}*{db_to_volume(args.level)}", "V")
        expect = answer(Volume, output=output)
        self._apply(await self.ask(command, expect, f"set output {output} volume"))

    @action(SetMute, coalesce=lambda a: ("mute", a.control), description="output audio mute")
    async def set_mute(self, args: SetMute) -> None:
        output = self._output_of(args.control)
        command = mute_command(output, int(args.mute), "Z")
        expect = answer(AudioMute, output=output)
        self._apply(await self.ask(command, expect, f"mute output {output} audio"))

    @action(
        SetVideoMute,
        coalesce=lambda a: ("video_mute", a.output),
        description="video mute one output, or every output when output is omitted",
    )
    async def set_video_mute(self, args: SetVideoMute) -> None:
        output = None if args.output is None else self._output_of(str(args.output))
        command = mute_command(output, int(args.mute), "B")
        where = "every output" if output is None else f"output {output}"
        expect = answer(VideoMute, output=output)
        self._apply(await self.ask(command, expect, f"video mute {where}"))

    @action(Preset, description="recall a global preset (its ties)")
    async def recall_preset(self, args: Preset) -> None:
        command = Command(str(args.preset), ".")
        expect = answer(PresetRecalled, preset=args.preset)
        await self.ask(command, expect, f"recall preset {args.preset}")
        self.update(preset=args.preset)
        await self._read_ties()

    @action(Preset, description="save the current ties as a global preset")
    async def save_preset(self, args: Preset) -> None:
        command = Command(str(args.preset), ",")
        expect = answer(PresetSaved, preset=args.preset)
        await self.ask(command, expect, f"save preset {args.preset}")


class _Unchanged:
    """A poll request's matcher that knows the line it applied last.

    Until something changes the driver's state, that line again would change nothing:
    it is claimed as the answer without being parsed, so a poll that finds the
    switcher as it was costs a comparison per answer. Every poll matcher answers
    True once it has applied its line.
    """

    __slots__ = ("_driver", "_line", "_match", "_version")

    def __init__(self, driver: ExtronSisDriver, match: Callable[[bytes], Any]) -> None:
        self._driver = driver
        self._match = match
        self._line: bytes | None = None
        self._version = -1  # the driver's state_version once the line was applied

    def __call__(self, frame: bytes) -> Any:
        if frame == self._line and self._version == self._driver.state_version:
            return True
        result = self._match(frame)
        if result is True:
            self._line, self._version = frame, self._driver.state_version
        return result


_SIZED: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}


def sized(
    schemas: dict[str, dict[str, Any]], inputs: int | None, outputs: int | None
) -> dict[str, dict[str, Any]]:
    """`schemas` with input and output numbers at most `inputs`/`outputs` (shared per size).

    An unknown size (not configured, not read yet) leaves SIS's own limit, MAX_PORTS.
    """
    if inputs is None or outputs is None:
        return schemas
    found = _SIZED.get((inputs, outputs))
    if found is None:
        found = copy.deepcopy(schemas)
        _limit(found["route"], "input", inputs)
        _limit(found["route"], "output", outputs)
        _limit(found["set_video_mute"], "output", outputs)
        _SIZED[inputs, outputs] = found
    return found


def _limit(schema: dict[str, Any], name: str, maximum: int) -> None:
    """Set the maximum of an integer (or integer-or-null) property of an action schema."""
    prop = schema["properties"][name]
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "integer":
            branch["maximum"] = maximum


def answer(kind: type[T], **fields: object) -> Expect[T]:
    """An `expect` for `ask`: the reply of this type whose fields have these values."""

    def expect(reply: Reply) -> T | Wait:
        if isinstance(reply, kind) and all(getattr(reply, k) == v for k, v in fields.items()):
            return reply
        return NOT_MINE

    return expect
