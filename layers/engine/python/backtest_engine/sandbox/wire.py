"""The narrow channel between the trusted side and a sandbox child: typed frames, sizes checked first.

Each frame is a 9-byte header (``kind: u8``, ``length: u64``, little-endian) and ``length`` bytes. The
reader of untrusted frames (the trusted side reading a child) knows the largest payload each kind may have
and refuses a frame before allocating anything for it, so a child cannot make the runner allocate more
than those caps, whatever it sends. No pickle crosses the boundary: payloads are fixed-layout numbers,
UTF-8 text and numpy arrays of a fixed dtype, decoded by the trusted side.

Frames, trusted → child: `JOB` (a JSON header and the compiled code). The bars' columns travel beside it in
a sealed memfd (`write_bars` / `map_bars`): one copy on the trusted side, none in the child, which maps it
read-only.
Frames, child → trusted, in order: `LAYERS` (JSON: which confinement layers are active; sent after the
child confined itself and before any strategy code ran), `PROGRESS`\\* (bars done, bars total), then
`SIGNALS` (vectorized: one float64 per bar) or `ORDERS` (event-driven: `ORDER_DTYPE` records), `LOGS`,
`DONE`; or `LOGS` and `ERROR` (kind, line, message).

Batch jobs (a parameter optimization: the JOB header holds ``batch``, a list of parameter sets): after
`LAYERS`, for each parameter set k in order, `COMBINATION` (u32 k) and then that combination's frames as
above (`SIGNALS` | `ORDERS`, `LOGS`, `DONE`; or `LOGS`, `ERROR`). Every cap applies per frame, as for a
single job; the trusted side checks that the indices come in order (`sandbox.batch`).
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import select
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest_engine.errors import (
    EngineError,
    InvalidSignals,
    LookAheadError,
    StrategyError,
    StrategyMemoryError,
    StrategyOutputLimit,
    StrategyPolicyViolation,
)

JOB = 1
LAYERS = 2
PROGRESS = 3
SIGNALS = 4
ORDERS = 5
LOGS = 6
ERROR = 7
DONE = 8
REPORT = 9  # the test-only unrestricted entry's JSON report
COMBINATION = 10  # batch jobs: the index of the parameter set whose frames follow

HEADER = struct.Struct("<BQ")
PROGRESS_BODY = struct.Struct("<QQ")
ERROR_HEAD = struct.Struct("<Bi")  # error kind, strategy line (-1: none), then the UTF-8 message
COMBINATION_BODY = struct.Struct("<I")
MAX_BATCH = 10_000  # parameter sets in one batch job

# One order the strategy placed, as the child's broker executed it: the bar whose open fills it, the kind
# (`broker.ORDER_KINDS`), the value (exposure, signed units or signed fraction), stop-loss and take-profit
# (NaN: none).
ORDER_DTYPE = np.dtype([("bar", "<i8"), ("kind", "u1"), ("value", "<f8"), ("sl", "<f8"), ("tp", "<f8")])

# ERROR frames name a kind, never a class: the trusted side builds the error. 0 is a fault of the runtime in
# the child (reported as the strategy's: the child is untrusted and a retry would not help).
ERROR_KINDS: tuple[type[EngineError], ...] = (
    EngineError,
    StrategyError,
    StrategyPolicyViolation,
    StrategyMemoryError,
    StrategyOutputLimit,
    InvalidSignals,
    LookAheadError,
)
SANDBOX_UNAVAILABLE = 100  # the child could not confine itself and ran nothing

MAX_ORDERS_PER_BAR = 4  # on average over a run: the child refuses more, the trusted side reads no more


def max_orders(bars: int) -> int:
    """The most orders a run over `bars` bars may send back."""
    return MAX_ORDERS_PER_BAR * bars + 64


MAX_ERROR_MESSAGE_BYTES = 4096
MAX_LAYERS_BYTES = 4096
MAX_REPORT_BYTES = 1 << 20


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow (a kind out of order, an oversized frame)."""


class Deadline(Exception):
    """The wall-clock deadline passed while waiting for the next frame."""


class StopRequested(Exception):
    """`should_stop()` turned true while no frame had begun to arrive."""


STOP_POLL_SECONDS = 0.5  # how often a reader asks `should_stop` while it waits for a frame


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytearray


def write_frame(fd: int, kind: int, *parts: Any) -> None:
    """Write one frame whose payload is the concatenation of `parts` (bytes-like objects, arrays)."""
    views = [memoryview(p).cast("B") for p in parts]
    _write_all(fd, HEADER.pack(kind, sum(v.nbytes for v in views)))
    for view in views:
        _write_all(fd, view)


