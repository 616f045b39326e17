"""PJLink device options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from drivers.config import DeviceConfig, Duration
from drivers.pjlink.codec import MAX_PASSWORD, PORT, is_input_code


class PjlinkConfig(DeviceConfig):
    """A PJLink class 1/2 projector or display."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["pjlink"]
    password: str | None = Field(None, max_length=MAX_PASSWORD)
    inputs: dict[str, str] = Field(
        default_factory=dict, description='input names by PJLink code, e.g. {"31": "Laptop"}'
    )
    transition_poll: Duration = Field(1.0, gt=0, description="power poll while warming/cooling")
    power_settle: Duration = Field(
        15.0, ge=0, description="after a power command, how long a stale power report is ignored"
    )
    detail_interval: Duration = Field(
        10.0,
        gt=0,
        description="error status, input resolution and freeze (never more often than"
        " poll_interval): they rarely change, and class 2 projectors push errors",
    )
    poll_in_standby: bool = Field(
        False,
        description="also ask input, mutes, resolution and freeze while the projector is not"
        " on (most answer ERR3 then; turning on reads them at once)",
    )
    lamp_interval: Duration = Field(60.0, gt=0)
    info_interval: Duration = Field(600.0, gt=0)

    @field_validator("inputs")
    @classmethod
    def _codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, name in value.items():
            if not is_input_code(code):
                raise ValueError(f"{code!r} is not a PJLink input code (like 31 or 3A)")
            if not name.strip():
                raise ValueError(f"input {code} needs a non-empty name")
        return value
