"""The relay box driver: power and relays, polled, set by actions, pushed by the box."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from drivers.actions import Args, action, config_in
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.errors import DeviceError, ErrorCode, ProtocolError
from drivers.spec import DriverSpec
from drivers.transport.framing import DelimiterFramer
from relay_plugin.codec import (
    EOL,
    GREETING,
    MAX_RELAYS,
    Command,
    Error,
    Message,
    Power,
    PowerQuery,
    Refusal,
    Relay,
    RelayQuery,
    answers,
    encode,
    parse,
)
from relay_plugin.config import RelayConfig

_REFUSALS: dict[int, tuple[ErrorCode, str]] = {
    Refusal.UNKNOWN_COMMAND: (ErrorCode.DEVICE_ERROR, "unknown command"),
    Refusal.NO_SUCH_RELAY: (ErrorCode.INVALID_ARGS, "no such relay"),
    Refusal.POWERED_OFF: (ErrorCode.DEVICE_ERROR, "the box is off: power it on first"),
}


class SetRelay(Args):
    relay: int = Field(ge=1, le=MAX_RELAYS, description="relay number, from 1")
    closed: bool = Field(description="true closes the contact, false opens it")

    @field_validator("relay")
    @classmethod
    def _on_the_box(cls, value: int, info: ValidationInfo) -> int:
        """`avhub check` refuses a macro step for a relay the configured box does not have."""
        config = config_in(info)
        if isinstance(config, RelayConfig) and value > config.relays:
            raise ValueError(f"the box has {config.relays} relays, there is no relay {value}")
        return value


class RelayDriver(Driver[RelayConfig, bytes]):
    """An Acme RB relay box.

    State: `power` ("on" or "off", the state vocabulary's power key) and `relays`
    (`{"1": closed, ...}`). Every poll asks power and each relay; the box also pushes
    changes made on its front panel, which update state at once.
    """

    name = "relay"

    def create_framer(self) -> DelimiterFramer:
        return DelimiterFramer(EOL)

    async def login(self) -> None:
        """Wait for the greeting: the box takes no command before it."""

        def greeting(frame: bytes) -> bytes | Wait:
            return frame if frame == GREETING else NOT_MINE

        await self.request(None, greeting)

    def poll_groups(self) -> list[PollGroup]:
        return [PollGroup("status", self._poll, lambda: self.config.poll_interval)]

    async def _poll(self) -> None:
        replies = [await self.ask(PowerQuery())]
        replies += [await self.ask(RelayQuery(n)) for n in range(1, self.config.relays + 1)]
        self._apply(*replies)

    def unsolicited(self, frame: bytes) -> None:
        """A front-panel change; anything else is logged by the base class."""
        message = parse(frame)  # a ProtocolError is logged by the link
        if isinstance(message, Power | Relay):
            self._apply(message)
        else:
            super().unsolicited(frame)

    def _apply(self, *messages: Message) -> None:
        """Publish what the box's state lines say, in one update."""
        changes: dict[str, Any] = {}
        relays = dict(self.state.get("relays") or {})
        for message in messages:
            if isinstance(message, Power):
                changes["power"] = "on" if message.on else "off"
            elif isinstance(message, Relay) and message.number <= self.config.relays:
                relays[str(message.number)] = message.closed
                changes["relays"] = relays
        self.update(changes)

    async def ask(self, message: Command) -> Message:
        """Send one line; the state line that answers it, or DeviceError for `ERR`."""

        def match(frame: bytes) -> Message | Wait:
            try:
                reply = parse(frame)
            except ProtocolError:
                return NOT_MINE  # logged as unexpected data
            if isinstance(reply, Error):
                code, meaning = _REFUSALS.get(reply.code, (ErrorCode.DEVICE_ERROR, "unknown error"))
                sent = encode(message).strip().decode()
                raise DeviceError(code, f"{self.label}: the box refused {sent}: {meaning}")
            return reply if answers(reply, message) else NOT_MINE  # a push: see `unsolicited`

        return await self.request(encode(message), match)

    @action(coalesce="power")
    async def power_on(self) -> None:
        self._apply(await self.ask(Power(True)))

    @action(coalesce="power")
    async def power_off(self) -> None:
        self._apply(await self.ask(Power(False)))

    @action(
        SetRelay,
        coalesce=lambda args: ("relay", args.relay),
        description="close or open one relay",
    )
    async def set_relay(self, args: SetRelay) -> None:
        self._apply(await self.ask(Relay(args.relay, args.closed)))


SPEC = DriverSpec(RelayDriver, RelayConfig)
"""What the `avhub.drivers` entry point `relay` names."""
