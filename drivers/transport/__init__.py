"""Transports by URL scheme. Drivers get one from `create_transport` and never care which."""

from __future__ import annotations

from collections.abc import Callable

from drivers.transport.base import ConnectionState, Receiver, Transport
from drivers.transport.serial import Rfc2217Transport, SerialTransport
from drivers.transport.tcp import TcpTransport
from drivers.transport.udp import UdpTransport
from drivers.transport.url import TransportUrl, parse_transport_url

TransportFactory = Callable[[TransportUrl, float], Transport]

_BY_SCHEME: dict[str, type[Transport]] = {
    "tcp": TcpTransport,
    "udp": UdpTransport,
    "serial": SerialTransport,
    "socket": TcpTransport,  # a serial gateway passing raw bytes is plain TCP to us
    "rfc2217": Rfc2217Transport,
}


def create_transport(url: TransportUrl, connect_timeout: float) -> Transport:
    """A transport for `url`; NotImplementedError for schemes not available yet."""
    try:
        cls = _BY_SCHEME[url.scheme]
    except KeyError:
        raise NotImplementedError(f"transport {url.scheme}:// is not available") from None
    return cls(url, connect_timeout)


__all__ = [
    "ConnectionState",
    "Receiver",
    "Transport",
    "TransportFactory",
    "TransportUrl",
    "create_transport",
    "parse_transport_url",
]
