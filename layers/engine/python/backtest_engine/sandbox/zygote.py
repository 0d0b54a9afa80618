"""The zygote: a clean, warmed-up process that forks one sandbox child per strategy run.

Started by the trusted side (`supervisor.Supervisor`) as ``python -m backtest_engine.sandbox.zygote FD``
with the environment `child_environment` returns (no credentials, single-threaded BLAS), before the
runner makes any AWS client, so neither its memory nor its environment block holds a secret. It imports
numpy, pandas, TA-Lib, RestrictedPython and the runtime once and exercises the library paths strategies
use (`warm_up`), so that the lazy imports those libraries make later find their modules in
``sys.modules``: a child cannot open a file to import anything.

The control channel (FD, a ``SOCK_SEQPACKET`` Unix socket) carries fixed-size messages (`CONTROL`):

- trusted → zygote: ``SPAWN(request, flags)`` with the child's job pipe, answer pipe and sealed bars
  (a memfd) attached (``SCM_RIGHTS``),
  ``KILL(pid)``;
- zygote → trusted: ``READY(pid of the zygote)``, ``SPAWNED(request, pid)``, ``EXITED(pid, wait status)``.

The zygote answers only this channel: a child closes it before anything else, so a strategy cannot ask
for processes. When the channel closes (the runner ended), the zygote kills every child's process group
and exits; where ``prctl`` works it also dies with the runner (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import warnings
import zoneinfo
from typing import Final

from backtest_engine.sandbox.confinement import set_parent_death_signal

# Message: op u8, request u32, value i64 (a pid, flags or a wait status), pid i64.
CONTROL: Final = struct.Struct("<BIqq")
OP_READY, OP_SPAWN, OP_SPAWNED, OP_KILL, OP_EXITED = 1, 2, 3, 4, 5

FLAG_SECCOMP: Final = 1  # install the seccomp filter in the child where the machine allows it
FLAG_UNRESTRICTED: Final = 2  # test only: run plain Python (no RestrictedPython); refused unless enabled
FLAG_PROBE: Final = 4  # confine, report the layers and what a few escape attempts got, run nothing

ALLOW_UNRESTRICTED_ARG: Final = "--allow-unrestricted"

# Environment variables a child may see: none carries a secret. Everything else is dropped.
_PASSED_THROUGH = ("PATH", "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_FIXED = {
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "HOME": "/nonexistent",
    "PYTHONHASHSEED": "0",  # the same strategy gives the same set/dict-of-str order in every child
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "OPENBLAS_NUM_THREADS": "1",  # no BLAS or OpenMP thread pools: a child may not start threads
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}


def child_environment(parent: dict[str, str], import_paths: list[str]) -> dict[str, str]:
    """The zygote's whole environment: an allow list, never the runner's credentials."""
    env = {name: parent[name] for name in _PASSED_THROUGH if name in parent}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update(_FIXED)
    env["PYTHONPATH"] = os.pathsep.join(p for p in import_paths if p and os.path.isdir(p))
    return env


def warm_up() -> None:
    """Import and exercise what strategies use, so later lazy imports are already in ``sys.modules``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _exercise()


