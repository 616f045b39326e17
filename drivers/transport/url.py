"""Transport URLs (DESIGN.md §4): parsed once, validated strictly."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

SCHEMES = ("tcp", "udp", "serial", "socket", "rfc2217")
ParamRule = tuple[type, tuple[object, ...] | None]
SERIAL_PARAMS: dict[str, ParamRule] = {
    "baudrate": (int, None),
    "bytesize": (int, (5, 6, 7, 8)),
    "parity": (str, ("N", "E", "O", "M", "S")),
    "stopbits": (float, (1.0, 1.5, 2.0)),
    "rtscts": (int, (0, 1)),
    "xonxoff": (int, (0, 1)),
}
UDP_PARAMS: dict[str, ParamRule] = {"local_port": (int, None)}


@dataclass(frozen=True, slots=True)
class TransportUrl:
    """A validated transport address; `str()` gives back the canonical URL."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    params: dict[str, int | float | str] = field(default_factory=dict)

    @property
    def is_serial(self) -> bool:
        """True for transports that carry an RS-232 line (local or behind a gateway)."""
        return self.scheme in ("serial", "socket", "rfc2217")

    def with_address(self, host: str, port: int) -> TransportUrl:
        """The same URL aimed at another host and port (used by `--simulate`)."""
        return TransportUrl(self.scheme, host, port, self.path, dict(self.params))

    def __str__(self) -> str:
        query = "&".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        suffix = f"?{query}" if query else ""
        if self.scheme == "serial":
            return f"serial://{self.path}{suffix}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{suffix}"


def _fmt(value: int | float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_transport_url(text: str, default_port: int | None = None) -> TransportUrl:
    """Parse `text` or raise ValueError with a message fit for `avhub check`."""
    if not isinstance(text, str) or "://" not in text:
        raise ValueError(f"expected a transport URL like tcp://host:port, got {text!r}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown transport scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )
    allowed = {"serial": SERIAL_PARAMS, "rfc2217": SERIAL_PARAMS, "udp": UDP_PARAMS}.get(scheme, {})
    params = _parse_params(parts.query, allowed, scheme)
    if scheme == "serial":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(
                f"serial URL needs a device path like serial:///dev/ttyUSB0, got {text!r}"
            )
        return TransportUrl(scheme, path=parts.path, params=params)
    if not parts.hostname:
        raise ValueError(f"{scheme} URL needs a host, got {text!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"{scheme} URL takes no path, got {parts.path!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"bad port in {text!r}: {err}") from None
    if port is None:
        if default_port is None:
            raise ValueError(f"{scheme} URL needs a port, got {text!r}")
        port = default_port
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, got {port}")
    if "local_port" in params and not 0 <= int(params["local_port"]) <= 65535:
        raise ValueError(f"local_port must be 0-65535, got {params['local_port']}")
    return TransportUrl(scheme, parts.hostname, port, params=params)


def _parse_params(
    query: str, allowed: dict[str, ParamRule], scheme: str
) -> dict[str, int | float | str]:
    params: dict[str, int | float | str] = {}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise ValueError(f"unknown {scheme} URL parameter {key!r} (allowed: {names})")
        kind, choices = allowed[key]
        try:
            value: int | float | str = kind(raw.upper() if kind is str else raw)
        except ValueError:
            raise ValueError(
                f"URL parameter {key}={raw!r} is not a valid {kind.__name__}"
            ) from None
        if choices is not None and value not in choices:
            raise ValueError(f"URL parameter {key}={raw!r} must be one of {choices}")
        if key == "baudrate" and not 50 <= int(value) <= 4_000_000:
            raise ValueError(f"baudrate {raw!r} is out of range")
        params[key] = value
    return params
