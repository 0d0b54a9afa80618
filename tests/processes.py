"""Real processes for the crash tests: `backtest local-aws` (moto alone) and `backtest local --aws-endpoint`
(the API and the workers) as separate processes, so a test can SIGKILL a worker the way Lambda ends a
timed-out or out-of-memory runtime, and see what survives it.

Each process runs in its own session (a signal to it never reaches pytest), its output is collected line
by line with the moment each line arrived, and its descendants (the sandbox's zygote and children) are
found in /proc by parent pid and identified with their start time, so a reused pid is never mistaken for
a survivor.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BACKTEST = [sys.executable, "-m", "local.cli"]
# A Lambda-like runtime: no-new-privileges and a seccomp filter that refuses prctl (tests/lambda_like.py).
LAMBDA_LIKE = [sys.executable, str(REPO_ROOT / "tests" / "lambda_like.py")]

ProcessId = tuple[int, int]  # (pid, start time in clock ticks since boot): unique for the machine's uptime


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields after the command name, which may hold spaces


def process_id(pid: int) -> ProcessId | None:
    fields = _stat(pid)
    return (pid, int(fields[19])) if fields else None


def alive(process: ProcessId) -> bool:
    """Still running (a zombie waiting to be reaped is not: it runs nothing and holds no memory)."""
    fields = _stat(process[0])
    return fields is not None and int(fields[19]) == process[1] and fields[0] != "Z"


def descendants(pid: int) -> dict[ProcessId, int]:
    """Every live process below `pid` → its depth (1: a child, 2: a grandchild...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: dict[ProcessId, int] = {}
    frontier = [(pid, 0)]
    while frontier:
        parent, depth = frontier.pop()
        for child in children.get(parent, []):
            ident = process_id(child)
            if ident is not None:
                found[ident] = depth + 1
                frontier.append((child, depth + 1))
    return found


def wait_until_gone(processes: Sequence[ProcessId], timeout: float) -> list[ProcessId]:
    """The ones still alive after `timeout` seconds (empty: all ended)."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in processes if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


@dataclass
class Process:
    popen: subprocess.Popen[str]
    name: str
    lines: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic() on arrival, line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> tuple[float, re.Match[str]]:
        """The first line matching `pattern`: when it arrived, and the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for arrived, line in self.lines[seen:]:
                seen += 1
                if (match := regex.search(line)) is not None:
                    return arrived, match
            if self.popen.poll() is not None and seen == len(self.lines):
                raise AssertionError(
                    f"{self.name} exited ({self.popen.returncode}) before {pattern!r}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {pattern!r} within {timeout:.0f} s:\n{self.output()}")
            time.sleep(0.02)

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        regex = re.compile(pattern)
        return [(arrived, line) for arrived, line in self.lines if regex.search(line)]

    def kill9(self) -> None:
        """SIGKILL this process only (not its group): what Lambda does to a runtime that ran out of time."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the command's clean stop), then SIGKILL to the whole session if it does not end."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode


def start(name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None) -> Process:
    popen = subprocess.Popen(
        list(args),
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    process = Process(popen, name)
    threading.Thread(target=process._read, name=f"read-{name}", daemon=True).start()
    return process


@contextlib.contextmanager
def running(name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[Process]:
    process = start(name, args, env=env)
    try:
        yield process
    finally:
        process.stop()
