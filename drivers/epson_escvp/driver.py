"""Epson ESC/VP21 projector driver (ESC/VP.net on TCP 3629, or RS-232)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from drivers.actions import Args, action
from drivers.base import MORE, NOT_MINE, Wait
from drivers.epson_escvp.codec import (
    POWER_CODES,
    POWER_STATES,
    PROMPT,
    Command,
    EscvpFramer,
    Packet,
    Status,
    connect_request,
    error_states,
    is_code,
    is_packet,
    parse_lamp_hours,
    parse_reply,
    source_name,
)
from drivers.epson_escvp.config import EpsonEscvpConfig
from drivers.errors import (
    AuthError,
    AvhubError,
    CommandError,
    ConnectError,
    DeviceError,
    ErrorCode,
    OfflineReason,
    ProtocolError,
)
from drivers.projector import ProjectorDriver

log = logging.getLogger("avhub.driver.epson_escvp")


class EscvpRefused(DeviceError):
    """The projector answered `ERR`: unknown command, or not possible in its current state."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.DEVICE_ERROR, message)


class SelectInput(Args):
    input: str = Field(description="input name (e.g. 'HDMI') or SOURCE code (e.g. '30')")


class SetMute(Args):
    mute: bool


class EpsonEscvpDriver(ProjectorDriver[EpsonEscvpConfig]):
    """An Epson projector speaking ESC/VP21.

    Every command waits for the projector's `:` prompt before the next is sent, as the
    protocol demands; `PWR ON` gets its prompt only once the lamp has ignited, so the
    power commands wait up to `power_timeout` and publish `warming`/`cooling` before
    they are sent, which makes the base hold (or refuse) lockout commands meanwhile.
    Over TCP each connection opens with the ESC/VP.net handshake; on a serial line
    there is none, and login's first power query proves the projector answers. The
    connection is kept. A/V mute (`MUTE`) blanks picture and sound together: it is
    `video_mute` (the action) and `audio_mute` (the same value) in state.
    """

    name = "epson_escvp"
    persistent = True

    def create_framer(self) -> EscvpFramer:
        return EscvpFramer(prompts=True)

    async def login(self) -> None:
        """Handshake (network), then ask power: the answer proves the projector is there."""
        self.update(manufacturer="Epson", inputs=self._inputs())  # ESC/VP21 cannot list them
        if self.config.uses_handshake():
            await self.request(connect_request(self.config.password).encode(), self._match_connect)
        await self.read_power()

    def _match_connect(self, frame: bytes) -> Packet | Wait:
        if not is_packet(frame):
            return NOT_MINE
        packet = Packet.decode(frame)
        if packet.status == Status.OK:
            return packet
        if packet.status == Status.UNAUTHORIZED:
            raise AuthError(f"{self.label}: projector refused the ESC/VP.net password")
        if packet.status == Status.UNAVAILABLE:
            raise ConnectError(f"{self.label}: projector busy (another controller connected?)")
        raise ConnectError(
            f"{self.label}: projector refused the ESC/VP.net handshake (status 0x{packet.status:02X})",
            OfflineReason.PROTOCOL_ERROR,
        )

    def unsolicited(self, frame: bytes) -> None:
        if frame == PROMPT:
            log.debug("%s: skipped a prompt nobody waited for", self.label)
        else:
            log.warning("%s: skipped unexpected data: %r", self.label, frame)

    # ---- requests -----------------------------------------------------------------

    async def ask(self, command: Command, timeout: float | None = None) -> str | None:
        """Send one command and wait for the prompt; a query returns its value, a set None.

        `ERR` raises EscvpRefused. A prompt before a query's answer is a stray (the one
        some projectors send after the handshake) and skipped.
        """
        refused = False
        value: str | None = None

        def match(frame: bytes) -> str | Wait | None:
            nonlocal refused, value
            if frame == PROMPT:
                if refused:
                    raise EscvpRefused(f"{self.label}: projector refused {command} (ERR)")
                if command.query and value is None:
                    return MORE
                return value
            try:
                reply, junk = parse_reply(frame)
            except ProtocolError:
                return NOT_MINE  # logged by `unsolicited`
            if junk:
                log.warning("%s: skipped %d junk bytes: %r", self.label, len(junk), junk)
            if reply.refused:
                refused = True
                return MORE
            if command.query and reply.key == command.key:
                value, refused = reply.value, False
                return MORE
            return NOT_MINE

        result: str | None = await self.request(command.encode(), match, timeout)
        return result

    async def query(self, key: str) -> str | None:
        """A query whose `ERR` answer means "nothing to report now" (None)."""
        try:
            return await self.ask(Command(key))
        except EscvpRefused:
            return None

    # ---- polling --------------------------------------------------------------------

    async def query_power(self) -> dict[str, Any] | None:
        code = await self.query("PWR")
        if code is None:
            return None
        if code not in POWER_STATES:
            raise ProtocolError(f"{self.label}: unknown PWR code {code!r}")
        power, detail = POWER_STATES[code]
        return {"power": power, "power_detail": detail}

    async def read_picture(self) -> None:
        await self._read_input()
        await self._read_mute()

    async def _read_input(self) -> None:
        code = await self.query("SOURCE")
        if code is not None:
            self.update(input=self.input_name(code.upper()))

    async def _read_mute(self) -> None:
        mute = await self.query("MUTE")
        if mute is not None:
            self.update(video_mute=mute == "ON", audio_mute=mute == "ON")

    async def read_errors(self) -> None:
        code = await self.query("ERR")
        if code is not None:
            self.update(errors=error_states(code))

    async def read_lamp(self) -> None:
        hours = await self.query("LAMP")  # ERR on models without a lamp (laser)
        self.update(lamp_hours=None if hours is None else parse_lamp_hours(hours))

    # ---- inputs ---------------------------------------------------------------------

    def input_name(self, code: str) -> str:
        """The configured name of a SOURCE code, else the common one (`30` → `HDMI`)."""
        return self.config.inputs.get(code) or source_name(code)

    def input_code(self, name: str) -> str:
        """The SOURCE code for an input name, or a code given directly."""
        for code in self.config.input_codes():
            if self.input_name(code).casefold() == name.casefold():
                return code
        if is_code(name.upper()):
            return name.upper()
        known = ", ".join(self._inputs())
        raise CommandError(ErrorCode.INVALID_ARGS, f"unknown input {name!r} (inputs: {known})")

    def _inputs(self) -> list[str]:
        return [self.input_name(code) for code in self.config.input_codes()]

    # ---- actions --------------------------------------------------------------------

    async def switch_power(self, on: bool) -> None:
        """Publish the transition, send PWR ON/OFF and wait for its prompt, then read power."""
        target, moving = ("on", "warming") if on else ("off", "cooling")
        before: dict[str, Any] = {
            k: self.state[k] for k in ("power", "power_detail") if k in self.state
        }
        if self.state.get("power") != target:  # lockouts apply from now, not from the prompt
            self.update(power=moving, power_detail=POWER_STATES[POWER_CODES[moving]][1])
        try:
            await self.ask(Command("PWR", "ON" if on else "OFF"), timeout=self.config.power_timeout)
        except AvhubError as err:
            if isinstance(err, EscvpRefused):  # the projector said no: power is as it was
                self.update(before)
            self.refresh(["status"])  # and read what the projector is now
            raise
        await self.read_power()

    @action(SelectInput, coalesce="input", lockout=True)
    async def select_input(self, args: SelectInput) -> None:
        code = self.input_code(args.input)
        await self.ask(Command("SOURCE", code), timeout=self.config.source_timeout)
        await self._read_input()

    @action(SetMute, coalesce="video_mute", lockout=True, description="A/V mute: picture and sound")
    async def set_video_mute(self, args: SetMute) -> None:
        await self.ask(Command("MUTE", "ON" if args.mute else "OFF"))
        await self._read_mute()
