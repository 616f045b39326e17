"""Extron SIS switcher options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drivers.config import DeviceConfig, Duration
from drivers.extron_sis.codec import PORT

MAX_PORTS = 999  # SIS takes up to 3-digit input and output numbers


class ExtronSisConfig(DeviceConfig):
    """An Extron matrix switcher (DXP, CrossPoint, MAV, ...) speaking SIS over Telnet or RS-232."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["extron_sis"]
    password: str | None = Field(
        None, min_length=1, description="administrator (or user) password; unset: none"
    )
    inputs: int | None = Field(
        None, ge=1, le=MAX_PORTS, description="number of inputs; unset: asked with `I`"
    )
    outputs: int | None = Field(
        None, ge=1, le=MAX_PORTS, description="number of outputs; unset: asked with `I`"
    )
    audio: bool = Field(True, description="switches audio too, with breakaway (`$` ties)")
    volume: bool = Field(False, description="outputs have volume (HVA models): `levels` in dB")
    audio_mute: bool = Field(False, description="outputs have audio mute: `mutes`")
    video_mute: bool = Field(False, description="outputs have video mute: `video_mutes`")
    prompt_wait: Duration = Field(
        0.5,
        gt=0,
        description="after the banner, how long a Password: prompt may take before the "
        "switcher counts as having no password (TCP only)",
    )
