"""One rooted exception tree, and the error codes panels see (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes of the panel protocol (contract)."""

    UNAUTHORIZED = "unauthorized"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_ARGS = "invalid_args"
    DEVICE_OFFLINE = "device_offline"
    BUSY = "busy"
    TIMEOUT = "timeout"
    DEVICE_ERROR = "device_error"
    CANCELLED = "cancelled"  # a macro stopped by the room device's `cancel`
    INTERNAL = "internal"
    STORE_UNAVAILABLE = "store_unavailable"  # Redis (hub.store) cannot be reached


class OfflineReason(StrEnum):
    """Why a device is offline; published as the `offline_reason` state key."""

    STARTING = "starting"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    CLOSED = "closed"
    AUTH_FAILED = "auth_failed"
    PROTOCOL_ERROR = "protocol_error"
    PORT_GONE = "port_gone"


LINK_KEYS = frozenset({"online", "offline_reason"})
"""The state keys every device has that say how the hub reaches it, not what it is doing."""


class AvhubError(Exception):
    """Root of every error avhub raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL


class ConfigError(AvhubError):
    """A deployment file is invalid."""


class TransportError(AvhubError):
    """Bytes could not be moved to or from a device."""

    code = ErrorCode.DEVICE_OFFLINE
    reason: OfflineReason = OfflineReason.CLOSED


class ConnectError(TransportError):
    """Opening the transport failed."""

    def __init__(self, message: str, reason: OfflineReason = OfflineReason.REFUSED) -> None:
        super().__init__(message)
        self.reason = reason


class ConnectionClosed(TransportError):
    """The transport closed while a request needed it."""

    reason = OfflineReason.CLOSED


class ProtocolError(AvhubError):
    """Bytes from a device that do not follow its protocol."""

    code = ErrorCode.DEVICE_ERROR


class DeviceError(AvhubError):
    """The device understood and said no; `code` says how the panel should read it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class AuthError(TransportError):
    """The device refused our credentials; retried only with the longest backoff."""

    reason = OfflineReason.AUTH_FAILED


class CommandTimeout(AvhubError, TimeoutError):
    """The device did not answer a request in time."""

    code = ErrorCode.TIMEOUT


class CommandError(AvhubError):
    """A command was refused before reaching the device (unknown action, bad args, busy...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
