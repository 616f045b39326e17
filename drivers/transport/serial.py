"""Serial transports: `serial://` for a local port, `rfc2217://` for a port behind a gateway.

`socket://host:port` (a gateway passing raw bytes) is the TCP transport unchanged.

A serial line has no connection: opening a port succeeds whether or not a device is
attached, powered, or set to the same speed, so on these transports "online" must
mean the device answered. The driver base counts a completed `login` as an answer:
a driver that may run on a serial line makes its `login` wait for a reply (a status
query, say) — a login that only sends, or nothing, would call a dead line online.

A port that cannot be opened (unplugged, wrong path, no permission, settings it
refuses) raises ConnectError with reason `port_gone`; a port that fails while open
(USB adapter pulled, pty master closed) reports `connection_lost` at once, and the
driver base reopens it with backoff.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import termios
from collections.abc import Callable
from functools import partial
from typing import Any

import serial
import serial_asyncio_fast
from serial import rfc2217

from drivers.errors import ConnectError, ConnectionClosed, OfflineReason
from drivers.transport.base import Receiver, Transport
from drivers.transport.tcp import TcpTransport, _StreamProtocol
from drivers.transport.telnet import (
    Negotiation,
    Telnet,
    Verb,
    accept_offered,
    escape,
    subnegotiation,
)
from drivers.transport.url import TransportUrl

log = logging.getLogger("avhub.transport.serial")

DEFAULTS: dict[str, int | float | str] = {
    "baudrate": 9600,
    "bytesize": 8,
    "parity": "N",
    "stopbits": 1,
    "rtscts": 0,
    "xonxoff": 0,
}
_OPEN_ERRORS = (serial.SerialException, OSError, ValueError, termios.error)
_HINTS = {
    errno.ENOENT: "no such port (adapter unplugged, or wrong path?)",
    errno.ENODEV: "no such device (adapter unplugged?)",
    errno.ENXIO: "no such device (adapter unplugged?)",
    errno.EACCES: "permission denied (is the hub user in the dialout group?)",
    errno.EBUSY: "port busy (another program has it open?)",
}


def serial_settings(url: TransportUrl) -> dict[str, Any]:
    """pyserial keyword arguments from a URL's query, 9600 8N1 for what it leaves out."""
    params = {**DEFAULTS, **url.params}
    stopbits = float(params["stopbits"])
    return {
        "baudrate": int(params["baudrate"]),
        "bytesize": int(params["bytesize"]),
        "parity": str(params["parity"]),
        "stopbits": int(stopbits) if stopbits.is_integer() else stopbits,
        "rtscts": bool(params["rtscts"]),
        "xonxoff": bool(params["xonxoff"]),
    }


def _port_error(url: TransportUrl, err: Exception) -> ConnectError:
    if isinstance(err, termios.error):  # the driver refused a setting (a pty takes no parity)
        why = f"the port refuses {_describe(serial_settings(url))} ({err.args[-1]})"
    elif isinstance(code := getattr(err, "errno", None), int):
        why = _HINTS.get(code) or os.strerror(code)
    else:
        why = str(err)
    return ConnectError(f"cannot open serial port {url.path}: {why}", OfflineReason.PORT_GONE)


def _describe(settings: dict[str, Any]) -> str:
    """Settings the way a device manual writes them: `9600 8N1`."""
    stopbits = settings["stopbits"]
    return f"{settings['baudrate']} {settings['bytesize']}{settings['parity']}{stopbits:g}"


