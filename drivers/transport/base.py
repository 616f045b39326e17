"""The transport interface: a byte pipe to one device, stream or datagram."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar, Protocol

from drivers.transport.url import TransportUrl


class ConnectionState(StrEnum):
    """Where a device connection stands; one enum instead of scattered booleans."""

    IDLE = "idle"  # not connected and nothing needs it (connect-on-demand drivers)
    CONNECTING = "connecting"
    LOGGING_IN = "logging_in"
    ONLINE = "online"
    BACKING_OFF = "backing_off"
    CLOSED = "closed"


class Receiver(Protocol):
    """What a transport calls as bytes arrive and when it goes away."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class Transport(ABC):
    """Bytes to and from one device. `open` raises ConnectError; `write` never blocks."""

    datagram: ClassVar[bool] = False
    __slots__ = ("connect_timeout", "url")  # a hub keeps one per connected device

    def __init__(self, url: TransportUrl, connect_timeout: float) -> None:
        self.url = url
        self.connect_timeout = connect_timeout

    @abstractmethod
    async def open(self, receiver: Receiver) -> None:
        """Connect (or bind) and start delivering bytes to `receiver`."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue bytes for the device (one datagram per call on datagram transports)."""

    @abstractmethod
    def close(self) -> None:
        """Close now; idempotent. `receiver.connection_lost` is called once."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True between a successful `open` and the loss of the connection."""
