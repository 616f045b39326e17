"""Epson ESC/VP21 device options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from drivers.config import Duration
from drivers.epson_escvp.codec import MAX_PASSWORD, PORT, is_code
from drivers.projector import ProjectorConfig

DEFAULT_INPUTS = ("30", "A0", "10", "52")
"""What `inputs` lists when the config names none: HDMI, HDMI 2, Computer 1, LAN."""


class EpsonEscvpConfig(ProjectorConfig):
    """An Epson projector speaking ESC/VP21: ESC/VP.net on TCP 3629, or RS-232 (9600 8N1)."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["epson_escvp"]
    handshake: bool | None = Field(
        None,
        description="open with the ESC/VP.net handshake; unset: on for tcp://, off on a serial"
        " line (serial://, and socket:// or rfc2217:// to a serial gateway)",
    )
    password: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PASSWORD,
        description="ESC/VP.net password, sent in the handshake (network only; the field"
        " layout is unconfirmed)",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description='the projector\'s inputs by SOURCE code and room names for them, e.g. {"30":'
        ' "Laptop"}; unset: 30, A0, 10 and 52',
    )
    power_timeout: Duration = Field(
        130.0,
        gt=0,
        description="how long PWR ON / PWR OFF may take: the projector answers when the lamp"
        " has ignited (20-40 s, up to 130 s on some models)",
    )
    source_timeout: Duration = Field(
        10.0, gt=0, description="how long SOURCE may take (the projector waits for a stable signal)"
    )

    @field_validator("inputs")
    @classmethod
    def _source_codes(cls, value: dict[str, str]) -> dict[str, str]:
        names: set[str] = set()
        codes: dict[str, str] = {}
        for code, name in value.items():
            if not is_code(code.upper()):
                raise ValueError(f"{code!r} is not a SOURCE code (two hex digits, like 30 or A0)")
            if code.upper() in codes:
                raise ValueError(f"input {code!r} is listed twice")
            if not name.strip():
                raise ValueError(f"input {code} needs a non-empty name")
            if name.casefold() in names:
                raise ValueError(f"two inputs are named {name!r}")
            names.add(name.casefold())
            codes[code.upper()] = name
        return codes

    def uses_handshake(self) -> bool:
        """Whether connections open with the ESC/VP.net handshake."""
        if self.handshake is not None:
            return self.handshake
        return not self.transport.is_serial

    def input_codes(self) -> list[str]:
        """The configured SOURCE codes, or the default four."""
        return list(self.inputs) or list(DEFAULT_INPUTS)