def _close_late(opening: asyncio.Future[Any]) -> None:
    """Close a port whose open finished after nobody was waiting for it any more."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class _PortTransport(serial_asyncio_fast.SerialTransport):
    """pyserial-asyncio-fast's transport; a failing port closes it without an error report.

    The library hands write failures to the loop's exception handler, which logs a
    traceback; a vanished port is an expected event here, reported once by the driver.
    """

    def _fatal_error(self, exc: BaseException, message: str = "serial port failed") -> None:
        log.debug("%s: %s", message, exc)
        self._abort(exc)


class SerialTransport(Transport):
    """A local serial port (`serial:///dev/ttyUSB0?baudrate=9600`); input is flushed on open."""

    _port: _PortTransport | None = None

    async def open(self, receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        path = self.url.path
        # Opening may block on a misbehaving USB adapter: keep it off the loop.
        opening = loop.run_in_executor(
            None, partial(serial.Serial, path, **serial_settings(self.url))
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                port = await asyncio.shield(opening)
        except TimeoutError:
            opening.add_done_callback(_close_late)
            raise ConnectError(
                f"opening serial port {path} timed out", OfflineReason.TIMEOUT
            ) from None
        except asyncio.CancelledError:
            opening.add_done_callback(_close_late)
            raise
        except _OPEN_ERRORS as err:
            raise _port_error(self.url, err) from err
        try:  # the transport reconfigures the port (non-blocking timeouts): that can fail too
            self._port = _PortTransport(loop, _StreamProtocol(receiver), port)
        except _OPEN_ERRORS as err:
            port.close()
            raise _port_error(self.url, err) from err

    def write(self, data: bytes) -> None:
        if self._port is None or self._port.is_closing():
            raise ConnectionClosed(f"serial port {self.url.path} is closed")
        self._port.write(data)

    def close(self) -> None:
        """Close now, dropping unsent bytes (draining could hang on a flow-controlled line)."""
        if self._port is not None and not self._port.is_closing():
            self._port.abort()

    @property
    def is_open(self) -> bool:
        return self._port is not None and not self._port.is_closing()


class _Telnet:
    """Takes RFC 2217 Telnet traffic out of a gateway's stream and answers its negotiation.

    Data bytes go on to the receiver with IAC IAC unescaped; options BINARY, SGA and
    COM-PORT-OPTION are offered both ways, every other option is refused.
    """

    WANTED = (rfc2217.BINARY[0], rfc2217.SGA[0], rfc2217.COM_PORT_OPTION[0])

    def __init__(self, receiver: Receiver, send: Callable[[bytes], None], name: str) -> None:
        self.receiver = receiver
        self._send = send
        self._name = name
        self._telnet = Telnet(accept_offered(self.WANTED))

    def hello(self, params: dict[str, int | float | str]) -> bytes:
        """Our option offers, then the port settings the URL gives (others stay as the gateway has them)."""
        offers = (Negotiation(v, opt) for opt in self.WANTED for v in (Verb.WILL, Verb.DO))
        out = b"".join(n.encode() for n in offers)
        for code, value in _settings_subnegotiations(params):
            out += subnegotiation(rfc2217.COM_PORT_OPTION + code + value)
        return out

    def data_received(self, data: bytes) -> None:
        got = self._telnet.feed(data)
        if got.replies:
            self._send(got.answer)
        for body in got.subnegotiations:
            log.debug("RFC 2217 gateway %s says %r", self._name, body)
        for err in got.errors:
            log.warning("RFC 2217 gateway %s: %s", self._name, err)
        if got.data:
            self.receiver.data_received(got.data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.receiver.connection_lost(exc)


def _settings_subnegotiations(params: dict[str, int | float | str]) -> list[tuple[bytes, bytes]]:
    """(RFC 2217 SET-… code, value) for each port setting present in `params`."""
    out: list[tuple[bytes, bytes]] = []
    if "baudrate" in params:
        out.append((rfc2217.SET_BAUDRATE, struct.pack("!I", int(params["baudrate"]))))
    if "bytesize" in params:
        out.append((rfc2217.SET_DATASIZE, struct.pack("!B", int(params["bytesize"]))))
    if "parity" in params:
        parity = rfc2217.RFC2217_PARITY_MAP[str(params["parity"])]
        out.append((rfc2217.SET_PARITY, struct.pack("!B", parity)))
    if "stopbits" in params:
        stopbits = rfc2217.RFC2217_STOPBIT_MAP[float(params["stopbits"])]
        out.append((rfc2217.SET_STOPSIZE, struct.pack("!B", stopbits)))
    if params.get("rtscts"):
        out.append((rfc2217.SET_CONTROL, rfc2217.SET_CONTROL_USE_HW_FLOW_CONTROL))
    elif params.get("xonxoff"):
        out.append((rfc2217.SET_CONTROL, rfc2217.SET_CONTROL_USE_SW_FLOW_CONTROL))
    elif "rtscts" in params or "xonxoff" in params:
        out.append((rfc2217.SET_CONTROL, rfc2217.SET_CONTROL_USE_NO_FLOW_CONTROL))
    return out


class Rfc2217Transport(TcpTransport):
    """A serial port behind an RFC 2217 gateway (`rfc2217://host:port?baudrate=…`).

    Port settings given in the URL are sent to the gateway on connect; settings the
    URL leaves out keep the gateway's own configuration.
    """

    async def open(self, receiver: Receiver) -> None:
        telnet = _Telnet(receiver, super().write, f"{self.url.host}:{self.url.port}")
        await super().open(telnet)
        super().write(telnet.hello(self.url.params))

    def write(self, data: bytes) -> None:
        super().write(escape(data))
