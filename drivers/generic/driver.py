"""The generic driver: a device whose protocol is described in YAML (drivers/generic/config.py).

Everything a native driver gets from the base it gets too (queue, pacing, timeouts,
retries, offline after N failures, reconnect with backoff); this module only reads
the definition: it sends the login steps, polls, keep-alive and actions it lists and
turns replies and unsolicited lines into state through their `set:` maps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import partial
from typing import Any

from drivers.actions import ActionSpec, Args
from drivers.base import NOT_MINE, Driver, PollGroup, Wait
from drivers.config import DeviceConfig
from drivers.errors import AuthError, CommandError, DeviceError, ErrorCode, ProtocolError
from drivers.generic.codec import TextFramer
from drivers.generic.config import Action, ErrorReply, GenericConfig, LoginStep, Setter

log = logging.getLogger("avhub.driver.generic")

Matcher = Callable[[str], "re.Match[str] | Wait"]
Step = tuple[bytes, Matcher | None, Setter]
"""One request of a poll: its bytes, how its reply is matched (None: no reply), what it sets."""


class GenericDriver(Driver[GenericConfig, str]):
    """A device that speaks the protocol its `protocol:` definition describes.

    Frames are decoded to text once (hex digits for a binary protocol) and matched by
    regular expressions compiled at load. A reply matching one of `errors` fails its
    request with a device error; lines no request claims go through `unsolicited`,
    then `ignore`, else they are logged.
    """

    name = "generic"
    persistent = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        protocol = self.config.protocol
        self._protocol = protocol
        self._compiled = protocol.compiled
        self.actions = self._compiled.specs
        self._errors: tuple[ErrorReply, ...] = tuple(protocol.errors)

    @classmethod
    def actions_for(cls, config: DeviceConfig) -> dict[str, ActionSpec]:
        """The actions its definition describes."""
        assert isinstance(config, GenericConfig)
        return config.protocol.compiled.specs

    def create_framer(self) -> TextFramer:
        return self._compiled.wire.text_framer()

    def describe_actions(self) -> dict[str, dict[str, Any]]:
        """Built once per distinct definition and shared by its devices: treat it as read-only."""
        return self._compiled.schemas

    # ---- replies ----------------------------------------------------------------

    def _matcher(self, pattern: re.Pattern[str]) -> Matcher:
        """A reply matcher: an error reply raises, a line `pattern` finds is the reply."""
        errors, search = self._errors, pattern.search

        def match(frame: str) -> re.Match[str] | Wait:
            for error in errors:
                found = error.match.search(frame)
                if found is not None:
                    raise self._device_error(error, found, frame)
            reply = search(frame)
            return NOT_MINE if reply is None else reply

        return match

    def _device_error(self, error: ErrorReply, found: re.Match[str], frame: str) -> DeviceError:
        if error.message is not None:
            groups = {k: v or "" for k, v in found.groupdict().items()}
            text = " ".join(error.message.render(groups).split())  # a group that was absent
            return DeviceError(error.error_code, f"{self.label}: {text}")
        return DeviceError(error.error_code, f"{self.label}: the device answered {frame!r}")

    def _apply(self, setter: Setter, values: Mapping[str, Any]) -> None:
        """Publish what `setter` makes of `values`; a value the device got wrong is logged."""
        if not setter:
            return
        try:
            self.update(setter.changes(values, self.state))
        except ProtocolError as err:
            log.warning("%s: skipped a reply: %s", self.label, err)

    def ask(self, data: bytes, match: Matcher) -> Coroutine[Any, Any, re.Match[str]]:
        """Send one request and return the match of its reply; error replies raise DeviceError."""
        return self.request(data, match)

    # ---- login ------------------------------------------------------------------

    async def login(self) -> None:
        """The definition's login steps: greeting, prompts, password, subscriptions.

        A connection is not a device: when no step waits for an answer, the first poll
        request that has one is asked here, so a device that is silent (or a serial port
        with nothing on it) does not count as online.
        """
        answered = False
        for step in self._protocol.login:
            data = self._login_bytes(step)
            if step.match is None:
                assert data is not None  # a step has send, match or both
                await self.post(data)
                continue
            found = await self.request(data, partial(self._match_login, step))
            self._apply(step.setter, found.groupdict())
            answered = True
        probe = next((s for s in self._steps() if s[1] is not None), None)
        if not answered and probe is not None:
            await self._poll([probe])

    def _login_bytes(self, step: LoginStep) -> bytes | None:
        if step.send is None:
            return None
        password = self.config.password
        if "password" in step.send.names and not password:
            raise AuthError(f"{self.label}: the login sends a password and none is configured")
        return self._compiled.request_bytes(step.send, {"password": password or ""})

    def _match_login(self, step: LoginStep, frame: str) -> re.Match[str] | Wait:
        if step.fail is not None and step.fail.search(frame):
            raise AuthError(f"{self.label}: login refused: {frame!r}")
        assert step.match is not None
        found = step.match.search(frame)
        return NOT_MINE if found is None else found

    # ---- polls and unsolicited lines --------------------------------------------

    def poll_groups(self) -> list[PollGroup]:
        groups = []
        for name, poll in self._protocol.polls.items():
            every = poll.every or self.config.poll_interval
            run = partial(self._poll, self._steps(name))
            groups.append(PollGroup(name, run, every))
        keepalive = self._protocol.keepalive
        if keepalive is not None:
            run = partial(self._poll, self._steps("keepalive"))
            groups.append(PollGroup("keepalive", run, keepalive.every))
        return groups

    def _steps(self, poll: str | None = None) -> list[Step]:
        """The requests of one poll (all polls, then the keep-alive, when None)."""
        protocol, compiled = self._protocol, self._compiled
        requests = [
            r for name, p in protocol.polls.items() if poll in (None, name) for r in p.requests
        ]
        steps: list[Step] = [
            (compiled.request_bytes(r.send), self._reply_matcher(r.match), r.setter)
            for r in requests
        ]
        keepalive = protocol.keepalive
        if keepalive is not None and poll in (None, "keepalive"):
            data = compiled.request_bytes(keepalive.send)
            steps.append((data, self._reply_matcher(keepalive.match), Setter([])))
        return steps

    def _reply_matcher(self, pattern: re.Pattern[str] | None) -> Matcher | None:
        return self._matcher(pattern) if pattern is not None else None

    async def _poll(self, steps: list[Step]) -> None:
        for data, match, setter in steps:
            if match is None:
                await self.post(data)
                continue
            reply = await self.ask(data, match)
            if setter:
                self._apply(setter, reply.groupdict())

    def unsolicited(self, frame: str) -> None:
        for rule in self._protocol.unsolicited:
            found = rule.match.search(frame)
            if found is not None:
                self._apply(rule.setter, found.groupdict())
                if rule.refresh:
                    self.refresh(rule.refresh)
                return
        if not any(pattern.search(frame) for pattern in self._protocol.ignore):
            log.warning("%s: unexpected data from device: %r", self.label, frame)

    # ---- actions ----------------------------------------------------------------

    def bind_action(self, spec: ActionSpec, args: Args | None) -> Callable[[], Awaitable[Any]]:
        return partial(self._perform, self._protocol.actions[spec.name], args)

    async def _perform(self, action: Action, args: Args | None) -> None:
        """Send the action's bytes, wait for its reply (if it has one), publish what it sets."""
        values = args.model_dump() if args is not None else {}
        wire = {name: action.args[name].to_wire(value) for name, value in values.items()}
        try:
            data = self._compiled.request_bytes(action.send, wire)
        except ProtocolError as err:
            raise CommandError(ErrorCode.INVALID_ARGS, str(err)) from None
        if action.match is None:
            await self.post(data)
        else:
            reply = await self.ask(data, self._matcher(action.match))
            values.update(reply.groupdict())
        self._apply(action.setter, values)
        if action.refresh:
            self.refresh(action.refresh)
