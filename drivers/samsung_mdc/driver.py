"""Samsung MDC display driver (TCP 1515 or RS-232)."""

from __future__ import annotations

import logging
import time
from typing import Literal

from pydantic import Field

from drivers.actions import Args, action
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import (
    AuthError,
    CommandError,
    DeviceError,
    ErrorCode,
    OfflineReason,
    ProtocolError,
)
from drivers.samsung_mdc.codec import (
    ANY_ID,
    INPUT_SOURCES,
    TLS_PREAMBLE,
    Cmd,
    Frame,
    MdcFramer,
    Power,
    Reply,
    Status,
    command_name,
    decode_text,
    input_code,
    input_name,
    parse_reply,
)
from drivers.samsung_mdc.config import SamsungMdcConfig

log = logging.getLogger("avhub.driver.samsung_mdc")

VOLUME: Literal["volume"] = "volume"  # the one level/mute control a display has


class MdcNak(DeviceError):
    """The display answered NAK; `error` is its (undocumented) error byte."""

    def __init__(self, message: str, error: int) -> None:
        super().__init__(ErrorCode.DEVICE_ERROR, message)
        self.error = error


class TlsRequired(AuthError):
    """The display only speaks the MDC Secured Protocol (TLS + PIN), which avhub does not.

    Like a refused login it will not fix itself, so it takes the longest backoff.
    """

    reason = OfflineReason.PROTOCOL_ERROR


class SelectInput(Args):
    input: str = Field(description="a configured input name, an MDC name like 'HDMI 1', or 0x21")


class SetLevel(Args):
    control: Literal["volume"] = VOLUME
    level: float = Field(ge=0, le=100, description="volume in percent")


class SetVolume(Args):
    level: float = Field(ge=0, le=100, description="volume in percent")


class SetMute(Args):
    mute: bool


class SetControlMute(Args):
    control: Literal["volume"] = VOLUME
    mute: bool


def _describe(cmd: Cmd, data: bytes) -> str:
    return f"{command_name(cmd)} {data.hex(' ') if data else 'query'}"


def _echo(reply: Reply, sent: int) -> int:
    """The value an ACK echoes, or what was sent when the display echoes nothing."""
    return reply.values[0] if reply.values else sent


