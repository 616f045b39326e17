"""Q-SYS Core simulator speaking QRC (protocols/qsys-qrc.md §6)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.qsys.codec import (
    MAX_MESSAGE,
    PORT,
    TERMINATOR,
    InvalidMessage,
    QrcError,
    Request,
    Response,
    RpcError,
    decode,
    is_blank,
)
from drivers.qsys.config import QsysConfig
from simulators.base import AuthKnobs, Session, Simulator

log = logging.getLogger(__name__)

ControlType = Literal["gain", "mute", "boolean", "float", "integer", "string"]
EngineState = Literal["Active", "Standby", "Idle"]
Address = tuple[str | None, str]
"""(component or None for a Named Control, control name)."""
Value = float | int | bool | str

_RANGES: dict[str, tuple[float, float]] = {
    "gain": (-100.0, 20.0),
    "float": (0.0, 1.0),
    "integer": (0.0, 100.0),
}
_OPEN_METHODS = ("Logon", "NoOp")  # answered without a logon
_STANDBY_METHODS = ("Logon", "NoOp", "StatusGet")  # answered by a standby Core


class ControlSpec(BaseModel):
    """One simulated control: its type, start value and range."""

    model_config = ConfigDict(extra="forbid")

    type: ControlType = "gain"
    value: float | bool | str | None = Field(
        None, description="start value; unset: 0 dB, off, empty or the minimum"
    )
    min: float | None = Field(None, description="ValueMin (gain: -100, float: 0, integer: 0)")
    max: float | None = Field(None, description="ValueMax (gain: 20, float: 1, integer: 100)")

    @model_validator(mode="after")
    def _value_fits(self) -> Self:
        _Control(self)  # ValueError when the start value does not suit the type
        return self


def _default_controls() -> dict[str, Any]:
    return {"MainGain": {"type": "gain", "value": -12.0}, "MainMute": {"type": "mute"}}


def _default_components() -> dict[str, Any]:
    return {"Mic 1": {"gain": {"type": "gain"}, "mute": {"type": "mute"}}}


class QsysKnobs(AuthKnobs):
    """Q-SYS Core knobs. Controls, components and engine state only set the start state."""

    # Plain-data defaults, validated like given values, so the CLI can print them.
    controls: dict[str, ControlSpec] = Field(
        default_factory=_default_controls, validate_default=True, description="Named Controls"
    )
    components: dict[str, dict[str, ControlSpec]] = Field(
        default_factory=_default_components,
        validate_default=True,
        description="Named Components and their controls",
    )
    snapshots: dict[str, int] = Field(
        default_factory=lambda: {"Room Presets": 8}, description="snapshot components → banks"
    )
    user: str | None = Field(None, description="with password: require Logon")
    password: str | None = Field(None, description="with user: require Logon")
    state: Literal["Active", "Standby"] = Field("Active", description="engine state at start")
    design_name: str = Field("avhub-sim", description="DesignName")
    design_code: str = Field("qALFilm6IcCo", description="DesignCode")
    platform: str = Field("Core 110f", description="Platform (StatusGet)")
    is_emulator: bool = Field(True, description="IsEmulator")
    is_redundant: bool = Field(False, description="IsRedundant")
    autopoll_shape: Literal["notification", "result"] = Field(
        "notification",
        description="AutoPoll pushes as ChangeGroup.Poll notifications, or as results "
        "carrying the AutoPoll request's id (the documented shape)",
    )
    push_empty: bool = Field(False, description="AutoPoll pushes even without changes")
    interleave: bool = Field(
        False,
        description="before every response, push an EngineStatus notification and the "
        "client's pending change-group changes",
    )
    bool_values: Literal["bool", "number"] = Field(
        "bool", description="booleans as true/false, or as 1/0 like many Cores"
    )
    max_change_groups: int = Field(512, ge=0, description="change groups on the Core, all clients")
    reload_time: Duration = Field(0.2, ge=0, description="Idle time of a design reload")
    ramp_step: Duration = Field(0.05, gt=0, description="interval of ramp steps")
    idle_timeout: Duration | None = Field(
        60.0, gt=0, description="close a client that sent nothing for this long"
    )


class _Fault(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: QrcError, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Control:
    """A control's value, range and renderings."""

    def __init__(self, spec: ControlSpec) -> None:
        self.type = spec.type
        low, high = _RANGES.get(spec.type, (0.0, 1.0))
        self.min = low if spec.min is None else spec.min
        self.max = high if spec.max is None else spec.max
        start: object = spec.value
        if start is None:
            start = {"mute": False, "boolean": False, "string": "", "gain": 0.0}.get(
                spec.type, self.min
            )
        self.value: Value = self.coerce(start)
        self.ramp: asyncio.TimerHandle | None = None

    @property
    def numeric(self) -> bool:
        return self.type in _RANGES

    def coerce(self, raw: object) -> Value:
        """A value as this control stores it; ValueError when it cannot take it."""
        if self.type == "string":
            if not isinstance(raw, str):
                raise ValueError(f"expected a string, got {raw!r}")
            return raw
        if not isinstance(raw, int | float):  # bool is an int
            raise ValueError(f"expected a number or boolean, got {raw!r}")
        if self.type in ("mute", "boolean"):
            return bool(raw)
        number = min(self.max, max(self.min, float(raw)))
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {raw!r}")
        return round(number) if self.type == "integer" else number

    def string(self) -> str:
        value = self.value
        if self.type == "gain":
            return f"{value:.1f}dB"
        if self.type == "mute":
            return "muted" if value else "unmuted"
        if self.type == "boolean":
            return "true" if value else "false"
        if self.type == "float":
            return f"{value:.2f}"
        return str(value)

    def position(self) -> float:
        if isinstance(self.value, bool):
            return 1.0 if self.value else 0.0
        if not self.numeric or self.max == self.min:
            return 0.0
        return round((float(self.value) - self.min) / (self.max - self.min), 4)

    def wire_value(self, numbers: bool) -> Value:
        if isinstance(self.value, bool) and numbers:
            return 1.0 if self.value else 0.0
        return self.value


