"""Biamp Tesira simulator: Telnet negotiation, banner, Level/Mute blocks, subscriptions.

Follows protocols/tesira-ttp.md §7; the `-ERR` texts marked [U] there are plausible
guesses, kept in one place each below.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.errors import ProtocolError
from drivers.tesira.codec import (
    BANNER,
    LINE_ENDS,
    OK,
    PORT,
    TERMINATORS,
    Token,
    Value,
    encode_publish,
    encode_value_reply,
    format_value,
    tokenize,
)
from drivers.tesira.config import TAG_PATTERN, TesiraConfig
from drivers.transport.framing import Framer
from drivers.transport.telnet import Negotiation, TelnetFramer, Verb
from simulators.base import Knobs, Session, Simulator, Writer

log = logging.getLogger(__name__)

VERBS = ("get", "set", "increment", "decrement", "toggle", "subscribe", "unsubscribe")
SERVICES = ("SESSION", "DEVICE")
INLINE_REQUEST = Negotiation(Verb.DO, 24)  # spliced into replies by iac_in_replies
_ASKING = (Verb.DO, Verb.WILL)  # requests that want an answer; DONT/WONT need none
ADDRESS_NOT_FOUND = '-ERR address not found: {"deviceId":0 "classCode":0 "instanceNum":0}'
GENERAL_FAILURE = "-GENERAL_FAILURE"  # the catch-all error line; the device error


class BlockKnob(BaseModel):
    """One block of the simulated design."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["level", "mute"] = Field("level", description="level (level + mute) or mute")
    channels: int = Field(1, ge=1, le=1024)
    min: float = Field(-100.0, ge=-1000, le=1000, description="minLevel of every channel")
    max: float = Field(12.0, ge=-1000, le=1000, description="maxLevel of every channel")
    level: float = Field(0.0, description="level of every channel at start")
    mute: bool = Field(False, description="mute of every channel at start")

    @model_validator(mode="after")
    def _range(self) -> BlockKnob:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if not self.min <= self.level <= self.max:
            raise ValueError(f"level {self.level} is outside {self.min} … {self.max}")
        return self


class PresetKnob(BaseModel):
    """What recalling a preset changes; keys are `<tag>/<channel>`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    levels: dict[str, float] = Field(default_factory=dict)
    mutes: dict[str, bool] = Field(default_factory=dict)


def _default_blocks() -> dict[str, Any]:
    return {"Level1": {"channels": 4}, "Mute1": {"type": "mute", "channels": 4}}


class TesiraKnobs(Knobs):
    """Tesira knobs. `blocks` and `presets` describe the design at start."""

    blocks: dict[str, BlockKnob] = Field(
        default_factory=_default_blocks,
        validate_default=True,
        description='instance tag → block, e.g. {"Level1": {"channels": 2, "min": -60}}',
    )
    presets: dict[int, PresetKnob] = Field(
        default_factory=dict,
        description='preset id → changes, e.g. {"1001": {"levels": {"Level1/1": -20}}}',
    )
    negotiation: list[str] = Field(
        default_factory=lambda: ["DO 24", "DO 32", "DO 35", "DO 39", "WILL 1", "WILL 3"],
        description="Telnet requests sent on connect, e.g. DO 24,WILL 1",
    )
    strict_negotiation: bool = Field(
        True, description="never send the banner until every request is answered"
    )
    negotiation_timeout: Duration = Field(
        1.0, gt=0, description="--no-strict-negotiation: banner after this even if unanswered"
    )
    banner_delay: Duration = Field(0.0, description="wait this long before the banner")
    line_ending: Literal["crlf", "crnul"] = Field("crlf", description="end lines CR LF or CR NUL")
    echo: bool = Field(False, description="echo each command line before its reply")
    interleave: bool = Field(
        False,
        description="hold publish lines until the next command, then send them between "
        "that command and its reply",
    )
    iac_in_replies: bool = Field(
        False, description="splice IAC DO 24 into the middle of every reply line"
    )
    out_of_range: Literal["error", "clamp"] = Field(
        "error", description="set beyond min/max: -ERR, or clamp to the limit"
    )
    error_tags: dict[str, str] = Field(
        default_factory=dict,
        description='answer every command for a tag with this line, e.g. {"Level2": "-ERR WRONG_STATE"}',
    )
    max_clients: int | None = Field(
        32, ge=1, description="close extra connections at once (Tesira: 32 Telnet sessions)"
    )

    @field_validator("negotiation")
    @classmethod
    def _requests(cls, value: list[str]) -> list[str]:
        for spec in value:
            Negotiation.parse(spec)
        return value

    @field_validator("blocks")
    @classmethod
    def _tags(cls, value: dict[str, BlockKnob]) -> dict[str, BlockKnob]:
        for tag in value:
            if not re.match(TAG_PATTERN, tag) or tag in SERVICES:
                raise ValueError(f"{tag!r} cannot be an instance tag")
        return value

    @model_validator(mode="after")
    def _preset_targets(self) -> TesiraKnobs:
        for preset, knob in self.presets.items():
            for target in (*knob.levels, *knob.mutes):
                tag, _, channel = target.rpartition("/")
                block = self.blocks.get(tag)
                if (
                    block is None
                    or not channel.isdigit()
                    or not 1 <= int(channel) <= block.channels
                ):
                    raise ValueError(
                        f"preset {preset}: {target!r} is not <tag>/<channel> of a block"
                    )
            if any(self.blocks[t.rpartition("/")[0]].type != "level" for t in knob.levels):
                raise ValueError(f"preset {preset}: levels only exist on level blocks")
        return self


def _f32(value: float) -> float:
    """The device keeps levels as float32: -98.1 reads back as -98.099998."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


