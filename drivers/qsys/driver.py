"""Q-SYS QRC driver: named and component controls, change-group pushes, NoOp keep-alive."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from drivers.actions import Args, action, config_in
from drivers.base import NOT_MINE, Driver, PollGroup
from drivers.errors import (
    AuthError,
    AvhubError,
    CommandError,
    DeviceError,
    ErrorCode,
    ProtocolError,
)
from drivers.qsys.codec import Message, QrcError, QrcFramer, Request, Response, RpcError
from drivers.qsys.config import QsysConfig
from drivers.transport import ConnectionState

log = logging.getLogger("avhub.driver.qsys")

GROUP_ID = "avhub"
"""Our change group; groups live per connection, so one fixed Id is enough."""
_MAX_ID = 2**31 - 1

Kind = Literal["level", "mute"]
Address = tuple[str | None, str]
"""(component or None for a Named Control, control name)."""

_INVALID_ARGS = (QrcError.UNKNOWN_COMPONENT, QrcError.UNKNOWN_CONTROL, QrcError.INVALID_PARAMS)


class QrcDeviceError(DeviceError):
    """The Core answered a JSON-RPC error; `rpc_code` is its code."""

    def __init__(self, message: str, rpc_code: int) -> None:
        code = ErrorCode.DEVICE_ERROR
        if rpc_code in _INVALID_ARGS:
            code = ErrorCode.INVALID_ARGS
        elif rpc_code == QrcError.STANDBY:
            code = ErrorCode.BUSY
        super().__init__(code, message)
        self.rpc_code = rpc_code


class _Channel(Args):
    """Arguments naming a channel; checked against the device config when it is given."""

    kind: ClassVar[Kind] = "level"
    control: str = Field(description="channel name from the device's `controls`")

    @field_validator("control")
    @classmethod
    def _known(cls, control: str, info: ValidationInfo) -> str:
        config = config_in(info)
        if isinstance(config, QsysConfig):
            config.address(control, cls.kind)
        return control


class SetLevel(_Channel):
    level: float = Field(allow_inf_nan=False, description="gain in dB")
    ramp: float | None = Field(None, ge=0, le=3600, description="ramp time in seconds")


class SetMute(_Channel):
    kind: ClassVar[Kind] = "mute"
    mute: bool


class RecallPreset(Args):
    preset: str = Field(description="preset name from the device's `presets`")

    @field_validator("preset")
    @classmethod
    def _known(cls, preset: str, info: ValidationInfo) -> str:
        config = config_in(info)
        if isinstance(config, QsysConfig):
            config.preset(preset)
        return preset


def _label(address: Address) -> str:
    component, control = address
    return f"{component}/{control}" if component else control


def _level(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), 2)
    return None


def _mute(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return None


class QsysDriver(Driver[QsysConfig, Message]):
    """A Q-SYS Core on TCP 1710: JSON-RPC 2.0 messages, each ended by a NUL byte.

    Every configured control joins one change group that the Core AutoPolls, so
    front-panel and UCI changes push; the group dies with the connection and is
    re-created after every (re)connect and after a design reload. Replies are
    matched by `id`; notifications in between go to `unsolicited`.
    """

    name = "qsys"
    persistent = True

    _last_id = 0
    _group_for: str | None = None  # design code the change group was made for; None: no group

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = {n: {"label": c.label} for n, c in self.config.controls.items() if c.label}
        if labels:  # what panels call the channels
            self.state["controls"] = labels

    def create_framer(self) -> QrcFramer:
        return QrcFramer()

    @cached_property
    def _targets(self) -> dict[Address, tuple[str, Kind]]:
        """Each configured control → (channel, level|mute)."""
        targets: dict[Address, tuple[str, Kind]] = {}
        for channel, entry in self.config.controls.items():
            if entry.level is not None:
                targets[(entry.component, entry.level)] = (channel, "level")
            if entry.mute is not None:
                targets[(entry.component, entry.mute)] = (channel, "mute")
        return targets

    # ---- session ----------------------------------------------------------------------

    async def login(self) -> None:
        """Log on (a notification: its reply is undocumented), then read status and make the group.

        A wrong logon shows as error 10 on the StatusGet that follows.
        """
        self._group_for = None
        cfg = self.config
        if cfg.user is not None:
            self.send(Request("Logon", {"User": cfg.user, "Password": cfg.password}).encode())
        if cfg.presets:
            self.update(presets=list(cfg.presets))
        await self._poll_status()

    async def ask(self, method: str, params: Any = None, about: str = "") -> object:
        """One JSON-RPC request; returns its `result`, raises the mapped error for an `error`."""
        self._last_id = self._last_id % _MAX_ID + 1
        request_id = self._last_id

        def match(message: Message) -> object:
            if not isinstance(message, Response) or message.id != request_id:
                return NOT_MINE
            if message.error is not None:
                raise self._error(method, about, message.error)
            return message.result

        return await self.request(Request(method, params, request_id).encode(), match)

    def _error(self, method: str, about: str, error: RpcError) -> AvhubError:
        what = f"{method} {about}".strip()
        if error.code == QrcError.LOGON_REQUIRED:
            hint = (
                "check the configured user and password"
                if self.config.user is not None
                else "the Core has access control on: configure user and password"
            )
            return AuthError(f"{self.label}: Core refused {what}: {error.describe()}; {hint}")
        text = f"{self.label}: {what}: {error.describe()}"
        if error.code == QrcError.STANDBY:
            text += " (this is the standby Core of a redundant pair)"
        return QrcDeviceError(text, error.code)

    def unsolicited(self, frame: Message) -> None:
        if isinstance(frame, Request):
            if frame.method == "EngineStatus":
                self._engine_status(frame.params)
            elif frame.method == "ChangeGroup.Poll":
                self._apply_poll(frame.params)
            else:
                log.debug("%s: ignored notification %s", self.label, frame.method)
        elif frame.error is not None:
            log.warning("%s: Core reported %s", self.label, frame.error.describe())
        elif isinstance(frame.result, dict) and "Changes" in frame.result:
            self._apply_poll(frame.result)  # AutoPoll pushes as documented: a result with an id
        else:
            log.debug("%s: reply to no pending request: %r", self.label, frame)

    # ---- status and the change group --------------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        cfg = self.config
        groups = [PollGroup("status", self._poll_status, lambda: cfg.poll_interval)]
        if cfg.keepalive is not None:
            keepalive = cfg.keepalive
            groups.append(PollGroup("keepalive", self._keepalive, lambda: keepalive))
        return groups

    async def _keepalive(self) -> None:
        await self.ask("NoOp", {})

    async def _poll_status(self) -> None:
        """StatusGet; (re)make the change group when the Core runs a design it was not made for."""
        status = self._apply_status(await self.ask("StatusGet", 0))
        design = str(status.get("DesignCode") or "")
        if status.get("State") == "Active" and self._group_for != design:
            await self._make_change_group()
            self._group_for = design

    def _engine_status(self, status: object) -> None:
        status = self._apply_status(status)
        if status.get("State") != "Active":
            self._group_for = None  # a design (re)load deletes every change group
        elif (
            self._group_for != str(status.get("DesignCode") or "")
            and self.conn_state is ConnectionState.ONLINE
        ):
            self.refresh(["status"])

    def _apply_status(self, status: object) -> dict[str, Any]:
        if not isinstance(status, dict):
            raise ProtocolError(f"status is not an object: {status!r}")
        changes: dict[str, Any] = {
            "engine_state": status.get("State"),
            "design_name": status.get("DesignName"),
            "design_code": status.get("DesignCode"),
            "is_redundant": status.get("IsRedundant"),
            "is_emulator": status.get("IsEmulator"),
        }
        if "Platform" in status:
            changes["platform"] = status["Platform"]
        detail = status.get("Status")
        if isinstance(detail, dict) and "String" in detail:
            changes["status"] = detail["String"]
        self.update(changes)
        return status

    async def _make_change_group(self) -> None:
        """Add every configured control, read them all once, then let the Core AutoPoll."""
        by_component: dict[str | None, list[str]] = {}
        for component, control in self._targets:
            by_component.setdefault(component, []).append(control)
        unknown: list[str] = []
        for component, controls in by_component.items():
            unknown += await self._add_to_group(component, controls)
        self.update(unknown_controls=unknown)
        if unknown:
            log.warning(
                "%s: the design has no %s; check the device's controls",
                self.label,
                ", ".join(repr(u) for u in unknown),
            )
        if len(unknown) == len(self._targets):
            return
        self._apply_poll(await self.ask("ChangeGroup.Poll", {"Id": GROUP_ID}))
        rate = {"Id": GROUP_ID, "Rate": self.config.autopoll_rate}
        first = await self.ask("ChangeGroup.AutoPoll", rate)
        if isinstance(first, dict) and "Changes" in first:
            self._apply_poll(first)

    async def _add_to_group(self, component: str | None, controls: list[str]) -> list[str]:
        """Add controls; returns those the design lacks (a typo must not sink the others)."""
        params: dict[str, Any]
        if component is None:
            method, params = "ChangeGroup.AddControl", {"Id": GROUP_ID, "Controls": controls}
        else:
            method = "ChangeGroup.AddComponentControl"
            listed = [{"Name": c} for c in controls]
            params = {"Id": GROUP_ID, "Component": {"Name": component, "Controls": listed}}
        try:
            await self.ask(method, params, self._about(component, controls))
            return []
        except QrcDeviceError as err:
            if err.rpc_code not in (QrcError.UNKNOWN_COMPONENT, QrcError.UNKNOWN_CONTROL):
                raise
            if err.rpc_code == QrcError.UNKNOWN_COMPONENT or len(controls) == 1:
                return [_label((component, c)) for c in controls]
        unknown: list[str] = []
        for control in controls:  # find the culprits one by one
            unknown += await self._add_to_group(component, [control])
        return unknown

    def _apply_poll(self, result: object) -> None:
        if not isinstance(result, dict) or not isinstance(result.get("Changes"), list):
            raise ProtocolError(f"change group result without Changes: {result!r}")
        if result.get("Id") != GROUP_ID:
            log.debug("%s: changes of another group %r ignored", self.label, result.get("Id"))
            return
        self._apply_controls(result["Changes"])

    def _apply_controls(self, entries: Iterable[object], component: str | None = None) -> None:
        """Control values (Get results, change-group Changes) → `levels` / `mutes`."""
        levels = dict(self.state.get("levels") or {})
        mutes = dict(self.state.get("mutes") or {})
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str):
                log.warning("%s: skipped malformed control entry %r", self.label, entry)
                continue
            address = (entry.get("Component", component), entry["Name"])
            target = self._targets.get(address)
            if target is None:
                continue
            channel, kind = target
            value = (_level if kind == "level" else _mute)(entry.get("Value"))
            if value is None:
                log.warning("%s: skipped bad value for %s: %r", self.label, _label(address), entry)
            elif kind == "level":
                levels[channel] = value
            else:
                mutes[channel] = value
        self.update(levels=levels, mutes=mutes)

    # ---- controls -----------------------------------------------------------------------

    @staticmethod
    def _about(component: str | None, controls: list[str]) -> str:
        names = ", ".join(repr(c) for c in controls)
        return f"{names} of component {component!r}" if component else names

    def _address(self, channel: str, kind: Kind) -> Address:
        try:
            return self.config.address(channel, kind)
        except ValueError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, f"{self.device_id} has {err}") from None

    async def _set(self, address: Address, value: Any, ramp: float | None = None) -> None:
        """Set one control, then read it back so the new value is published before the ack."""
        component, control = address
        item: dict[str, Any] = {"Name": control, "Value": value}
        if ramp:
            item["Ramp"] = ramp
        about = self._about(component, [control])
        if component is None:
            await self.ask("Control.Set", item, about)
            values = await self.ask("Control.Get", [control], about)
            if not isinstance(values, list):
                raise ProtocolError(f"Control.Get result is not a list: {values!r}")
            self._apply_controls(values)
            return
        result = await self.ask("Component.Set", {"Name": component, "Controls": [item]}, about)
        if isinstance(result, list) and result:  # "returns a list of unknown controls"
            raise QrcDeviceError(
                f"{self.label}: component {component!r} has no control {result!r}",
                QrcError.UNKNOWN_CONTROL,
            )
        read = {"Name": component, "Controls": [{"Name": control}]}
        reply = await self.ask("Component.Get", read, about)
        if not isinstance(reply, dict) or not isinstance(reply.get("Controls"), list):
            raise ProtocolError(f"Component.Get result without Controls: {reply!r}")
        self._apply_controls(reply["Controls"], component)

    @action(
        SetLevel,
        coalesce=lambda args: ("level", args.control),
        description="set a channel's gain in dB, optionally ramping over `ramp` seconds",
    )
    async def set_level(self, args: SetLevel) -> None:
        await self._set(self._address(args.control, "level"), args.level, args.ramp)

    @action(SetMute, coalesce=lambda args: ("mute", args.control), description="mute a channel")
    async def set_mute(self, args: SetMute) -> None:
        await self._set(self._address(args.control, "mute"), args.mute)

    @action(RecallPreset, coalesce="preset", description="load a snapshot bank")
    async def recall_preset(self, args: RecallPreset) -> None:
        try:
            preset = self.config.preset(args.preset)
        except ValueError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, f"{self.device_id} has {err}") from None
        params: dict[str, Any] = {"Name": preset.snapshot, "Bank": preset.bank}
        if preset.ramp:
            params["Ramp"] = preset.ramp
        await self.ask("Snapshot.Load", params, f"{preset.snapshot!r} bank {preset.bank}")
        self.update(preset=args.preset)
