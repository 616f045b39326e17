"""Biamp Tesira DSP driver: Tesira Text Protocol over Telnet."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar

from pydantic import Field, NonNegativeInt, StringConstraints, ValidationInfo, field_validator

from drivers.actions import Args, action, config_in
from drivers.base import MORE, NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import CommandError, ConnectionClosed, DeviceError, ErrorCode, ProtocolError
from drivers.tesira.codec import (
    Arg,
    Err,
    ErrorKind,
    Ok,
    Other,
    Publish,
    Value,
    encode_command,
    parse_line,
    reply_framer,
)
from drivers.tesira.config import ControlConfig, Kind, Point, TesiraConfig
from drivers.transport.telnet import TelnetFramer

log = logging.getLogger("avhub.driver.tesira")

LEVEL_DECIMALS = 3  # levels are float32 on the device: -98.1 comes back as -98.099998

_ERROR_CODES = {
    ErrorKind.INVALID_PARAMETER: ErrorCode.INVALID_ARGS,
    ErrorKind.WRONG_STATE: ErrorCode.BUSY,
}


class TesiraDeviceError(DeviceError):
    """The Tesira answered an error line."""

    def __init__(self, message: str, kind: ErrorKind) -> None:
        super().__init__(_ERROR_CODES.get(kind, ErrorCode.DEVICE_ERROR), message)
        self.kind = kind


class _Control(Args):
    """Arguments naming a control; checked against the device config when it is given."""

    kind: ClassVar[Kind] = "level"
    control: str = Field(description="control name from the device config")

    @field_validator("control")
    @classmethod
    def _known(cls, control: str, info: ValidationInfo) -> str:
        config = config_in(info)
        if isinstance(config, TesiraConfig):
            config.point(control, cls.kind)
        return control


class SetLevel(_Control):
    level: float = Field(allow_inf_nan=False, description="level in dB")


class StepLevel(_Control):
    step: float = Field(allow_inf_nan=False, description="dB to add (negative: lower)")


class SetMute(_Control):
    kind: ClassVar[Kind] = "mute"
    mute: bool


class ToggleMute(_Control):
    kind: ClassVar[Kind] = "mute"


PresetName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
]


class RecallPreset(Args):
    preset: NonNegativeInt | PresetName = Field(
        description="preset number (e.g. 1001) or preset name"
    )


class TesiraDriver(Driver[TesiraConfig, bytes]):
    """A Tesira server: levels and mutes of configured blocks, kept current by subscriptions.

    Every (re)connect answers the Telnet negotiation (refusing every option), waits
    for the welcome banner and subscribes to each control with a stable publish
    token; publish lines update state wherever they arrive. A periodic `get` of every
    control is the safety net for a lost push, and notices a silent device. The server
    answers in the order it was asked, so the subscriptions, and the gets of a control,
    go out together.
    """

    name = "tesira"
    persistent = True
    pipelined = True

    def __init__(self, device_id: str, config: TesiraConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(device_id, config, *args, **kwargs)
        self._points = config.points()
        self._tokens = {p.token: p for p in self._points}
        self._faults: dict[Point, str] = {}
        if config.presets:  # names beside the numbers, for panels and macros
            self.state["presets"] = {str(n): name for n, name in sorted(config.presets.items())}
        self.state.update(  # the initial snapshot already shows which controls exist
            controls={name: _describe(c) for name, c in config.controls.items()},
            levels={p.control: None for p in self._points if p.kind == "level"},
            mutes={p.control: None for p in self._points if p.kind == "mute"},
            control_errors={},
        )

    def create_framer(self) -> TelnetFramer[bytes]:
        return reply_framer(self._answer_telnet)  # refuses every option

    def _answer_telnet(self, answer: bytes) -> None:
        """Send the refusals: without answers the banner never comes."""
        log.debug("%s: telnet answer %s", self.label, answer.hex(" "))
        with contextlib.suppress(ConnectionClosed):  # gone: the next connection negotiates afresh
            self.send(answer)

    async def login(self) -> None:
        """Wait for the banner, then subscribe to every control (subscriptions die with the session)."""
        await self.request(None, self._match_banner)
        rate_ms = round(self.config.subscribe_rate * 1000)
        subscribe = [
            self._query(
                point,
                (point.tag, "subscribe", point.kind, point.channel, point.token, rate_ms),
                ignore=ErrorKind.ALREADY_SUBSCRIBED,
            )
            for point in self._points
        ]
        await self.request_many(subscribe)

    def _match_banner(self, frame: bytes) -> bool | Wait:
        try:
            message = parse_line(frame)
        except ProtocolError:
            return NOT_MINE
        if isinstance(message, Publish):
            self._apply(message)
            return MORE
        return True if isinstance(message, Other) and message.is_banner else NOT_MINE

    def unsolicited(self, frame: bytes) -> None:
        message = parse_line(frame)  # a ProtocolError is logged by the base
        if isinstance(message, Publish):
            self._apply(message)
        elif isinstance(message, Other) and (message.is_banner or not message.text):
            log.debug("%s: %r", self.label, message.text)
        else:
            log.warning("%s: unexpected line from the Tesira: %r", self.label, frame[:200])

    # ---- requests -----------------------------------------------------------------

    async def ask(
        self, point: Point | None, *parts: Arg, on_reply: Callable[[Ok], None] | None = None
    ) -> Ok:
        """Send one command; return its `+OK`. Publish lines before it are applied, an echo skipped.

        `on_reply` runs as the reply is read, in stream order: a value applied after the
        await could undo a publish that arrived in the same read, right behind it.
        """
        data = encode_command(*parts)
        return await self.request(data, self._matcher(data, point, on_reply))

    def _matcher(
        self, data: bytes, point: Point | None, on_reply: Callable[[Ok], None] | None
    ) -> Callable[[bytes], Ok | Wait]:
        sent = data.decode().strip()

        def match(frame: bytes) -> Ok | Wait:
            try:
                message = parse_line(frame)
            except ProtocolError:
                if frame.lstrip().startswith(b"+OK"):
                    raise  # this is the reply, and it is broken
                return NOT_MINE
            if isinstance(message, Publish):
                self._apply(message)
                return MORE
            if isinstance(message, Ok):
                if on_reply is not None:
                    on_reply(message)
                return message
            if isinstance(message, Err):
                raise self._error(sent, point, message)
            return MORE if message.text == sent else NOT_MINE

        return match

    def _query(
        self,
        point: Point,
        parts: tuple[Arg, ...],
        on_reply: Callable[[Ok], None] | None = None,
        ignore: ErrorKind | None = None,
    ) -> tuple[bytes, Callable[[bytes], bool | Wait]]:
        """A request about `point` for `request_many`: its fault (or recovery) is recorded
        as the answer is read, not raised; an error of kind `ignore` changes nothing."""
        data = encode_command(*parts)
        match = self._matcher(data, point, on_reply)

        def tracked(frame: bytes) -> bool | Wait:
            try:
                result = match(frame)
            except TesiraDeviceError as err:
                if err.kind is not ignore:
                    self._fault(point, str(err))
                return False
            if isinstance(result, Wait):
                return result
            self._fault(point, None)
            return True

        return data, tracked

    def _error(self, sent: str, point: Point | None, err: Err) -> TesiraDeviceError:
        kind = err.kind
        said = f"(Tesira said: -{err.text})"
        if point is not None and kind is ErrorKind.ADDRESS_NOT_FOUND:
            text = (
                f"{point.control}: the Tesira has no block with instance tag {point.tag!r}; "
                f"check the tag in the design and the config {said}"
            )
        elif point is not None and kind is ErrorKind.NOT_SUPPORTED:
            text = (
                f"{point.control}: block {point.tag!r} has no {point.kind!r} attribute; "
                f"is it the right block type? {said}"
            )
        else:
            text = f"{sent!r} failed {said}"
        return TesiraDeviceError(text, kind)

    async def _get(self, point: Point) -> None:
        await self.ask(
            point,
            *(point.tag, "get", point.kind, point.channel),
            on_reply=partial(self._store_reply, point),
        )

    def _store_reply(self, point: Point, reply: Ok) -> None:
        self._store(point, reply.value)

    def _apply(self, publish: Publish) -> None:
        """Apply a publish line; a bad one is logged, never raised into a reply matcher."""
        point = self._tokens.get(publish.token)
        if point is None:
            log.debug("%s: publish for unknown token %r", self.label, publish.token)
            return
        try:
            self._store(point, publish.value)
        except ProtocolError as err:
            log.warning("%s: skipped bad publish line: %s", self.label, err)

    def _store(self, point: Point, value: Value) -> None:
        key = "levels" if point.kind == "level" else "mutes"
        self.update({key: {**self.state[key], point.control: _parse(point, value)}})

    def _fault(self, point: Point, message: str | None) -> None:
        """Remember (or forget) a control the device refuses; published as `control_errors`."""
        if message is None:
            if self._faults.pop(point, None) is not None:
                log.warning("%s: %s %s works again", self.label, point.control, point.kind)
        elif self._faults.get(point) != message:
            log.warning("%s: %s", self.label, message)
            self._faults[point] = message
        texts: dict[str, dict[str, None]] = {}  # per control, each message once, in order
        for p, text in self._faults.items():
            texts.setdefault(p.control, {})[text] = None
        self.update(control_errors={c: "; ".join(found) for c, found in texts.items()})

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        """One group per control: the gets spread over the interval instead of coming in a burst."""
        interval = self.config.poll_interval
        groups = [
            PollGroup(f"control:{name}", partial(self._poll, name), interval)
            for name in self.config.controls
        ]
        if not groups:  # still notice a silent device
            groups.append(PollGroup("aliases", self._poll_aliases, interval))
        return groups

    async def _poll(self, name: str) -> None:
        gets = [
            self._query(
                point,
                (point.tag, "get", point.kind, point.channel),
                on_reply=partial(self._store_reply, point),
            )
            for point in self._points
            if point.control == name
        ]
        await self.request_many(gets)

    async def _poll_aliases(self) -> None:
        reply = await self.ask(None, "SESSION", "get", "aliases")
        aliases = reply.fields.get("list", reply.value)
        if isinstance(aliases, list):
            self.update(aliases=[str(a) for a in aliases])

    # ---- actions --------------------------------------------------------------------

    def _point(self, control: str, kind: Kind) -> Point:
        try:
            return self.config.point(control, kind)
        except ValueError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, str(err)) from None

    def _check_range(self, control: str, level: float) -> None:
        cfg: ControlConfig = self.config.controls[control]
        if (cfg.min is not None and level < cfg.min) or (cfg.max is not None and level > cfg.max):
            raise CommandError(
                ErrorCode.INVALID_ARGS,
                f"{control}: {level} dB is outside {cfg.min} … {cfg.max} dB",
            )

    @action(SetLevel, coalesce=lambda a: ("level", a.control), description="set a level (dB)")
    async def set_level(self, args: SetLevel) -> None:
        point = self._point(args.control, "level")
        self._check_range(args.control, args.level)
        await self.ask(point, point.tag, "set", "level", point.channel, args.level)
        await self._get(point)

    @action(StepLevel, description="raise or lower a level by `step` dB", repeat=False)
    async def step_level(self, args: StepLevel) -> None:
        point = self._point(args.control, "level")
        cfg = self.config.controls[args.control]
        current = self.state["levels"].get(args.control)
        limit = None  # stop at a configured limit rather than step past it
        if current is not None and cfg.max is not None and current + args.step > cfg.max:
            limit = cfg.max
        elif current is not None and cfg.min is not None and current + args.step < cfg.min:
            limit = cfg.min
        if limit is not None:
            await self.ask(point, point.tag, "set", "level", point.channel, limit)
        elif args.step:
            verb = "increment" if args.step > 0 else "decrement"
            await self.ask(point, point.tag, verb, "level", point.channel, abs(args.step))
        await self._get(point)

    @action(SetMute, coalesce=lambda a: ("mute", a.control), description="mute or unmute")
    async def set_mute(self, args: SetMute) -> None:
        point = self._point(args.control, "mute")
        await self.ask(point, point.tag, "set", "mute", point.channel, args.mute)
        await self._get(point)

    @action(ToggleMute, description="flip a mute", repeat=False)
    async def toggle_mute(self, args: ToggleMute) -> None:
        point = self._point(args.control, "mute")
        await self.ask(point, point.tag, "toggle", "mute", point.channel)
        await self._get(point)

    @action(RecallPreset, description="recall a preset by number or name")
    async def recall_preset(self, args: RecallPreset) -> None:
        preset = self.config.preset_number(args.preset)
        if isinstance(preset, str) and preset.strip().isdigit():
            preset = int(preset)
        if isinstance(preset, int):
            await self.ask(None, "DEVICE", "recallPreset", preset)
        else:
            await self.ask(None, "DEVICE", "recallPresetByName", preset)
        self.update(preset=preset)


def _parse(point: Point, value: Value) -> float | bool:
    if point.kind == "mute":
        if isinstance(value, bool):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), LEVEL_DECIMALS)
    raise ProtocolError(f"{point.tag} {point.kind} {point.channel}: bad value {value!r}")


def _describe(control: ControlConfig) -> dict[str, Any]:
    """What a panel needs to draw a control."""
    described: dict[str, Any] = {
        "level": control.type == "level",
        "mute": control.type == "mute" or control.mute,
        "min": control.min,
        "max": control.max,
    }
    if control.label is not None:
        described["label"] = control.label
    return described
