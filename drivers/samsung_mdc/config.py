"""Samsung MDC display options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from drivers.config import DeviceConfig, Duration
from drivers.samsung_mdc.codec import MAX_ID, PORT, input_code


class SamsungMdcConfig(DeviceConfig):
    """A Samsung display speaking MDC over TCP 1515 or RS-232 (9600 8N1)."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["samsung_mdc"]
    display_id: int = Field(
        0,
        ge=0,
        le=MAX_ID,
        description="display ID set in the display's menu (0-253); 254 reaches any display",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description='the display\'s inputs and room names for them, e.g. {"HDMI 1": "Laptop"}; '
        "keys are MDC input names or hex codes (0x21)",
    )
    warmup: Duration = Field(
        5.0,
        ge=0,
        description="how long power stays 'warming' after power on while the display boots",
    )
    transition_poll: Duration = Field(1.0, gt=0, description="status poll while warming")
    info_interval: Duration = Field(600.0, gt=0, description="model/serial/version poll")

    @field_validator("inputs")
    @classmethod
    def _known_inputs(cls, value: dict[str, str]) -> dict[str, str]:
        codes: set[int] = set()
        labels: set[str] = set()
        for key, label in value.items():
            code = input_code(key)
            if code is None:
                raise ValueError(
                    f"{key!r} is not an MDC input (use a name like 'HDMI 1' or a hex code like 0x21)"
                )
            if code in codes:
                raise ValueError(f"input {key!r} is listed twice")
            if not label.strip():
                raise ValueError(f"input {key!r} needs a non-empty name")
            if label.casefold() in labels:
                raise ValueError(f"two inputs are named {label!r}")
            codes.add(code)
            labels.add(label.casefold())
        return value

    def input_labels(self) -> dict[int, str]:
        """Configured inputs by MDC code, in config order."""
        return {
            code: label
            for key, label in self.inputs.items()
            if (code := input_code(key)) is not None
        }