class SamsungMdcDriver(Driver[SamsungMdcConfig, bytes]):
    """A Samsung display speaking MDC.

    State: `power`, `input`, `inputs`, `levels {"volume": %}`, `mutes {"volume": bool}`
    and `audio_mute` (the same mute, for display-style panels), plus `model`,
    `serial_number` and `software_version`. One status query (0x00) polls power,
    volume, mute and input at once; each set is confirmed by its ACK, which echoes the
    new value, so the change is published before the command's ack.

    Persistent: every connection starts with a status query that proves the display
    answers its ID (plain MDC has no greeting), so a connection per poll would double
    the traffic, and on RS-232 the port is simply held open.
    """

    name = "samsung_mdc"
    persistent = True

    _warm_until: float | None = None

    def create_framer(self) -> MdcFramer:
        return MdcFramer(replies_only=True)

    async def login(self) -> None:
        """Ask for status: an answer proves the display ID; the TLS greeting means no plain MDC.

        A Secured Protocol display greets on connect, so its `MDCSTART<<TLS>>` is the
        first frame this status query sees, and `ask` turns it into TlsRequired.
        """
        self.update(inputs=self.input_list())  # from the config: MDC cannot list inputs
        await self._read_status()

    def _tls_required(self) -> TlsRequired:
        return TlsRequired(
            f"{self.label}: display requires the MDC Secured Protocol (TLS with a PIN), which "
            "avhub does not speak; turn off 'Secured Protocol' in the display's settings"
        )

    def unsolicited(self, frame: bytes) -> None:
        log.warning("%s: skipped unexpected data: %r", self.label, frame)

    # ---- requests -----------------------------------------------------------------

    async def ask(self, cmd: Cmd, data: bytes = b"", what: str | None = None) -> Reply:
        """Send one command and return the ACK; a NAK raises MdcNak naming `what`."""
        what = what or _describe(cmd, data)
        display_id = self.config.display_id

        def match(frame: bytes) -> Reply | Wait:
            if frame == TLS_PREAMBLE:
                raise self._tls_required()
            try:
                reply = parse_reply(frame)
            except ProtocolError:
                return NOT_MINE  # logged by `unsolicited`
            if reply.rcmd != cmd or display_id not in (ANY_ID, reply.display_id):
                return NOT_MINE
            if not reply.ack:
                error = reply.error or 0
                raise MdcNak(
                    f"{self.label}: display refused {what} (NAK, error 0x{error:02X})", error
                )
            return reply

        return await self.request(Frame(cmd, display_id, data).encode(), match)

    async def query(self, cmd: Cmd) -> str | None:
        """An ASCII query; None when this model does not answer it (NAK)."""
        try:
            reply = await self.ask(cmd)
        except MdcNak:
            return None
        return decode_text(reply.values) or None

    # ---- polling --------------------------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        return [
            PollGroup("status", self._read_status, self._status_interval),
            PollGroup("info", self._poll_info, self.config.info_interval),
        ]

    def _status_interval(self) -> float:
        if self.in_transition():
            return min(self.config.transition_poll, self.config.poll_interval)
        return self.config.poll_interval

    async def _read_status(self) -> None:
        reply = await self.ask(Cmd.STATUS, what="status query")
        status = Status.decode(reply.values)
        self.update(power=self._power_state(status.power), input=self.input_label(status.input))
        self._apply_volume(status.volume)
        self._apply_mute(status.mute)

    async def _poll_info(self) -> None:
        self.update(
            model=await self.query(Cmd.MODEL_NAME),
            serial_number=await self.query(Cmd.SERIAL_NUMBER),
            software_version=await self.query(Cmd.SOFTWARE_VERSION),
        )

    def _power_state(self, on: bool) -> str:
        """`warming` while a boot we started may still run, else what the display says."""
        if not on:
            self._warm_until = None
            return "off"
        if self._warm_until is not None:
            if time.monotonic() < self._warm_until:
                return "warming"
            self._warm_until = None
        return "on"

    def _apply_volume(self, volume: int) -> None:
        self.update(levels={VOLUME: volume})

    def _apply_mute(self, mute: bool) -> None:
        self.update(audio_mute=mute, mutes={VOLUME: mute})

    # ---- inputs ---------------------------------------------------------------------

    def input_label(self, code: int) -> str:
        """The configured name of an input, else its MDC name (`HDMI 1`)."""
        return self.config.input_labels().get(code) or input_name(code)

    def input_list(self) -> list[str]:
        """The configured inputs, or every MDC input when none are configured."""
        labels = self.config.input_labels()
        return list(labels.values()) if labels else list(INPUT_SOURCES.values())

    def resolve_input(self, name: str) -> int:
        """An input code from a configured name, an MDC name or a hex code."""
        for code, label in self.config.input_labels().items():
            if label.casefold() == name.casefold():
                return code
        found = input_code(name)
        if found is None:
            known = ", ".join(self.input_list())
            raise CommandError(ErrorCode.INVALID_ARGS, f"unknown input {name!r} (inputs: {known})")
        return found

    # ---- actions --------------------------------------------------------------------

    async def _power(self, on: bool) -> None:
        booting = on and self.state.get("power") not in ("on", "warming")
        value = Power.ON if on else Power.OFF
        reply = await self.ask(Cmd.POWER, bytes((value,)), f"power {'on' if on else 'off'}")
        if booting and self.config.warmup > 0:
            self._warm_until = time.monotonic() + self.config.warmup
        self.update(power=self._power_state(_echo(reply, value) != Power.OFF))

    @action(coalesce="power", lockout=True, description="turn the display on (it boots first)")
    async def power_on(self) -> None:
        await self._power(True)

    @action(coalesce="power", lockout=True, description="turn the display off")
    async def power_off(self) -> None:
        await self._power(False)

    @action(SelectInput, coalesce="input", lockout=True)
    async def select_input(self, args: SelectInput) -> None:
        code = self.resolve_input(args.input)
        what = f"input {self.input_label(code)} (0x{code:02X})"
        reply = await self.ask(Cmd.INPUT_SOURCE, bytes((code,)), what)
        self.update(input=self.input_label(_echo(reply, code)))

    async def _set_volume(self, level: float) -> None:
        value = round(level)
        reply = await self.ask(Cmd.VOLUME, bytes((value,)), f"volume {value}")
        self._apply_volume(_echo(reply, value))

    @action(SetLevel, coalesce=VOLUME, lockout=True, description="display volume in percent")
    async def set_level(self, args: SetLevel) -> None:
        await self._set_volume(args.level)

    @action(SetVolume, coalesce=VOLUME, lockout=True, description="display volume in percent")
    async def set_volume(self, args: SetVolume) -> None:
        await self._set_volume(args.level)

    async def _step_volume(self, down: bool) -> None:
        await self.ask(Cmd.VOLUME_STEP, bytes((int(down),)), f"volume {'down' if down else 'up'}")
        await self._read_status()  # what a step answers is not documented: read it back

    @action(lockout=True, description="volume one step up", repeat=False)
    async def volume_up(self) -> None:
        await self._step_volume(False)

    @action(lockout=True, description="volume one step down", repeat=False)
    async def volume_down(self) -> None:
        await self._step_volume(True)

    async def _set_mute(self, mute: bool) -> None:
        reply = await self.ask(Cmd.MUTE, bytes((int(mute),)), f"mute {'on' if mute else 'off'}")
        self._apply_mute(_echo(reply, int(mute)) != 0)

    @action(SetMute, coalesce="audio_mute", lockout=True, description="mute the display's sound")
    async def set_audio_mute(self, args: SetMute) -> None:
        await self._set_mute(args.mute)

    @action(
        SetControlMute, coalesce="audio_mute", lockout=True, description="mute the volume control"
    )
    async def set_mute(self, args: SetControlMute) -> None:
        await self._set_mute(args.mute)