@dataclass(frozen=True, slots=True)
class _Attr:
    kind: Literal["number", "bool", "int"]
    indexed: bool
    writable: bool


_ATTRIBUTES: dict[str, dict[str, _Attr]] = {
    "level": {
        "level": _Attr("number", True, True),
        "mute": _Attr("bool", True, True),
        "minLevel": _Attr("number", True, False),
        "maxLevel": _Attr("number", True, False),
        "numChannels": _Attr("int", False, False),
    },
    "mute": {
        "mute": _Attr("bool", True, True),
        "numChannels": _Attr("int", False, False),
    },
}
_CLASS_NAMES = {"level": "LevelControl", "mute": "MuteControl"}


class _Block:
    def __init__(self, knob: BlockKnob) -> None:
        self.type = knob.type
        self.channels = knob.channels
        self.min = _f32(knob.min)
        self.max = _f32(knob.max)
        self.levels = [_f32(knob.level)] * knob.channels
        self.mutes = [knob.mute] * knob.channels

    def read(self, attribute: str, index: int) -> Value:
        if attribute == "level":
            return self.levels[index - 1]
        if attribute == "mute":
            return self.mutes[index - 1]
        if attribute == "minLevel":
            return self.min
        if attribute == "maxLevel":
            return self.max
        return self.channels


SubKey = tuple[str, str, int, str]  # tag, attribute, index, label


@dataclass(eq=False)
class _Subscription:
    key: SubKey
    rate: float
    verbose: bool
    last_sent: float = -math.inf
    timer: asyncio.TimerHandle | None = None
    held: bool = False


@dataclass(eq=False)
class _Client:
    """Per-session protocol state."""

    pending: Counter[Negotiation] = field(default_factory=Counter)  # our unanswered requests
    banner_due: bool = False
    welcomed: bool = False
    verbose: bool = True
    subscriptions: dict[SubKey, _Subscription] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class _Reject(Exception):
    """Ends a command with one error line."""


