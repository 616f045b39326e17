"""Sony ADCP projector driver (TCP 53595)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from drivers.actions import Args, action
from drivers.base import NOT_MINE, PollGroup, Wait
from drivers.errors import AuthError, CommandError, DeviceError, ErrorCode, ProtocolError
from drivers.projector import ProjectorDriver
from drivers.sony_adcp.codec import (
    MAX_LINE,
    NO_ERROR,
    NO_WARNING,
    POWER_STATES,
    TERMINATOR,
    Command,
    ErrorReply,
    Ok,
    Value,
    auth_digest,
    default_input_name,
    error_states,
    is_input_word,
    parse_greeting,
    parse_list,
    parse_reply,
    parse_timer,
    parse_word,
)
from drivers.sony_adcp.config import SonyAdcpConfig
from drivers.transport.framing import DelimiterFramer

log = logging.getLogger("avhub.driver.sony_adcp")

_OPTIONAL = ("err_cmd", "err_inactive")  # "not on this model" / "not now" while polling


class AdcpDeviceError(DeviceError):
    """The projector answered an `err_*` word; `word` is which."""

    def __init__(self, message: str, reply: ErrorReply) -> None:
        super().__init__(reply.code, message)
        self.word = reply.word


class SelectInput(Args):
    input: str = Field(description="input name (e.g. 'HDMI 1') or ADCP name (e.g. 'hdmi1')")


class SetMute(Args):
    mute: bool


class SonyAdcpDriver(ProjectorDriver[SonyAdcpConfig]):
    """A Sony projector speaking ADCP.

    Each connection opens with `NOKEY` or a challenge, answered with SHA-256 of
    challenge + password; a refused digest is `auth_failed`. Replies carry no
    command name, so each is simply the next line after the command (one in flight).
    Connects when there is work and lets the projector close idle sessions, like the
    PJLink driver. Polled as every projector (`ProjectorDriver`): power (startup →
    warming, cooling1/cooling2 → cooling), input and picture mute (`blank`); errors
    and warnings (`errors`); light-source hours from `timer ?`; model and serial
    number every `info_interval`.
    """

    name = "sony_adcp"
    persistent = False

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(b"\r\n", max_len=MAX_LINE)

    async def login(self) -> None:
        """Read the greeting; answer a challenge with the digest and wait for `OK`.

        After `NOKEY`, power is asked at once: a greeting alone proves nothing, and a
        service that greets and then drops every command must count as failing (offline,
        backing off), not as a good connection each time.
        """
        self.update(inputs=self._inputs())  # from the config: ADCP cannot list a model's inputs
        challenge: str | None = await self.request(None, self._match_greeting)
        if challenge is None:
            try:
                await self.read_power()
            except AdcpDeviceError as err:  # an answer all the same: the projector speaks ADCP
                log.info("%s: power_status at login: %s", self.label, err)
            return
        password = self.config.password
        if password is None:
            raise AuthError(f"{self.label}: projector asks for the ADCP password; none configured")
        digest = auth_digest(challenge, password).encode() + TERMINATOR
        await self.request(digest, self._match_auth)

    def _match_greeting(self, frame: bytes) -> str | Wait | None:
        try:
            challenge, junk = parse_greeting(frame)
        except ProtocolError:
            return NOT_MINE
        self._log_junk(junk)
        return challenge

    def _match_auth(self, frame: bytes) -> bool | Wait:
        try:
            reply, junk = parse_reply(frame)
        except ProtocolError:
            return NOT_MINE
        self._log_junk(junk)
        if isinstance(reply, ErrorReply) and reply.word == "err_auth":
            raise AuthError(f"{self.label}: projector refused the ADCP password (err_auth)")
        if not isinstance(reply, Ok):
            raise ProtocolError(f"{self.label}: unexpected answer to the password: {frame!r}")
        return True

    def _log_junk(self, junk: bytes) -> None:
        if junk:
            log.warning("%s: skipped %d junk bytes: %r", self.label, len(junk), junk)

    def unsolicited(self, frame: bytes) -> None:
        log.warning("%s: skipped unexpected data: %r", self.label, frame)

    # ---- requests -----------------------------------------------------------------

    async def ask(self, command: Command) -> Any:
        """Send one command: a query returns its JSON value, a set None; err_* raise."""

        def match(frame: bytes) -> Any | Wait:
            try:
                reply, junk = parse_reply(frame)
            except ProtocolError:
                return NOT_MINE  # logged by `unsolicited`
            self._log_junk(junk)
            if isinstance(reply, ErrorReply):
                if reply.word == "err_auth":
                    raise AuthError(f"{self.label}: projector wants authentication again")
                raise AdcpDeviceError(f"{command}: {reply.meaning} ({reply.word})", reply)
            if command.query != isinstance(reply, Value):
                raise ProtocolError(f"{self.label}: {command}: unexpected reply {frame!r}")
            return reply.value if isinstance(reply, Value) else None

        return await self.request(command.encode(), match)

    async def query(self, name: str) -> Any:
        """A query whose err_cmd/err_inactive answer means "nothing to report now" (None)."""
        try:
            return await self.ask(Command(name))
        except AdcpDeviceError as err:
            if err.word in _OPTIONAL:
                return None
            raise

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        info = PollGroup("info", self._poll_info, self.config.info_interval)
        return [info, *super().poll_groups()]

    async def query_power(self) -> dict[str, Any] | None:
        status = await self.query("power_status")
        if status is None:
            return None
        word = parse_word(status, "power_status")
        if word not in POWER_STATES:
            raise ProtocolError(f"{self.label}: unknown power_status {word!r}")
        return {"power": POWER_STATES[word]}

    async def read_picture(self) -> None:
        await self._read_input()
        await self._read_mute()

    async def _read_input(self) -> None:
        word = await self.query("input")
        if word is not None:
            self.update(input=self.input_name(parse_word(word, "input")))

    async def _read_mute(self) -> None:
        blank = await self.query("blank")
        if blank is not None:
            self.update(video_mute=parse_word(blank, "blank") == "on")

    async def read_errors(self) -> None:
        errors = await self.query("error")
        warnings = await self.query("warning")
        self.update(
            errors=error_states(
                parse_list(errors, NO_ERROR, "error") if errors is not None else [],
                parse_list(warnings, NO_WARNING, "warning") if warnings is not None else [],
            )
        )

    async def read_lamp(self) -> None:
        timers = await self.query("timer")
        hours = None if timers is None else parse_timer(timers, self.config.light_source_timer)
        self.update(lamp_hours=hours)

    async def _poll_info(self) -> None:
        self.update(
            manufacturer="Sony",
            model=await self.query("modelname"),
            serial_number=await self.query("serialnum"),
        )

    # ---- inputs ---------------------------------------------------------------------

    def _inputs(self) -> list[str]:
        return [self.input_name(word) for word in self.config.input_words()]

    def input_name(self, word: str) -> str:
        """The configured name of an ADCP input, else a generic one (`hdmi1` → `HDMI 1`)."""
        return self.config.inputs.get(word) or default_input_name(word)

    def input_word(self, name: str) -> str:
        """The ADCP input for a name, or an ADCP input name given directly."""
        for word in self.config.input_words():
            if name.casefold() in (self.input_name(word).casefold(), word):
                return word
        if is_input_word(name.lower()):
            return name.lower()
        known = ", ".join(self._inputs())
        raise CommandError(ErrorCode.INVALID_ARGS, f"unknown input {name!r} (inputs: {known})")

    # ---- actions --------------------------------------------------------------------

    async def switch_power(self, on: bool) -> None:
        """Switch power, then read the state back so warming/cooling is known before the ack."""
        await self.ask(Command("power", "on" if on else "off"))
        await self.read_power()

    @action(SelectInput, coalesce="input", lockout=True)
    async def select_input(self, args: SelectInput) -> None:
        await self.ask(Command("input", self.input_word(args.input)))
        await self._read_input()

    @action(SetMute, coalesce="video_mute", lockout=True, description="picture mute (blank)")
    async def set_video_mute(self, args: SetMute) -> None:
        await self.ask(Command("blank", "on" if args.mute else "off"))
        await self._read_mute()
