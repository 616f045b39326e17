"""PJLink class 1/2 projector driver."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar, cast

from pydantic import Field

from drivers.actions import Args, action
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import AuthError, CommandError, DeviceError, ErrorCode, ProtocolError
from drivers.pjlink.codec import (
    ERROR_MEANINGS,
    MAX_LINE,
    POWER_STATES,
    AuthFailure,
    Command,
    Greeting,
    PjlinkError,
    Reply,
    auth_digest,
    default_input_name,
    is_input_code,
    parse_errors,
    parse_lamps,
    parse_message,
    parse_mutes,
)
from drivers.pjlink.config import PjlinkConfig
from drivers.transport.framing import DelimiterFramer

log = logging.getLogger("avhub.driver.pjlink")

_ERROR_CODES = {
    PjlinkError.ERR1: ErrorCode.DEVICE_ERROR,
    PjlinkError.ERR2: ErrorCode.INVALID_ARGS,
    PjlinkError.ERR3: ErrorCode.BUSY,
    PjlinkError.ERR4: ErrorCode.DEVICE_ERROR,
}
_OPTIONAL = (PjlinkError.ERR1, PjlinkError.ERR3)  # "not present" / "not now" while polling


class PjlinkDeviceError(DeviceError):
    """The projector answered ERR1-ERR4."""

    def __init__(self, message: str, error: PjlinkError) -> None:
        super().__init__(_ERROR_CODES[error], message)
        self.error = error


CLASS2_ACTIONS = ("mic_volume_down", "mic_volume_up", "set_freeze", "volume_down", "volume_up")

_V = TypeVar("_V", list[str], dict[str, str | None], tuple[str, ...])
_ALIKE: dict[Hashable, Any] = {}
_ALIKE_MAX = 1024


def _alike(value: _V) -> _V:
    """`value`, or an equal one another projector reported first: projectors of one model
    report the same inputs and terminal names, and state values are read-only, so they
    share one object. At most `_ALIKE_MAX` are kept (then it starts again)."""
    items = tuple(value.items()) if isinstance(value, dict) else tuple(value)
    key = (type(value), items)
    if len(_ALIKE) >= _ALIKE_MAX and key not in _ALIKE:
        _ALIKE.clear()
    return cast(_V, _ALIKE.setdefault(key, value))


class SelectInput(Args):
    input: str = Field(description="input name (e.g. 'HDMI 1') or PJLink code (e.g. '31')")


class SetMute(Args):
    mute: bool


class SetFreeze(Args):
    freeze: bool


class PjlinkDriver(Driver[PjlinkConfig, bytes]):
    """A projector or display speaking PJLink over TCP 4352.

    Connects when there is work and lets the projector close idle sessions: an idle
    close is not a failure, so `online` does not flap. Power, input and mutes are
    polled every `poll_interval`; errors, input resolution and freeze, which rarely
    change, every `detail_interval` (errors also while warming or cooling). While the
    projector is not on, input, mutes, resolution and freeze are not asked (projectors
    answer ERR3 then) unless `poll_in_standby`; they are read as soon as it is on again.
    """

    name = "pjlink"
    persistent = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state["unavailable_actions"] = _alike(list(CLASS2_ACTIONS))  # until it is class 2
        self._digest = ""
        self._codes: tuple[str, ...] = ()
        self._expect: tuple[str, str, float] | None = None

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(b"\r\n", max_len=MAX_LINE + 64)

    async def login(self) -> None:
        """Read the greeting and prove the password with a first (class) query.

        The digest rides on the first command of each connection; asking CLSS then
        means a wrong password fails here, before any real command is at stake.
        """
        greeting = await self.request(None, self._match_greeting)
        if greeting.nonce is None:
            self._digest = ""
        elif not self.config.password:
            raise AuthError(f"{self.label}: projector wants a password and none is configured")
        else:
            self._digest = auth_digest(greeting.nonce, self.config.password)
        await self.ask("CLSS")

    def _match_greeting(self, frame: bytes) -> Greeting | Wait:
        try:
            message, _ = parse_message(frame)
        except ProtocolError:
            return NOT_MINE
        if isinstance(message, AuthFailure):
            raise AuthError(f"{self.label}: projector refused the connection (PJLINK ERRA)")
        return message if isinstance(message, Greeting) else NOT_MINE

    def apply_notification(self, reply: Reply) -> None:
        """A class 2 UDP status notification: apply it now rather than at the next poll."""
        try:
            if reply.body == "POWR":
                if reply.param not in POWER_STATES:
                    raise ProtocolError(f"bad POWR value {reply.param!r}")
                self._expect = None  # the projector said so itself
                self._set_power(POWER_STATES[reply.param])
            elif reply.body == "INPT":
                if not is_input_code(reply.param.upper()):
                    raise ProtocolError(f"bad INPT value {reply.param!r}")
                self.update(input=self.input_name(reply.param.upper()))
            elif reply.body == "ERST":
                self.update(errors=parse_errors(reply.param))
            elif reply.body == "AVMT":
                video, audio = parse_mutes(reply.param)
                self.update(video_mute=video, audio_mute=audio)
            elif reply.body == "LKUP":
                self.update(mac=reply.param.lower())
                self.refresh()  # the projector just joined the network: read everything
        except ProtocolError as err:
            log.warning("%s: ignored notification %s: %s", self.label, reply, err)

    def unsolicited(self, frame: bytes) -> None:
        log.warning("%s: skipped unexpected data: %r", self.label, frame)

    def unavailable_reason(self, action: str) -> str:
        return "needs PJLink class 2; this projector is class 1"

    # ---- requests -----------------------------------------------------------------

    def ask(self, body: str, param: str = "?", pjclass: int = 1) -> Coroutine[Any, Any, Reply]:
        """Send one command and return its reply; PJLink errors raise DeviceError.

        Returns the link's request coroutine rather than awaiting it (as `request` does):
        no coroutine of its own held through every request; await it at once.
        """
        command = Command(pjclass, body, param)
        digest, self._digest = self._digest, ""

        def match(frame: bytes) -> Reply | Wait:
            try:
                message, junk = parse_message(frame)
            except ProtocolError:
                return NOT_MINE
            if junk:
                log.warning("%s: skipped %d junk bytes: %r", self.label, len(junk), junk)
            if isinstance(message, AuthFailure):
                raise AuthError(f"{self.label}: projector rejected the password (PJLINK ERRA)")
            if not isinstance(message, Reply) or message.body != body:
                return NOT_MINE
            error = message.error
            if error is not None:
                meaning = ERROR_MEANINGS[error]
                raise PjlinkDeviceError(f"{body} {param}: {meaning} ({error})", error)
            return message

        return self.request(command.encode(digest), match)

    async def query(self, body: str, pjclass: int = 1, param: str = "?") -> str | None:
        """A query whose ERR1/ERR3 answer means "nothing to report now" (None).

        The answer is interned: what it becomes in the state (a model name, an input
        name) is then one string shared by every projector that says the same.
        """
        try:
            return sys.intern((await self.ask(body, param, pjclass)).param)
        except PjlinkDeviceError as err:
            if err.error in _OPTIONAL:
                return None
            raise

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        cfg = self.config
        return [
            PollGroup("info", self._poll_info, cfg.info_interval),
            PollGroup("status", self._poll_status, self._status_interval),
            PollGroup("detail", self._poll_detail, self._detail_interval),
            PollGroup("lamp", self._poll_lamp, cfg.lamp_interval),
        ]

    def _status_interval(self) -> float:
        if self.in_transition():
            return min(self.config.transition_poll, self.config.poll_interval)
        return self.config.poll_interval

    def _detail_interval(self) -> float:
        return max(self.config.detail_interval, self.config.poll_interval)

    @property
    def pjlink_class(self) -> int:
        return int(self.state.get("pjlink_class") or 1)

    def _showing(self) -> bool:
        """True when input, mutes, resolution and freeze are worth asking for."""
        return self.config.poll_in_standby or self.state.get("power") == "on"

    async def _poll_status(self) -> None:
        """Every `poll_interval`: power, then input and mutes (while on, see `_showing`).

        While warming or cooling (polled every `transition_poll`) errors too: that is
        when lamp and ignition faults show up.
        """
        await self._read_power(polling=True)
        if self.in_transition():
            await self._read_errors()
        if self._showing():
            await self._read_input()
            await self._read_mutes()

    async def _poll_detail(self) -> None:
        """Every `detail_interval`: errors; resolution and freeze while on (class 2)."""
        await self._read_errors()
        if self.pjlink_class < 2:
            return
        if not self._showing():
            # No picture: nothing is frozen, no resolution (what an ERR3 answer would say).
            self.update(input_resolution=None, freeze=None)
            return
        self.update(input_resolution=await self.query("IRES", 2))
        await self._read_freeze()

    def _set_power(self, power: str, *, polling: bool = False) -> None:
        """Publish power; when it turns on or off, re-read what depends on it now, not later.

        The status poll reads input and mutes right after power itself (`polling`);
        a notification or a power command queues that poll.
        """
        was_on = self.state.get("power") == "on"
        self.update(power=power)
        if (power == "on") != was_on:
            self.refresh(["detail"] if polling else ["status", "detail"])

    async def _read_errors(self) -> None:
        errors = await self.query("ERST")
        if errors is not None:
            self.update(errors=parse_errors(errors))

    async def _read_input(self) -> None:
        code = await self.query("INPT", self.pjlink_class)
        if code is not None:
            self.update(input=self.input_name(code))

    async def _read_mutes(self) -> None:
        mutes = await self.query("AVMT")
        if mutes is not None:
            video, audio = parse_mutes(mutes)
            self.update(video_mute=video, audio_mute=audio)

    async def _read_freeze(self) -> None:
        freeze = await self.query("FREZ", 2)
        if freeze is not None:
            self.update(freeze=freeze == "1")

    async def _poll_lamp(self) -> None:
        lamps = await self.query("LAMP")
        parsed = parse_lamps(lamps) if lamps is not None else []
        changes: dict[str, Any] = {
            "lamps": parsed,
            "lamp_hours": parsed[0]["hours"] if parsed else None,
        }
        if self.pjlink_class >= 2:
            hours = await self.query("FILT", 2)
            changes["filter_hours"] = int(hours) if hours and hours.isdigit() else None
        self.update(changes)

    async def _poll_info(self) -> None:
        clss = await self.query("CLSS")
        pjclass = int(clss) if clss and clss.isdigit() else 1
        changes: dict[str, Any] = {
            "pjlink_class": pjclass,
            "unavailable_actions": _alike([] if pjclass >= 2 else list(CLASS2_ACTIONS)),
            "manufacturer": await self.query("INF1"),
            "model": await self.query("INF2"),
            "other_info": await self.query("INFO"),
            "name": await self.query("NAME"),
        }
        codes = (await self.query("INST", min(pjclass, 2)) or "").split()
        self._codes = _alike(tuple(sys.intern(c) for c in codes if is_input_code(c)))
        changes["inputs"] = _alike([self.input_name(c) for c in self._codes])
        if pjclass >= 2:
            changes["serial_number"] = await self.query("SNUM", 2)
            changes["software_version"] = await self.query("SVER", 2)
            changes["recommended_resolution"] = await self.query("RRES", 2)
            terminals = {}
            for code in self._codes:
                terminals[code] = await self.query("INNM", 2, f"?{code}")
            changes["input_terminals"] = _alike(terminals)
        self.update(changes)

    def input_name(self, code: str) -> str:
        """Config name for a code, else the generic `HDMI 1` style name."""
        return self.config.inputs.get(code) or default_input_name(code)

    def input_code(self, name: str) -> str:
        """The PJLink code for an input name (or a code given directly)."""
        for code in self._codes or list(self.config.inputs):
            if self.input_name(code).casefold() == name.casefold():
                return code
        if is_input_code(name.upper()):
            return name.upper()
        known = ", ".join(self.input_name(c) for c in self._codes) or "unknown yet"
        raise CommandError(ErrorCode.INVALID_ARGS, f"unknown input {name!r} (inputs: {known})")

    # ---- actions --------------------------------------------------------------------

    async def _set(
        self, body: str, param: str, pjclass: int, read_back: Callable[[], Awaitable[None]]
    ) -> None:
        """Set, then read the value back so the change is published before the ack."""
        await self.ask(body, param, pjclass)
        await read_back()

    async def _power(self, on: bool) -> None:
        """Switch power and publish the transition at once, so lockouts apply to what follows.

        Some projectors keep reporting the old state for seconds after accepting the
        command; until `power_settle` has passed, polls that say so do not undo it.
        """
        stable, moving = ("on", "warming") if on else ("off", "cooling")
        if self.state.get("power") == stable:
            await self.ask("POWR", "1" if on else "0")
            return
        await self.ask("POWR", "1" if on else "0")
        self._expect = (stable, moving, time.monotonic() + self.config.power_settle)
        await self._read_power()

    async def _read_power(self, *, polling: bool = False) -> None:
        code = await self.query("POWR")
        if code is None:
            return
        if code not in POWER_STATES:
            raise ProtocolError(f"bad POWR value {code!r}")
        power = POWER_STATES[code]
        if self._expect is not None:
            stable, moving, until = self._expect
            old = "off" if stable == "on" else "on"
            if power == old and time.monotonic() < until:
                power = moving
            else:
                self._expect = None
        self._set_power(power, polling=polling)

    @action(coalesce="power", lockout=True, description="turn the projector on (warms up first)")
    async def power_on(self) -> None:
        await self._power(True)

    @action(coalesce="power", lockout=True, description="turn the projector off (cools down first)")
    async def power_off(self) -> None:
        await self._power(False)

    @action(SelectInput, coalesce="input", lockout=True)
    async def select_input(self, args: SelectInput) -> None:
        code = self.input_code(args.input)
        await self._set("INPT", code, 1 if code.isdigit() else 2, self._read_input)

    @action(SetMute, coalesce="video_mute")
    async def set_video_mute(self, args: SetMute) -> None:
        await self._set("AVMT", "11" if args.mute else "10", 1, self._read_mutes)

    @action(SetMute, coalesce="audio_mute")
    async def set_audio_mute(self, args: SetMute) -> None:
        await self._set("AVMT", "21" if args.mute else "20", 1, self._read_mutes)

    @action(SetFreeze, coalesce="freeze", description="freeze the picture (class 2)")
    async def set_freeze(self, args: SetFreeze) -> None:
        await self._set("FREZ", "1" if args.freeze else "0", 2, self._read_freeze)

    @action(description="speaker volume one step up (class 2)", repeat=False)
    async def volume_up(self) -> None:
        await self.ask("SVOL", "1", 2)

    @action(description="speaker volume one step down (class 2)", repeat=False)
    async def volume_down(self) -> None:
        await self.ask("SVOL", "0", 2)

    @action(description="microphone volume one step up (class 2)", repeat=False)
    async def mic_volume_up(self) -> None:
        await self.ask("MVOL", "1", 2)

    @action(description="microphone volume one step down (class 2)", repeat=False)
    async def mic_volume_down(self) -> None:
        await self.ask("MVOL", "0", 2)