class TesiraSimulator(Simulator[TesiraKnobs]):
    """A Tesira server with Level and Mute blocks; see TesiraKnobs for the faults it can play.

    Its device error is `-GENERAL_FAILURE`. TTP on Telnet has no login, so there is no
    authentication fault.
    """

    kind = "tesira"
    knobs_model = TesiraKnobs
    default_port = PORT
    terminators = TERMINATORS  # LF or CR ends a command; a NUL (Telnet CR NUL) is skipped
    line_end = b"\r\n"

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """Blocks for every configured control, so `--simulate` serves the tags the hub uses."""
        if not isinstance(device, TesiraConfig):
            return {}
        blocks: dict[str, dict[str, Any]] = {}
        for name, control in device.controls.items():
            for point in control.points(name):
                level_block = point.kind == "level" or (
                    point.tag == control.tag and control.type == "level"
                )
                block = blocks.setdefault(point.tag, {"type": "mute", "channels": 1})
                block["channels"] = max(block["channels"], point.channel)
                if level_block:
                    block["type"] = "level"
                if point.kind == "level":
                    block["min"] = min(block.get("min", -100.0), control.min or -100.0)
                    block["max"] = max(block.get("max", 12.0), control.max or 12.0)
        return {"blocks": blocks}

    def __init__(self, knobs: TesiraKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # "<tag> <verb> <attribute>" → count
        self._clients: dict[Session, _Client] = {}
        self.reset_state()

    def reset_state(self) -> None:
        """Every block's levels and mutes as the knobs set them at start."""
        self._blocks = {tag: _Block(knob) for tag, knob in self.knobs.blocks.items()}

    # -- front panel (tests; not over the network) ------------------------------

    def level(self, tag: str, channel: int) -> float:
        return self._channel(tag, channel, "level").levels[channel - 1]

    def mute(self, tag: str, channel: int) -> bool:
        return self._channel(tag, channel, "mute").mutes[channel - 1]

    def set_level(self, tag: str, channel: int, value: float) -> None:
        """Move a fader; ValueError outside the block's range. Subscribers are told."""
        block = self._channel(tag, channel, "level")
        if not block.min <= value <= block.max:
            raise ValueError(f"{value} is outside {block.min} … {block.max}")
        self._write(tag, "level", channel, _f32(value))

    def set_mute(self, tag: str, channel: int, mute: bool) -> None:
        self._channel(tag, channel, "mute")
        self._write(tag, "mute", channel, mute)

    def recall_preset(self, preset: int | str) -> None:
        """Apply a preset by id or name; ValueError when there is none."""
        for number, knob in self.knobs.presets.items():
            if preset in (number, knob.name):
                for target, level in knob.levels.items():
                    tag, _, channel = target.rpartition("/")
                    self._write(tag, "level", int(channel), _f32(level))
                for target, mute in knob.mutes.items():
                    tag, _, channel = target.rpartition("/")
                    self._write(tag, "mute", int(channel), mute)
                return
        raise ValueError(f"no preset {preset!r}")

    def renegotiate(self, *specs: str) -> None:
        """Send Telnet requests (e.g. "DO 24") to every session mid-stream."""
        requests = [Negotiation.parse(s) for s in specs]
        for session, client in self._clients.items():
            client.pending.update(r for r in requests if r.verb in _ASKING)
            session.push(b"".join(r.encode() for r in requests))

    def unanswered(self) -> int:
        """Telnet requests sent to clients and not answered yet."""
        return sum(c.pending.total() for c in self._clients.values())

    def subscriptions(self) -> int:
        return sum(len(c.subscriptions) for c in self._clients.values())

    def welcomed(self) -> int:
        """Sessions that got the banner."""
        return sum(c.welcomed for c in self._clients.values())

    def _channel(self, tag: str, channel: int, attribute: str) -> _Block:
        block = self._blocks.get(tag)
        if block is None or attribute not in _ATTRIBUTES[block.type]:
            raise ValueError(f"no {attribute} block {tag!r}")
        if not 1 <= channel <= block.channels:
            raise ValueError(f"{tag} has channels 1-{block.channels}, not {channel}")
        return block

    # -- sessions --------------------------------------------------------------

    def open_session(
        self, writer: Writer, peer: str, framer: Framer[bytes] | None = None
    ) -> Session | None:
        """Telnet commands are stripped from every client's stream; negotiations come here."""
        telnet = TelnetFramer(framer if framer is not None else self.make_framer())
        session = super().open_session(writer, peer, telnet)
        if session is not None:  # before any byte arrives: a client may negotiate first
            self._clients[session] = _Client()
            telnet.on_negotiation = partial(self._negotiated, session)
        return session

    async def session_started(self, session: Session) -> None:
        client = self._clients[session]
        requests = [Negotiation.parse(s) for s in self.knobs.negotiation]
        client.pending.update(r for r in requests if r.verb in _ASKING)  # before answers can come
        if requests:
            await session.send(b"".join(r.encode() for r in requests))
        if not client.pending:
            self._greet(session, client)
            return
        if not self.knobs.strict_negotiation:
            loop = asyncio.get_running_loop()
            timeout = self.knobs.negotiation_timeout
            client.timer = loop.call_later(timeout, self._greet, session, client)

    def session_ended(self, session: Session) -> None:
        """Subscriptions are per session: gone with it."""
        client = self._clients.pop(session, None)
        if client is None:
            return
        if client.timer is not None:
            client.timer.cancel()
        for sub in client.subscriptions.values():
            if sub.timer is not None:
                sub.timer.cancel()

    def _negotiated(self, session: Session, message: Negotiation) -> None:
        client = self._clients.get(session)
        if client is None:
            return
        request = next((r for r in client.pending if message.answers(r)), None)
        if request is None:
            refusal = message.refusal()
            if refusal is not None:
                session.push(refusal.encode())
            return
        client.pending[request] -= 1
        if client.pending[request] <= 0:
            del client.pending[request]
        if not client.pending:
            self._greet(session, client)

    def _greet(self, session: Session, client: _Client) -> None:
        """Send the banner (once), after banner_delay."""
        if client.banner_due:
            return
        client.banner_due = True
        if client.timer is not None:
            client.timer.cancel()
        delay = self.knobs.banner_delay
        if delay > 0:
            client.timer = asyncio.get_running_loop().call_later(delay, self._banner, session)
        else:
            self._banner(session)

    def _banner(self, session: Session) -> None:
        client = self._clients.get(session)
        if client is None:
            return
        client.welcomed = True
        eol = self._eol()
        session.push(eol + BANNER.encode() + eol)

    def _eol(self) -> bytes:
        return LINE_ENDS[self.knobs.line_ending]

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        client = self._clients.get(session)
        text = frame.decode("utf-8", "replace").strip()
        if client is None or not text:
            return
        if not client.welcomed:
            log.info("%s: ignoring %r before the banner", session, text[:60])
            return
        if self.knobs.echo:
            await session.send(text.encode() + self._eol())
        if self.knobs.interleave:
            await self._flush_held(session, client)
        try:
            lines = self._execute(client, text)
        except _Reject as err:
            lines = [str(err)]
        for line in lines:
            await session.send(self._reply(client, line))

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """`-GENERAL_FAILURE` for any command line once the banner was sent."""
        client = self._clients.get(session)
        text = frame.decode("utf-8", "replace").strip()
        if client is None or not client.welcomed or not text:
            return False
        await session.send(self._reply(client, GENERAL_FAILURE))
        return True

    def _reply(self, client: _Client, line: str) -> bytes:
        data = line.encode()
        if self.knobs.iac_in_replies and line[:1] in "+-":
            middle = len(data) // 2
            data = data[:middle] + INLINE_REQUEST.encode() + data[middle:]
            client.pending[INLINE_REQUEST] += 1
        return data + self._eol()

    # -- commands ---------------------------------------------------------------

    def _execute(self, client: _Client, text: str) -> list[str]:
        try:
            tokens = tokenize(text)
        except ProtocolError:
            raise _Reject(f"-ERR Parse error at {len(text)}: unterminated quoted string") from None
        tag = tokens[0].text
        attribute = tokens[2].text if len(tokens) > 2 else ""
        self.received[f"{tag} {tokens[1].text if len(tokens) > 1 else ''} {attribute}".strip()] += 1
        if tag in self.knobs.error_tags:
            return [self.knobs.error_tags[tag]]
        if tag == "SESSION":
            return self._session_service(client, tokens, len(text))
        if tag == "DEVICE":
            return self._device_service(tokens, len(text))
        block = self._blocks.get(tag)
        if block is None:
            return [ADDRESS_NOT_FOUND]
        if len(tokens) < 3:
            raise _Reject(f"-ERR Parse error at {len(text)}: not enough parameters supplied")
        verb = tokens[1]
        if verb.text not in VERBS:
            raise _Reject(
                f"-ERR Parse error at {verb.start}: verb was not one of the commands supported "
                f"by {_CLASS_NAMES[block.type]}"
            )
        spec = _ATTRIBUTES[block.type].get(attribute)
        if spec is None:
            raise _Reject(
                f"-ERR '{attribute}' is not supported by {_CLASS_NAMES[block.type]}::Attributes"
            )
        args = tokens[3:]
        index = 0
        if spec.indexed:
            if not args:
                raise _Reject(f"-ERR Parse error at {len(text)}: not enough parameters supplied")
            index = self._index(block, args.pop(0))
        if verb.text in ("subscribe", "unsubscribe"):
            return self._subscription(client, verb.text, (tag, attribute, index), args)
        if verb.text == "get":
            return [encode_value_reply(block.read(attribute, index), verbose=client.verbose)]
        if not spec.writable:
            raise _Reject(f"-ERR INVALID_PARAMETER '{attribute}' is read-only")
        value = self._new_value(block, attribute, spec, verb, index, args, len(text))
        self._write(tag, attribute, index, value)
        return [OK]

    def _index(self, block: _Block, token: Token) -> int:
        try:
            index = int(token.text)
        except ValueError:
            raise _Reject(f"-ERR Parse error at {token.start}: could not parse value") from None
        if not 1 <= index <= block.channels:
            raise _Reject(
                "-ERR INVALID_PARAMETER Index out of range:channelIndex "
                f"min:1 max:{block.channels} received:{index}"
            )
        return index

    def _new_value(
        self,
        block: _Block,
        attribute: str,
        spec: _Attr,
        verb_token: Token,
        index: int,
        args: list[Token],
        end: int,
    ) -> Value:
        verb = verb_token.text
        current = block.read(attribute, index)
        if verb == "toggle" and spec.kind == "bool":
            return not current
        if verb not in ("set", "increment", "decrement") or (
            verb != "set" and spec.kind != "number"
        ):
            raise _Reject(
                f"-ERR Parse error at {verb_token.start}: '{verb}' does not apply to '{attribute}'"
            )
        if not args:
            raise _Reject(f"-ERR Parse error at {end}: not enough parameters supplied")
        token = args[0]
        if spec.kind == "bool":
            if token.text not in ("true", "false"):
                raise _Reject(f"-ERR Parse error at {token.start}: could not parse value")
            return token.text == "true"
        try:
            number = float(token.text)
        except ValueError:
            raise _Reject(f"-ERR Parse error at {token.start}: could not parse value") from None
        if not math.isfinite(number):
            raise _Reject(f"-ERR Parse error at {token.start}: could not parse value")
        assert isinstance(current, float)
        if verb != "set":  # steps stop at the limits
            number = current + (number if verb == "increment" else -number)
            return _f32(min(block.max, max(block.min, number)))
        if not block.min <= number <= block.max:
            if self.knobs.out_of_range == "error":
                raise _Reject(
                    f"-ERR INVALID_PARAMETER Value out of range: attr:{attribute} "
                    f"min:{format_value(block.min)} max:{format_value(block.max)} "
                    f"received:{format_value(number)}"
                )
            number = min(block.max, max(block.min, number))
        return _f32(number)

    def _subscription(
        self,
        client: _Client,
        verb: str,
        target: tuple[str, str, int],
        args: list[Token],
    ) -> list[str]:
        label = args[0].text if args else ""
        key: SubKey = (*target, label)
        old = client.subscriptions.pop(key, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        if verb == "unsubscribe":
            return [OK]
        rate = 0.0
        if len(args) > 1:
            try:
                rate = max(0, int(args[1].text)) / 1000
            except ValueError:
                raise _Reject(
                    f"-ERR Parse error at {args[1].start}: could not parse value"
                ) from None
        sub = _Subscription(key, rate, client.verbose)
        sub.last_sent = asyncio.get_running_loop().time()
        client.subscriptions[key] = sub
        return [self._publish_line(sub), OK]  # the current value first, then +OK

    def _session_service(self, client: _Client, tokens: list[Token], end: int) -> list[str]:
        if len(tokens) < 3:
            raise _Reject(f"-ERR Parse error at {end}: not enough parameters supplied")
        verb, attribute = tokens[1], tokens[2].text
        if verb.text not in ("get", "set"):
            raise _Reject(
                f"-ERR Parse error at {verb.start}: verb was not one of the commands supported by Services"
            )
        if attribute == "aliases" and verb.text == "get":
            names: list[Value] = [name for name in sorted([*SERVICES, *self._blocks])]
            return [encode_value_reply(names, verbose=client.verbose, key="list")]
        if attribute != "verbose":
            raise _Reject(f"-ERR '{attribute}' is not supported by TextSession::Attributes")
        if verb.text == "get":
            return [encode_value_reply(client.verbose, verbose=client.verbose)]
        if len(tokens) < 4 or tokens[3].text not in ("true", "false"):
            raise _Reject(f"-ERR Parse error at {end}: could not parse value")
        client.verbose = tokens[3].text == "true"
        return [OK]

    def _device_service(self, tokens: list[Token], end: int) -> list[str]:
        service = tokens[1] if len(tokens) > 1 else None
        if service is None or service.text not in ("recallPreset", "recallPresetByName"):
            start = service.start if service is not None else end
            raise _Reject(
                f"-ERR Parse error at {start}: verb was not one of the commands supported by Services"
            )
        if len(tokens) < 3:
            raise _Reject(f"-ERR Parse error at {end}: not enough parameters supplied")
        arg = tokens[2]
        preset: int | str = arg.text
        if service.text == "recallPreset":
            if not arg.text.isdigit():
                raise _Reject(f"-ERR Parse error at {arg.start}: could not parse value")
            preset = int(arg.text)
        try:
            self.recall_preset(preset)
        except ValueError:
            raise _Reject(f"-ERR INVALID_PARAMETER preset not found: {arg.text}") from None
        return [OK]

    # -- state changes and publishing ---------------------------------------------

    def _write(self, tag: str, attribute: str, index: int, value: Value) -> None:
        block = self._blocks[tag]
        if attribute == "level":
            assert isinstance(value, float)
            if block.levels[index - 1] == value:
                return
            block.levels[index - 1] = value
        else:
            assert isinstance(value, bool)
            if block.mutes[index - 1] == value:
                return
            block.mutes[index - 1] = value
        for session, client in self._clients.items():
            for sub in client.subscriptions.values():
                if sub.key[:3] == (tag, attribute, index):
                    self._due(session, client, sub)

    def _due(self, session: Session, client: _Client, sub: _Subscription) -> None:
        """A subscribed value changed: publish now, or once `rate` has passed since the last."""
        if self.knobs.interleave:
            sub.held = True
            return
        if sub.timer is not None:
            return  # already due; it sends the value current then
        loop = asyncio.get_running_loop()
        wait = sub.last_sent + sub.rate - loop.time()
        if wait <= 0:
            self._push(session, sub)
        else:
            sub.timer = loop.call_later(wait, self._fire, session, client, sub)

    def _fire(self, session: Session, client: _Client, sub: _Subscription) -> None:
        sub.timer = None
        if client.subscriptions.get(sub.key) is sub:
            self._push(session, sub)

    def _push(self, session: Session, sub: _Subscription) -> None:
        sub.last_sent = asyncio.get_running_loop().time()
        session.push(self._publish_line(sub).encode() + self._eol())

    async def _flush_held(self, session: Session, client: _Client) -> None:
        for sub in list(client.subscriptions.values()):
            if sub.held:
                sub.held = False
                sub.last_sent = asyncio.get_running_loop().time()
                await session.send(self._publish_line(sub).encode() + self._eol())

    def _publish_line(self, sub: _Subscription) -> str:
        tag, attribute, index, label = sub.key
        value = self._blocks[tag].read(attribute, index)
        return encode_publish(label, value, verbose=sub.verbose)
