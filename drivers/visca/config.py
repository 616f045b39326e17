"""VISCA camera options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drivers.config import DeviceConfig, Duration
from drivers.visca.codec import PORT


class ViscaConfig(DeviceConfig):
    """A PTZ camera speaking VISCA: `udp://` (Sony VISCA over IP) or a serial line."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["visca"]
    timeout: Duration = Field(
        1.0, gt=0, description="wait for an ACK or inquiry reply before retransmitting"
    )
    retries: int = Field(3, ge=0, le=10, description="retransmissions of an unanswered message")
    completion_timeout: Duration = Field(
        15.0, gt=0, description="wait for a command's completion after its ACK (power-up, moves)"
    )
    address: int = Field(1, ge=1, le=7, description="camera address on a serial daisy chain")
    presets: int = Field(16, ge=1, le=256, description="number of presets the camera has (0..N-1)")
    max_pan_speed: int = Field(0x18, ge=1, le=0xFF, description="fastest pan speed the model takes")
    max_tilt_speed: int = Field(
        0x14, ge=1, le=0xFF, description="fastest tilt speed the model takes"
    )
