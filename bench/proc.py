"""Child processes of a run: own process group each, stopped by PID; CPU and RSS from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, BinaryIO, Self, TypeVar

T = TypeVar("T")

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ChildError(RuntimeError):
    """A child process failed, answered with an error, or did not answer in time."""


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, with SIGTERM taken as Ctrl-C is: the run is cancelled and the
    children it started are stopped (each is in a session of its own, out of reach of a
    signal to the bench's process group), then the bench exits with status 143.
    """
    terminated = False

    async def stoppable() -> T:
        nonlocal terminated
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(stoppable())
    except asyncio.CancelledError:
        if not terminated:
            raise
        print("bench: stopped by SIGTERM; its child processes are stopped", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size now (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ChildError(f"no VmRSS for pid {pid}")


async def wait_quiet(max_wait: float, busy: float = 0.15, window: float = 2.0) -> dict[str, float]:
    """Wait (at most `max_wait` s) until the machine uses under `busy` cores over a window.

    Other work on a shared machine skews every number; the result says how long the
    wait was and how busy the machine still was.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        before = machine_busy_seconds()
        await asyncio.sleep(window)
        used = (machine_busy_seconds() - before) / window
        if used < busy or loop.time() - start >= max_wait:
            return {"waited_s": loop.time() - start, "busy_cores": used}


class Child:
    """One child process; `call` speaks the JSON-lines protocol of `bench.control`."""

    def __init__(
        self, name: str, argv: list[str], logdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env or {}
        self.logfile = logdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    def _open_log(self) -> BinaryIO:
        return open(self.logfile, "ab")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, ready_timeout: float = 60.0, expect_json: bool = True) -> Self:
        """Start in a new session (its own process group); wait for its ready line."""
        log = self._open_log()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                limit=1 << 26,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        finally:
            log.close()
        if expect_json:
            self.ready = await self._read(ready_timeout)
        return self

    async def read_line(self, timeout: float) -> str:
        """The next stdout line (for children that print rather than speak JSON)."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise ChildError(f"{self.name}: no output within {timeout}s ({self.logfile})") from None
        if not line:
            raise ChildError(
                f"{self.name} exited (code {self.proc.returncode}); see {self.logfile}"
            )
        return line.decode().rstrip("\n")

    async def _read(self, timeout: float) -> dict[str, Any]:
        while True:
            line = await self.read_line(timeout)
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                if "error" in message:
                    raise ChildError(f"{self.name}: {message['error']} (see {self.logfile})")
                return message

    async def call(self, op: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
        """Send one request and return its reply; ChildError on an error reply."""
        assert self.proc is not None and self.proc.stdin is not None
        async with self._lock:
            self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
            await self.proc.stdin.drain()
            return await self._read(timeout)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def pause(self) -> None:
        """SIGSTOP the child's process group (its sockets stay open)."""
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the child's process group."""
        os.killpg(self.pid, signal.SIGCONT)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child's process group, SIGKILL it if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            os.killpg(proc.pid, signal.SIGCONT)  # a paused child handles SIGTERM once resumed
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class Children:
    """Every child a scenario started; all are stopped on exit, failures included."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: list[Child] = []

    async def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw: Any
    ) -> Child:
        child = Child(name, argv, self.logdir, env)
        self.running.append(child)
        return await child.start(**kw)

    async def python(self, name: str, module: str, *args: str, **kw: Any) -> Child:
        """`python -m module args...` with this interpreter."""
        return await self.start(name, [sys.executable, "-m", module, *args], **kw)

    async def stop(self, child: Child) -> None:
        await child.stop()
        if child in self.running:
            self.running.remove(child)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for child in reversed(self.running):
            await child.stop()
        self.running.clear()


class CpuMeter:
    """CPU seconds used by some processes between `start()` and `stop()`."""

    def __init__(self, children: dict[str, Child]) -> None:
        self.children = children
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine = machine_busy_seconds()
        self._self = cpu_seconds(os.getpid())
        self._start = {k: c.cpu() for k, c in self.children.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds per child; `other` is what the rest of the machine used meanwhile."""
        self.wall = time.monotonic() - self._t0
        self.seconds = {k: c.cpu() - self._start[k] for k, c in self.children.items()}
        ours = sum(self.seconds.values()) + cpu_seconds(os.getpid()) - self._self
        self.seconds["other"] = max(0.0, machine_busy_seconds() - self._machine - ours)
        return self.seconds