def _exercise() -> None:
    import datetime
    import math  # noqa: F401
    import statistics

    import numpy as np
    import pandas as pd
    import talib
    from talib import abstract

    from backtest_engine import runtime
    from backtest_engine.sandbox import child  # noqa: F401
    from backtest_engine.sandbox.log import StrategyLog
    from backtest_engine.sandbox.policy import build_globals

    build_globals(StrategyLog(1, 1))  # the policy's one-time set-up (guards, views, the pandas label fix)
    runtime._talib_functions()

    rng = np.random.default_rng(0)
    a = rng.normal(size=300).cumsum() + 100.0
    for method in ("mean", "std", "var", "min", "max", "sum", "prod", "any", "all", "argmax", "argmin", "cumsum"):
        getattr(a, method)()
    np.percentile(a, [5, 50]), np.median(a), np.quantile(a, 0.9), np.nanmean(a), np.nanstd(a), np.cov(a, a)
    np.corrcoef(a, a), np.polyfit(np.arange(a.size), a, 1), np.linalg.lstsq(np.c_[a, a], a, rcond=None)
    np.linalg.inv(np.eye(3)), np.fft.fft(a), np.convolve(a, np.ones(3)), np.diff(a), np.sort(a), np.unique(a)
    np.lib.stride_tricks.sliding_window_view(a, 5).mean(axis=1)
    np.histogram(a, bins=10), np.digitize(a, [99, 101]), np.interp(1.5, [1, 2], [3, 4]), np.round(a, 2)
    np.datetime_as_string(np.datetime64("2024-01-01T00:00")), np.array2string(a), repr(a), str(a), f"{a}"
    f"{np.float64(1.5):.2f}", str(np.int64(3)), repr(np.float64(2.0)), np.set_printoptions, np.errstate
    with np.errstate(all="ignore"):
        np.log(np.array([0.0, -1.0, 1.0])) / np.array([0.0, 1.0, 1.0])
    rng.integers(0, 10, 5), rng.choice(a, 3), rng.standard_normal(3), np.random.seed(1), np.random.rand(2)

    index = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    df = pd.DataFrame({"open": a, "high": a + 1, "low": a - 1, "close": a, "volume": a * 10}, index=index)
    s = df["close"]
    s.rolling(10).mean(), s.rolling(10).std(), s.rolling(5).apply(lambda x: x[-1], raw=True), s.ewm(span=5).mean()
    s.expanding().max(), s.shift(1), s.diff(), s.pct_change(), s.rank(), s.quantile(0.5), s.describe(), s.clip(0, 1)
    s.rolling(10).corr(s), s.rolling(10).cov(s), s.rolling(10).skew(), s.rolling(10).kurt(), s.rolling(10).median()
    s.resample("1D").last(), df.resample("1D").agg({"open": "first", "close": "last"}), s.groupby(index.date).mean()
    s.groupby(index.hour).agg(["mean", "std"]), df.groupby(index.dayofweek).mean(), s.value_counts(), s.cumprod()
    df.assign(x=1).fillna(0).ffill().bfill(), pd.concat([df, df]), df.iloc[::2], df.loc[index[0] :], df.T, df.corr()
    df.apply(lambda c: c.max()), s.apply(abs), s.map(float), s.agg(func="mean"), s.where(s > 100), s.mask(s > 100)
    pd.Series([1, 2], index=["a", "b"]).to_dict(), s.to_numpy(), s.tolist(), s.idxmax(), s.nlargest(3), df.melt()
    str(df), repr(df), str(s), repr(s), f"{s.iloc[0]}", df.head().to_string, df.columns.tolist(), df.dtypes
    ts = index[5]
    ts.strftime("%Y-%m-%d %H:%M"), f"{ts:%H:%M}", ts.isoformat(), str(ts), repr(ts), ts.date(), ts.time(), ts.hour
    ts + pd.Timedelta(hours=1), ts - pd.Timestamp("2024-01-01", tz="UTC"), ts.floor("D"), ts.normalize(), ts.weekday()
    pd.Timestamp("2024-01-01"), pd.to_datetime(["2024-01-01"]), pd.to_timedelta("1h"), pd.Timestamp.now(tz="UTC")
    index.strftime("%Y-%m-%d"), index.hour, index.minute, index.dayofweek, index.month, index.date, index.time
    pd.Period("2024-01", freq="M"), pd.date_range("2024-01-01", periods=3, freq="D"), pd.DataFrame({"a": [1]}).sum()
    # A child cannot read the zone database: load the common zones here, through every path pandas takes, and
    # keep every zone object made on the way. zoneinfo's caches hold only the last eight zones strongly, the
    # others would be collected and read again from a file: both the C ZoneInfo and the pure-Python one that
    # pandas makes its "twins" with inside its converters.
    global _ZONES
    from zoneinfo import _zoneinfo  # type: ignore[attr-defined]

    _zoneinfo.ZoneInfo._strong_cache_size = 4 * len(_TIME_ZONES)
    kept: list[object] = []
    for zone in _TIME_ZONES:
        try:
            converted = index.tz_convert(zone)
            kept += [zoneinfo.ZoneInfo(zone), converted.tz, ts.tz_convert(zone).tzinfo]
            converted.hour, converted[0], ts.tz_convert(zone).strftime("%H:%M"), pd.Timestamp("2024-06-01", tz=zone)
        except Exception as exc:  # a zone this machine lacks: strategies cannot use it, the rest still can
            print(f"sandbox zygote: time zone {zone} not preloaded: {exc}", file=sys.stderr)
    _ZONES = (*kept, *_zoneinfo.ZoneInfo._strong_cache.values())
    datetime.datetime(2024, 1, 1).strftime("%Y-%m-%d %H:%M:%S"), datetime.date(2024, 1, 1).isoformat()
    f"{datetime.datetime(2024, 1, 1):%Y}", datetime.datetime.fromisoformat("2024-01-01T00:00:00+00:00")
    "{:.1%} {:>8.2f} {}".format(0.5, 2.0, "x"), "%.2f %s %d" % (1.0, "a", 3), f"{1.5:,.2f}", format(2.5, ".3f")  # noqa: UP031
    statistics.mean([1, 2]), statistics.stdev([1.0, 2.0, 4.0]), statistics.median([1, 2, 3]), statistics.pstdev([1, 2])
    statistics.correlation([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), statistics.linear_regression([1.0, 2.0], [2.0, 4.0])
    for name in ("SMA", "EMA", "RSI", "MACD", "BBANDS", "ATR", "ADX", "STOCH", "CCI", "OBV", "MFI", "WILLR", "SAR"):
        getattr(abstract, name)(df)
    talib.get_functions(), talib.get_function_groups(), talib.MA_Type.EMA, abstract.Function("KAMA")(df)  # type: ignore[attr-defined]
    for name in talib.get_functions():
        getattr(talib, name)
    _ = ctypes.CDLL(None, use_errno=True).prctl  # the C library handle `confinement` uses
    import collections
    import dataclasses
    import functools
    import itertools
    import typing

    point = collections.namedtuple("point", ["x", "y"])
    collections.deque([1], maxlen=3), collections.defaultdict(list), point._make([1, 2])
    collections.Counter("ab"), functools.reduce(lambda x, y: x + y, [1, 2]), functools.lru_cache(maxsize=8)(abs)(1)
    list(itertools.islice(itertools.count(), 3)), typing.Optional[int], dataclasses.dataclass(type("D", (), {}))  # noqa: UP045
    1 + sum(range(3)), sorted({3, 1}), divmod(7, 2), round(2.5), int("7"), float("1e3"), hash("x"), bin(3), hex(9)


_ZONES: tuple[object, ...] = ()
_TIME_ZONES = (
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Zurich",
    "Asia/Tokyo",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Kolkata",
    "Australia/Sydney",
)


def serve(control_fd: int, allow_unrestricted: bool) -> None:
    """The zygote's life: warm, then fork on SPAWN, kill on KILL, report every child's end (`_loop`) until the
    runner's channel closes; then it kills every child it has."""
    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    devnull = os.open(os.devnull, os.O_RDWR)
    children: set[int] = set()
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    control.sendall(CONTROL.pack(OP_READY, 0, os.getpid(), 0))
    try:
        _loop(control, selector, wake_read, children, devnull, allow_unrestricted)
    except (BrokenPipeError, ConnectionError):
        pass  # the runner closed the channel while we answered: it is gone
    finally:
        for pid in children:
            _kill_group(pid)


def _loop(
    control: socket.socket,
    selector: selectors.BaseSelector,
    wake_read: int,
    children: set[int],
    devnull: int,
    allow_unrestricted: bool,
) -> None:
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _flags, _addr = socket.recv_fds(control, CONTROL.size, 3)
                if not message:
                    return  # the runner is gone
                op, request, value, pid = CONTROL.unpack(message)
                if op == OP_SPAWN and len(fds) == 3:
                    flags = value if allow_unrestricted else value & ~FLAG_UNRESTRICTED
                    child = _spawn(fds, flags, control, devnull)
                    children.add(child)
                    control.sendall(CONTROL.pack(OP_SPAWNED, request, 0, child))
                elif op == OP_KILL and pid in children:
                    _kill_group(pid)
                for fd in fds:
                    os.close(fd)
            else:
                try:
                    while os.read(wake_read, 512):
                        pass
                except BlockingIOError:
                    pass
                _reap(children, control)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _reap(children: set[int], control: socket.socket) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        control.sendall(CONTROL.pack(OP_EXITED, 0, status, pid))


def _spawn(fds: list[int], flags: int, control: socket.socket, devnull: int) -> int:
    zygote = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    # The child: leave the zygote's world before anything else.
    code = 70
    try:
        # Die with the zygote from the first instruction on, not only once confined: a zygote killed while
        # this child reads its job or compiles would leave it running with nobody to stop it. Checked
        # against the zygote's pid taken before the fork: it may have died before the signal was armed.
        set_parent_death_signal()
        if os.getppid() != zygote:
            os._exit(70)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.detach()
        os.setpgid(0, 0)  # its own process group: the zygote kills the group, whatever it holds
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # above 0..5, whatever numbers they had
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        for target, fd in zip((3, 4, 5), moved, strict=True):
            os.dup2(fd, target)
        os.closerange(6, _max_fd())  # the control socket, the wake-up pipe, /dev/null, anything inherited
        from backtest_engine.sandbox import child

        code = child.serve(3, 4, 5, flags)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if 0 < soft < (1 << 20) else (1 << 16)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m backtest_engine.sandbox.zygote CONTROL_FD [--allow-unrestricted]")
    fd = int(argv[1])
    set_parent_death_signal()  # where refused (Lambda) the closed channel ends the zygote instead
    warm_up()
    serve(fd, allow_unrestricted=ALLOW_UNRESTRICTED_ARG in argv[2:])


if __name__ == "__main__":
    main(sys.argv)