def _write_all(fd: int, data: memoryview | bytes) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Reads frames from `fd`, refusing a kind not in `caps` or a payload larger than its cap, before
    allocating it. `read(deadline)` raises `Deadline` once `time.monotonic()` passes `deadline` and
    EOFError when the peer closed its end."""

    def __init__(self, fd: int, caps: Mapping[int, int]) -> None:
        self.fd = fd
        self.caps = dict(caps)

    def read(self, deadline: float | None = None, should_stop: Callable[[], bool] | None = None) -> Frame:
        """The next frame. With `should_stop`, it is asked every `STOP_POLL_SECONDS` while no frame has begun
        to arrive (`StopRequested` when it turns true); a frame that has begun is read whole, against the
        deadline only, so neither a stop nor a poll ever cuts one in two and desynchronizes the channel."""
        if should_stop is not None:
            self._wait_for_frame(deadline, should_stop)
        kind, length = HEADER.unpack(self._read_exact(HEADER.size, deadline))
        cap = self.caps.get(kind)
        if cap is None:
            raise ProtocolError(f"frame kind {kind} is not expected here")
        if length > cap:
            raise ProtocolError(f"frame kind {kind} of {length} bytes exceeds its cap of {cap} bytes")
        return Frame(kind, self._read_exact(length, deadline))

    def _wait_for_frame(self, deadline: float | None, should_stop: Callable[[], bool]) -> None:
        while True:
            wait = STOP_POLL_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Deadline()
                wait = min(remaining, wait)
            if select.select([self.fd], [], [], wait)[0]:
                return
            if should_stop():
                raise StopRequested()

    def _read_exact(self, size: int, deadline: float | None) -> bytearray:
        buf = bytearray(size)
        view = memoryview(buf)
        while view:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                    raise Deadline()
            n = os.readv(self.fd, [view])
            if n == 0:
                raise EOFError("the peer closed the channel")
            view = view[n:]
        return buf


# ---- the job ---------------------------------------------------------------------------------------

BAR_COLUMNS = ("times", "open", "high", "low", "close", "volume")


def write_job(fd: int, header: dict[str, Any], code: bytes) -> None:
    """Trusted side: the job header (JSON) and the strategy's compiled code (`marshal`, made by the trusted
    side from the same source; empty: the child compiles it)."""
    head = json.dumps(header, allow_nan=False).encode()
    write_frame(fd, JOB, struct.pack("<QQ", len(head), len(code)), head, code)


def read_job(payload: bytearray) -> tuple[dict[str, Any], bytes]:
    """Child side: the inverse of `write_job` (the child trusts its job)."""
    head_len, code_len = struct.unpack_from("<QQ", payload)
    header = json.loads(bytes(payload[16 : 16 + head_len]))
    return header, bytes(payload[16 + head_len : 16 + head_len + code_len])


def write_bars(columns: Mapping[str, np.ndarray]) -> int:
    """Trusted side: the bars' columns (int64 times, float64 prices, one after the other) in a new memfd,
    sealed against any change; its descriptor (the caller passes it to the child, then closes it)."""
    fd = os.memfd_create("bars", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        for name in BAR_COLUMNS:
            _write_all(fd, np.ascontiguousarray(columns[name]).data.cast("B"))
        fcntl.fcntl(
            fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


def map_bars(fd: int, n: int) -> dict[str, np.ndarray]:
    """Child side: the columns `write_bars` wrote, as read-only arrays over a private read-only mapping."""
    if n == 0:
        return {name: np.zeros(0, dtype="<i8" if name == "times" else "<f8") for name in BAR_COLUMNS}
    mapped = mmap.mmap(fd, 8 * n * len(BAR_COLUMNS), flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(BAR_COLUMNS):
        arr = np.frombuffer(mapped, dtype="<i8" if name == "times" else "<f8", count=n, offset=8 * n * k)
        columns[name] = arr.view("datetime64[ns]") if name == "times" else arr
    return columns


# ---- what the child sends back -----------------------------------------------------------------------


def encode_logs(lines: list[str]) -> bytes:
    """``u32 count``, ``count × u32 byte lengths``, then the UTF-8 text of every line."""
    encoded = [line.encode("utf-8", "surrogatepass") for line in lines]
    return struct.pack(f"<I{len(encoded)}I", len(encoded), *(len(e) for e in encoded)) + b"".join(encoded)


def decode_logs(payload: bytearray, max_lines: int) -> list[str]:
    """Trusted side: the lines of a `LOGS` payload (the frame cap bounds its size)."""
    if len(payload) < 4:
        raise ProtocolError("a LOGS frame is too short")
    (count,) = struct.unpack_from("<I", payload)
    if count > max_lines or 4 + 4 * count > len(payload):
        raise ProtocolError(f"a LOGS frame claims {count} lines")
    sizes = struct.unpack_from(f"<{count}I", payload, 4)
    offset = 4 + 4 * count
    if offset + sum(sizes) != len(payload):
        raise ProtocolError("a LOGS frame's sizes do not add up")
    lines = []
    for size in sizes:
        lines.append(bytes(payload[offset : offset + size]).decode("utf-8", "replace"))
        offset += size
    return lines


def encode_error(kind: int, line: int | None, message: str) -> bytes:
    text = message.encode("utf-8", "replace")[:MAX_ERROR_MESSAGE_BYTES]
    return ERROR_HEAD.pack(kind, -1 if line is None else line) + text


def decode_error(payload: bytearray) -> tuple[int, int | None, str]:
    if len(payload) < ERROR_HEAD.size:
        raise ProtocolError("an ERROR frame is too short")
    kind, line = ERROR_HEAD.unpack_from(payload)
    message = bytes(payload[ERROR_HEAD.size :]).decode("utf-8", "replace")
    return kind, (None if line < 0 else line), message
