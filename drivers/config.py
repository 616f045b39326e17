"""Typed device configuration shared by every driver (DESIGN.md §6)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from drivers.transport.url import TransportUrl, parse_transport_url

_PORT = re.compile(r"\d{1,5}", re.ASCII)
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """`5s`, `250ms`, `2m`, `1h` or a bare number of seconds → seconds as float."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 5s or 250ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like 5s or 250ms, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite time, got {value!r}")
    return seconds


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) → (host, port), or ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or any(c.isspace() for c in host):
        raise ValueError(f"expected HOST:PORT like 127.0.0.1:8080, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"put an IPv6 address in brackets, like [::1]:8080, got {text!r}")
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise ValueError(f"port must be 0-65535, got {port!r}")
    return host, int(port)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as `5s`, `250ms`, `2m` or a number."""

TransportField = Annotated[
    TransportUrl,
    PlainSerializer(str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "description": "tcp://, udp://, serial://, socket:// or rfc2217:// URL",
        }
    ),
]

_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
"""One `model_fields_set` per combination of keys a deployment file sets (see DeviceConfig)."""


class DeviceConfig(BaseModel):
    """Settings every device has; each driver subclasses this with its own options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_port: ClassVar[int | None] = None

    driver: str
    name: str | None = None
    transport: TransportField
    poll_interval: Duration = Field(5.0, gt=0)
    timeout: Duration = Field(5.0, gt=0, description="per-request reply timeout")
    connect_timeout: Duration = Field(5.0, gt=0)
    retries: int = Field(2, ge=0, le=10, description="extra tries after a failed request")
    offline_after: int = Field(3, ge=1, le=100, description="consecutive failures → offline")
    command_delay: Duration = Field(0.0, ge=0, description="minimum gap between requests")
    reconnect_min: Duration = Field(1.0, gt=0)
    reconnect_max: Duration = Field(30.0, gt=0)
    lockout: Literal["hold", "reject"] = Field(
        "hold", description="power/input commands during warm-up/cool-down: wait, or answer busy"
    )
    lockout_timeout: Duration = Field(180.0, gt=0, description="longest a held command waits")
    simulator: dict[str, Any] | None = Field(
        None, description="simulator knobs used by `avhub run --simulate`"
    )

    @field_validator("transport", mode="before")
    @classmethod
    def _parse_transport(cls, value: object, info: ValidationInfo) -> TransportUrl:
        if isinstance(value, TransportUrl):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a transport URL string, got {type(value).__name__}")
        return parse_transport_url(value, cls.default_port)

    @field_validator("reconnect_max")
    @classmethod
    def _max_after_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("reconnect_min")
        if low is not None and value < low:
            raise ValueError(f"reconnect_max ({value}s) is below reconnect_min ({low}s)")
        return value

    @model_validator(mode="after")
    def _share_fields_set(self) -> Self:
        """Devices configured with the same keys share one set of them.

        Pydantic keeps a set of the keys given per model instance, grown key by key to
        728 bytes for five keys. A frozen model never changes it (`model_copy` changes
        a copy), so equal ones can be one.
        """
        given = frozenset(self.__pydantic_fields_set__)
        shared = _FIELDS_SETS.setdefault(given, set(given))
        object.__setattr__(self, "__pydantic_fields_set__", shared)
        return self