@dataclass(slots=True)
class _Group:
    members: list[Address] = field(default_factory=list)
    dirty: dict[Address, None] = field(default_factory=dict)  # ordered set
    timer: asyncio.TimerHandle | None = None
    autopoll_id: float | int | None = None

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(slots=True)
class _Client:
    session: Session
    logged_on: bool = False
    groups: dict[str, _Group] = field(default_factory=dict)


class QsysSimulator(Simulator[QsysKnobs]):
    """A Q-SYS Core: Named Controls, Named Components, change groups, snapshots, logon.

    On connect it pushes `EngineStatus`. With user and password set, every method
    but Logon and NoOp answers error 10 until a matching `Logon` (a notification, or
    a request answered `true` / error 10). Change groups belong to their connection
    and die with it; AutoPoll pushes only changed controls. A client that sends
    nothing for `idle_timeout` is dropped. `stop()` takes the Core off the network
    and drops every change group; control values are kept for `start()`.

    Faults: its device error is error -32603 (server error) for any request with an
    id; `fail_auth` requires a Logon even without user and password, and refuses every
    Logon. Snapshot banks survive a reboot; control values and engine state do not.
    """

    kind = "qsys"
    knobs_model = QsysKnobs
    default_port = PORT
    terminators = TERMINATOR
    line_end = TERMINATOR
    max_frame = MAX_MESSAGE

    @classmethod
    def options_for(cls, device: DeviceConfig) -> dict[str, Any]:
        """The device's controls, presets and logon, so `--simulate` matches the config."""
        if not isinstance(device, QsysConfig):
            return {}
        controls: dict[str, dict[str, str]] = {}
        components: dict[str, dict[str, dict[str, str]]] = {}
        for channel in device.controls.values():
            for name, kind in ((channel.level, "gain"), (channel.mute, "mute")):
                if name is None:
                    continue
                into = (
                    controls
                    if channel.component is None
                    else components.setdefault(channel.component, {})
                )
                into[name] = {"type": kind}
        snapshots: dict[str, int] = {}
        for preset in device.presets.values():
            snapshots[preset.snapshot] = max(snapshots.get(preset.snapshot, 0), preset.bank)
        options: dict[str, Any] = {"controls": controls, "components": components}
        if snapshots:
            options["snapshots"] = snapshots
        if device.user is not None:
            options.update(user=device.user, password=device.password)
        return options

    def __init__(self, knobs: QsysKnobs | None = None) -> None:
        super().__init__(knobs)
        self.received: Counter[str] = Counter()  # requests per method
        self.loaded: list[tuple[str, int]] = []  # Snapshot.Load calls, in order
        self._controls: dict[Address, _Control] = {}
        self._clients: dict[Session, _Client] = {}
        self._banks: dict[tuple[str, int], dict[Address, Value]] = {}
        self._reload: asyncio.TimerHandle | None = None
        self.reset_state()
        self._methods: dict[str, Callable[[_Client, Request], Any]] = {
            "Logon": self._logon,
            "NoOp": lambda client, request: True,
            "StatusGet": lambda client, request: self.status(),
            "Control.Get": self._control_get,
            "Control.Set": self._control_set,
            "Component.Get": self._component_get,
            "Component.Set": self._component_set,
            "Component.GetComponents": self._get_components,
            "Component.GetControls": self._get_controls,
            "ChangeGroup.AddControl": self._group_add,
            "ChangeGroup.AddComponentControl": self._group_add_component,
            "ChangeGroup.Remove": self._group_remove,
            "ChangeGroup.Poll": self._group_poll,
            "ChangeGroup.AutoPoll": self._group_autopoll,
            "ChangeGroup.Clear": self._group_clear,
            "ChangeGroup.Destroy": self._group_destroy,
            "ChangeGroup.Invalidate": self._group_invalidate,
            "Snapshot.Load": self._snapshot_load,
            "Snapshot.Save": self._snapshot_save,
        }

    def reset_state(self) -> None:
        """Control values, engine state and design as the knobs set them at start."""
        k = self.knobs
        for control in self._controls.values():
            if control.ramp is not None:
                control.ramp.cancel()
        if self._reload is not None:
            self._reload.cancel()
            self._reload = None
        self._controls = {(None, name): _Control(spec) for name, spec in k.controls.items()}
        for component, specs in k.components.items():
            for name, spec in specs.items():
                self._controls[(component, name)] = _Control(spec)
        self._state: EngineState = k.state
        self._design = (k.design_name, k.design_code)

    # -- state and front panel (tests; not over the network) -------------------------

    @property
    def engine_state(self) -> EngineState:
        return self._state

    @property
    def change_groups(self) -> int:
        """Change groups alive on the Core, all clients together."""
        return sum(len(c.groups) for c in self._clients.values())

    def value(self, name: str, component: str | None = None) -> Value:
        """A control's value; KeyError for an unknown control."""
        return self._controls[(component, name)].value

    def set_control(self, name: str, value: Value) -> None:
        """Move a Named Control as a user at a UCI would; KeyError/ValueError if impossible."""
        self._set((None, name), value)

    def set_component_control(self, component: str, name: str, value: Value) -> None:
        """Move a control of a Named Component; KeyError/ValueError if impossible."""
        self._set((component, name), value)

    def set_engine_state(self, state: Literal["Active", "Standby"]) -> None:
        """Make this the active or the standby Core of a redundant pair (pushes EngineStatus)."""
        self._state = state
        self._push_status()

    def reload_design(self, name: str | None = None, code: str | None = None) -> None:
        """Reload (or push a new) design: Idle for reload_time, change groups gone, then Active."""
        self._state = "Idle"
        self._push_status()
        for client in self._clients.values():
            self._drop_groups(client)
        self._design = (name or self._design[0], code or self._design[1])
        if self._reload is not None:
            self._reload.cancel()
        self._reload = asyncio.get_running_loop().call_later(
            self.knobs.reload_time, self.set_engine_state, "Active"
        )

    def save_snapshot(self, name: str, bank: int) -> None:
        """Store every control's value in a snapshot bank, as Snapshot.Save does."""
        self._banks[(name, bank)] = {a: c.value for a, c in self._controls.items()}

    def status(self) -> dict[str, Any]:
        """The StatusGet result."""
        return {
            "Platform": self.knobs.platform,
            **self._engine_status(),
            "Status": {"Code": 0, "String": "OK"}
            if self._state == "Active"
            else {
                "Code": 1,
                "String": self._state,
            },
        }

    def _engine_status(self) -> dict[str, Any]:
        return {
            "State": self._state,
            "DesignName": self._design[0],
            "DesignCode": self._design[1],
            "IsRedundant": self.knobs.is_redundant,
            "IsEmulator": self.knobs.is_emulator,
        }

    def _push_status(self) -> None:
        data = Request("EngineStatus", self._engine_status()).encode()
        for client in self._clients.values():
            client.session.push(data)

    # -- sessions ----------------------------------------------------------------------

    async def session_started(self, session: Session) -> None:
        self._clients[session] = _Client(session)
        await session.send(Request("EngineStatus", self._engine_status()).encode())

    def session_ended(self, session: Session) -> None:
        client = self._clients.pop(session, None)
        if client is not None:
            self._drop_groups(client)

    async def stop(self) -> None:
        await super().stop()
        for client in self._clients.values():
            self._drop_groups(client)
        self._clients.clear()

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        if is_blank(frame):
            return
        client = self._clients.get(session)
        if client is None:
            return
        try:
            message = decode(frame)
        except InvalidMessage as err:
            log.info("%s: %s", session, err)
            error = RpcError(err.rpc_code, str(err))
            await self._respond(client, Response(err.request_id, error=error))
            return
        if isinstance(message, Response):
            log.info("%s: ignoring a response from the client: %r", session, message)
            return
        self.received[message.method] += 1
        try:
            response = Response(message.id, self._call(client, message))
        except _Fault as fault:
            response = Response(message.id, error=RpcError(fault.code, str(fault)))
        if message.id is not None:
            await self._respond(client, response)

    def _call(self, client: _Client, request: Request) -> Any:
        handler = self._methods.get(request.method)
        if handler is None:
            raise _Fault(QrcError.METHOD_NOT_FOUND, f"Method not found: {request.method}")
        if self._needs_logon(client) and request.method not in _OPEN_METHODS:
            raise _Fault(QrcError.LOGON_REQUIRED, "Logon required")
        if self._state == "Standby" and request.method not in _STANDBY_METHODS:
            raise _Fault(QrcError.STANDBY, "Core is on Standby")
        if self._state == "Idle" and request.method not in _STANDBY_METHODS:
            raise _Fault(QrcError.SERVER_ERROR, "No design running")
        return handler(client, request)

    def _needs_logon(self, client: _Client) -> bool:
        k = self.knobs
        protected = k.user is not None or k.password is not None or k.fail_auth
        return protected and not client.logged_on

    async def device_error(self, session: Session, frame: bytes) -> bool:
        """Error -32603 (server error) for a request with an id; notifications get nothing."""
        client = self._clients.get(session)
        try:
            message = decode(frame)
        except InvalidMessage:
            return False
        if client is None or not isinstance(message, Request) or message.id is None:
            return False
        error = RpcError(QrcError.SERVER_ERROR, f"{message.method} failed")
        await self._respond(client, Response(message.id, error=error))
        return True

    async def _respond(self, client: _Client, response: Response) -> None:
        if self.knobs.interleave:
            await client.session.send(Request("EngineStatus", self._engine_status()).encode())
            for group_id, group in client.groups.items():
                if group.timer is not None and group.dirty:
                    await client.session.send(self._push(group_id, group))
        await client.session.send(response.encode())

    # -- controls ------------------------------------------------------------------------

    def _set(self, address: Address, raw: object, ramp: float = 0.0) -> None:
        control = self._controls[address]
        value = control.coerce(raw)
        if control.ramp is not None:
            control.ramp.cancel()
            control.ramp = None
        if ramp > 0 and control.numeric:
            self._ramp_step(address, float(control.value), float(value), ramp, 1)
        else:
            self._assign(address, value)

    def _assign(self, address: Address, value: Value) -> None:
        control = self._controls[address]
        if control.value == value and type(control.value) is type(value):
            return
        control.value = value
        for client in self._clients.values():
            for group in client.groups.values():
                if address in group.members:
                    group.dirty[address] = None

    def _ramp_step(self, address: Address, start: float, end: float, ramp: float, i: int) -> None:
        """Linear ramp: one step now, the next after ramp_step, until `end` is reached."""
        control = self._controls[address]
        steps = max(1, math.ceil(ramp / self.knobs.ramp_step))
        value = end if i >= steps else start + (end - start) * i / steps
        self._assign(address, control.coerce(value))
        control.ramp = None
        if i < steps:
            control.ramp = asyncio.get_running_loop().call_later(
                ramp / steps, self._ramp_step, address, start, end, ramp, i + 1
            )

    def _entry(self, address: Address, in_group: bool = True) -> dict[str, Any]:
        """A control as Get/Poll report it; change groups name the component of each entry."""
        component, name = address
        control = self._controls[address]
        entry: dict[str, Any] = {"Component": component} if component and in_group else {}
        entry.update(
            Name=name,
            Value=control.wire_value(self.knobs.bool_values == "number"),
            String=control.string(),
            Position=control.position(),
        )
        return entry

    def _details(self, address: Address) -> dict[str, Any]:
        """A Component.GetControls entry: the value plus type, range and direction."""
        control = self._controls[address]
        low, high = (control.min, control.max) if control.numeric else (0.0, 1.0)
        unit = "dB" if control.type == "gain" else ""
        kind = {"gain": "Float", "mute": "Boolean"}.get(control.type, control.type.capitalize())
        return {
            **self._entry(address, in_group=False),
            "Type": kind,
            "ValueMin": low,
            "ValueMax": high,
            "StringMin": f"{low:.1f}{unit}",
            "StringMax": f"{high:.1f}{unit}",
            "Direction": "Read/Write",
        }

    def _known(self, address: Address) -> Address:
        component, name = address
        if address in self._controls:
            return address
        if component is not None and component not in self.knobs.components:
            raise _Fault(QrcError.UNKNOWN_COMPONENT, f"Unknown component name: {component}")
        raise _Fault(QrcError.UNKNOWN_CONTROL, f"Unknown control: {name}")

    def _write(self, address: Address, item: dict[str, Any]) -> None:
        ramp = item.get("Ramp", 0)
        if not isinstance(ramp, int | float) or isinstance(ramp, bool) or ramp < 0:
            raise _Fault(QrcError.INVALID_PARAMS, f"bad Ramp {ramp!r}")
        if "Value" not in item:
            raise _Fault(QrcError.INVALID_PARAMS, "Value missing")
        try:
            self._set(address, item["Value"], float(ramp))
        except ValueError as err:
            raise _Fault(QrcError.INVALID_PARAMS, f"{address[1]}: {err}") from None

    def _control_get(self, client: _Client, request: Request) -> Any:
        names = _str_list(request.params, "Control.Get params")
        return [self._entry(self._known((None, n))) for n in names]

    def _control_set(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        self._write(self._known((None, _name(params))), params)
        return True

    def _component_items(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        component = _name(params)
        if component not in self.knobs.components:
            raise _Fault(QrcError.UNKNOWN_COMPONENT, f"Unknown component name: {component}")
        items = params.get("Controls")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _Fault(QrcError.INVALID_PARAMS, "Controls must be a list of objects")
        return component, items

    def _component_get(self, client: _Client, request: Request) -> Any:
        component, items = self._component_items(_object(request.params))
        entries = [self._entry(self._known((component, _name(i))), in_group=False) for i in items]
        return {"Name": component, "Controls": entries}

    def _component_set(self, client: _Client, request: Request) -> Any:
        """Sets the known controls; returns the unknown ones, as the reference says."""
        component, items = self._component_items(_object(request.params))
        unknown = []
        for item in items:
            address = (component, _name(item))
            if address in self._controls:
                self._write(address, item)
            else:
                unknown.append(address[1])
        return unknown or True

    def _get_components(self, client: _Client, request: Request) -> Any:
        return [
            {"Name": c, "Type": "custom_controls", "Properties": []} for c in self.knobs.components
        ]

    def _get_controls(self, client: _Client, request: Request) -> Any:
        component = _name(_object(request.params))
        if component not in self.knobs.components:
            raise _Fault(QrcError.UNKNOWN_COMPONENT, f"Unknown component name: {component}")
        addresses = [a for a in self._controls if a[0] == component]
        return {"Name": component, "Controls": [self._details(a) for a in addresses]}

    # -- change groups -------------------------------------------------------------------

    def _group(
        self, client: _Client, params: dict[str, Any], create: bool = False
    ) -> tuple[str, _Group]:
        group_id = params.get("Id")
        if not isinstance(group_id, str) or not group_id:
            raise _Fault(QrcError.INVALID_PARAMS, "Id must be a non-empty string")
        group = client.groups.get(group_id)
        if group is None:
            if not create:
                raise _Fault(QrcError.UNKNOWN_CHANGE_GROUP, f"Unknown change group: {group_id}")
            if self.change_groups >= self.knobs.max_change_groups:
                raise _Fault(QrcError.CHANGE_GROUPS_EXHAUSTED, "Change groups exhausted")
            group = client.groups[group_id] = _Group()
        return group_id, group

    def _add_members(
        self, client: _Client, params: dict[str, Any], addresses: list[Address]
    ) -> Any:
        checked = [self._known(a) for a in addresses]  # all or nothing
        _, group = self._group(client, params, create=True)
        for address in checked:
            if address not in group.members:
                group.members.append(address)
                group.dirty[address] = None
        return True

    def _group_add(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        names = _str_list(params.get("Controls"), "Controls")
        return self._add_members(client, params, [(None, n) for n in names])

    def _group_add_component(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        component, items = self._component_items(_object(params.get("Component")))
        return self._add_members(client, params, [(component, _name(i)) for i in items])

    def _group_remove(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        names = set(_str_list(params.get("Controls"), "Controls"))
        _, group = self._group(client, params)
        group.members = [a for a in group.members if a[0] is not None or a[1] not in names]
        group.dirty = {a: None for a in group.dirty if a in group.members}
        return True

    def _take(self, group: _Group) -> list[dict[str, Any]]:
        changes = [self._entry(a) for a in group.dirty]
        group.dirty.clear()
        return changes

    def _group_poll(self, client: _Client, request: Request) -> Any:
        group_id, group = self._group(client, _object(request.params))
        return {"Id": group_id, "Changes": self._take(group)}

    def _group_autopoll(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        group_id, group = self._group(client, params)
        rate = params.get("Rate")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            raise _Fault(QrcError.INVALID_PARAMS, f"Rate must be a positive number, got {rate!r}")
        group.cancel()
        group.autopoll_id = request.id
        group.timer = asyncio.get_running_loop().call_later(
            rate, self._tick, client, group_id, rate
        )
        if self.knobs.autopoll_shape == "result":
            return {"Id": group_id, "Changes": self._take(group)}
        return True

    def _push(self, group_id: str, group: _Group) -> bytes:
        payload = {"Id": group_id, "Changes": self._take(group)}
        if self.knobs.autopoll_shape == "result":
            return Response(group.autopoll_id, payload).encode()
        return Request("ChangeGroup.Poll", payload).encode()

    def _tick(self, client: _Client, group_id: str, rate: float) -> None:
        group = client.groups.get(group_id)
        if group is None or client.session.closed:
            return
        if group.dirty or self.knobs.push_empty:
            client.session.push(self._push(group_id, group))
        group.timer = asyncio.get_running_loop().call_later(
            rate, self._tick, client, group_id, rate
        )

    def _group_clear(self, client: _Client, request: Request) -> Any:
        _, group = self._group(client, _object(request.params))
        group.members.clear()
        group.dirty.clear()
        return True

    def _group_destroy(self, client: _Client, request: Request) -> Any:
        group_id, group = self._group(client, _object(request.params))
        group.cancel()
        del client.groups[group_id]
        return True

    def _group_invalidate(self, client: _Client, request: Request) -> Any:
        _, group = self._group(client, _object(request.params))
        group.dirty = dict.fromkeys(group.members)
        return True

    def _drop_groups(self, client: _Client) -> None:
        for group in client.groups.values():
            group.cancel()
        client.groups.clear()

    # -- logon and snapshots -------------------------------------------------------------

    def _logon(self, client: _Client, request: Request) -> Any:
        params = request.params if isinstance(request.params, dict) else {}
        k = self.knobs
        client.logged_on = (
            not k.fail_auth
            and params.get("User") == k.user
            and params.get("Password") == k.password
        )
        if not client.logged_on:
            log.info("%s: logon refused for user %r", client.session, params.get("User"))
            raise _Fault(QrcError.LOGON_REQUIRED, "Logon failed")
        return True

    def _bank(self, params: dict[str, Any]) -> tuple[str, int]:
        name = _name(params)
        banks = self.knobs.snapshots.get(name)
        if banks is None:
            raise _Fault(QrcError.UNKNOWN_COMPONENT, f"Unknown component name: {name}")
        bank = params.get("Bank")
        if not isinstance(bank, int) or isinstance(bank, bool) or not 1 <= bank <= banks:
            raise _Fault(QrcError.INVALID_PARAMS, f"Bank must be 1-{banks}, got {bank!r}")
        return name, bank

    def _snapshot_load(self, client: _Client, request: Request) -> Any:
        params = _object(request.params)
        key = self._bank(params)
        ramp = params.get("Ramp", 0)
        ramp = float(ramp) if isinstance(ramp, int | float) and not isinstance(ramp, bool) else 0.0
        self.loaded.append(key)
        for address, value in self._banks.get(key, {}).items():
            self._set(address, value, max(ramp, 0.0))
        return True

    def _snapshot_save(self, client: _Client, request: Request) -> Any:
        self.save_snapshot(*self._bank(_object(request.params)))
        return True


def _object(params: object) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _Fault(QrcError.INVALID_PARAMS, f"params must be an object, got {params!r}")
    return params


def _name(params: dict[str, Any]) -> str:
    name = params.get("Name")
    if not isinstance(name, str):
        raise _Fault(QrcError.INVALID_PARAMS, f"Name must be a string, got {name!r}")
    return name


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Fault(QrcError.INVALID_PARAMS, f"{what} must be a list of names, got {value!r}")
    return value
