"""`hub.cluster`: how this hub takes part in a cluster (`hub.store: redis://…`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from drivers.config import Duration


class ClusterSettings(BaseModel):
    """Node identity, device leases and forwarded commands; ignored with `store: memory`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$",
        description="this hub's name in the cluster; default: <host name>:<port>-<random>",
    )
    lease_ttl: Duration = Field(
        10.0,
        ge=0.5,
        le=300,
        description="a device's owner renews its lease within this time or loses the device",
    )
    command_timeout: Duration = Field(
        30.0,
        gt=0,
        description="longest a command waits for a hub to own its device (e.g. a takeover)",
    )
