"""A simulated Acme RB relay box: speaks the protocol through the codec, keeps its own state."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from drivers.config import DeviceConfig
from drivers.errors import ProtocolError
from relay_plugin.codec import (
    EOL,
    MAX_RELAYS,
    PORT,
    Error,
    Greeting,
    Power,
    PowerQuery,
    Refusal,
    Relay,
    RelayQuery,
    encode,
    parse,
)
from relay_plugin.config import RelayConfig
from simulators.base import Knobs, Session, Simulator


class RelayKnobs(Knobs):
    """Relay box knobs: the fault knobs every simulator has, and the box's start state."""

    relays: int = Field(4, ge=1, le=MAX_RELAYS, description="how many relays the box has")
    power: bool = Field(False, description="on at start")


class RelaySimulator(Simulator[RelayKnobs]):
    """An Acme RB box: greets, answers queries and sets, pushes changes to other clients.

    Relays switch only while the box is on (`ERR 3` otherwise); a relay it does not
    have is `ERR 2`, a line it does not know `ERR 1`. `press_power()` is the front-panel
    button: every client is told.
    """

    kind = "relay"
    knobs_model = RelayKnobs
    default_port = PORT
    serial = True
    terminators = EOL
    line_end = EOL

    def __init__(self, knobs: RelayKnobs | None = None) -> None:
        super().__init__(knobs)
        self.power = False
        self.closed: set[int] = set()
        self.reset_state()

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The simulated box has as many relays as the device config says."""
        return {"relays": device.relays} if isinstance(device, RelayConfig) else {}

    def reset_state(self) -> None:
        self.power = self.knobs.power
        self.closed = set()

    async def session_started(self, session: Session) -> None:
        await session.send(encode(Greeting()))

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        try:
            message = parse(frame)
        except ProtocolError:
            message = None
        reply = self._answer(message)
        await session.send(encode(reply))
        if isinstance(message, Power | Relay) and not isinstance(reply, Error):
            self._tell_others(session, reply)

    def _answer(self, message: object) -> Power | Relay | Error:
        match message:
            case PowerQuery():
                return Power(self.power)
            case RelayQuery(number) | Relay(number) if not 1 <= number <= self.knobs.relays:
                return Error(Refusal.NO_SUCH_RELAY)
            case RelayQuery(number):
                return Relay(number, number in self.closed)
            case Power(on):
                self.power = on
                return Power(on)
            case Relay(number, closed) if self.power:
                if closed:
                    self.closed.add(number)
                else:
                    self.closed.discard(number)
                return Relay(number, closed)
            case Relay():
                return Error(Refusal.POWERED_OFF)
        return Error(Refusal.UNKNOWN_COMMAND)

    def _tell_others(self, session: Session | None, line: Power | Relay) -> None:
        for other in self.sessions:
            if other is not session:
                other.push(encode(line))

    def press_power(self) -> None:
        """The front-panel power button: toggles power and tells every client."""
        self.power = not self.power
        self._tell_others(None, Power(self.power))

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """The device_errors knobs: a command is refused as unknown."""
        await session.send(encode(Error(Refusal.UNKNOWN_COMMAND)))
        return True
