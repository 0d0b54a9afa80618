"""Small programs `bench/run.py` times or measures in fresh processes.

- ``probes.py vectorbt-cold N``: vectorbt's first call in a fresh process: import, the benchmark bars,
  signals, ``Portfolio.from_signals`` and ``stats()`` (run.py times the whole process).
- ``probes.py cli-memory ARGS...``: ``backtest ARGS...`` (the CLI, in this process) with its stdout sent
  to /dev/null; then prints, as JSON on stderr, the peak RSS of this process and of its largest child
  (the sandbox).
- ``probes.py runner-flip``: the runner's path for the worst legal request (a strategy that flips long/short
  every bar over the 2,000,000-bar cap: one trade a bar) — the engine, then every stored object (the
  result's gzip JSON, the curve and trade records) written to an S3 client that counts the bytes and keeps
  none (moto would hold them in this process); prints the runner's peak RSS and the sizes as JSON on stderr.
- ``probes.py memory-5m``: 5,000,000 one-minute bars through `run_backtest` and its JSON (`json_bytes`);
  prints the peak RSS after each stage, for this process and for the sandbox child.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

_KIB = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss is KiB on Linux, bytes on macOS


def _peak_mib(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss * 1024 / _KIB / 1024, 1)


def vectorbt_cold(n: int) -> None:
    import peers

    portfolio, stats = peers.run_vectorbt(peers.peer_frame(peers.benchmark_bars(n)))
    print(json.dumps({"trades": int(stats["Total Trades"]), "final": float(portfolio.final_value())}))


def cli_memory(args: list[str]) -> None:
    from local.cli import main

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    sys.stdout.flush()
    os.dup2(devnull, 1)
    try:
        code = main(args)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    _end_sandbox()
    sys.stderr.write(
        json.dumps(
            {
                "exit": code,
                "parent_mib": _peak_mib(resource.RUSAGE_SELF),
                "child_mib": _peak_mib(resource.RUSAGE_CHILDREN),
            }
        )
        + "\n"
    )


def five_million_bars() -> Any:
    """BTCUSD 2018-01-01..2025-12-31 (4,207,680 bars, the whole history) followed by the first 792,320
    ETHUSD minutes of 2018, scaled to continue from BTCUSD's last close and moved 8 years (2,922 days)
    later so the times keep rising: 5,000,000 bars, filled year by year into preallocated arrays."""
    import numpy as np

    from backtest_engine.bars import Bars
    from backtest_engine.market_data import load_bars

    total, btc_bars = 5_000_000, 4_207_680
    times = np.empty(total, dtype="datetime64[ns]")
    cols = {name: np.empty(total) for name in ("open", "high", "low", "close", "volume")}
    at = 0
    for year in range(2018, 2026):
        part = load_bars("BTCUSD", "1m", date(year, 1, 1), date(year, 12, 31))
        k = len(part)
        times[at : at + k] = part.times
        for name, col in cols.items():
            col[at : at + k] = getattr(part, name)
        at += k
    assert at == btc_bars, at
    last_close = cols["close"][at - 1]
    shift = np.timedelta64(2922, "D")
    day = date(2018, 1, 1)
    scale = None
    while at < total:
        part = load_bars("ETHUSD", "1m", day, day)
        k = min(len(part), total - at)
        if scale is None:
            scale = last_close / float(part.open[0])
        times[at : at + k] = part.times[:k] + shift
        for name, col in cols.items():
            col[at : at + k] = getattr(part, name)[:k] * (1.0 if name == "volume" else scale)
        at += k
        day = date.fromordinal(day.toordinal() + 1)
    return Bars(
        "BTCUSD",
        "1m",
        times,
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        cols["volume"],
        0.00001,
        365,
        "synthetic",
    )


def memory_5m() -> None:
    from backtest_engine.engine import run_backtest
    from backtest_engine.models import BacktestRequest

    code = (Path(__file__).resolve().parent.parent / "examples" / "sma_crossover_vectorized.py").read_text()
    request = BacktestRequest.model_validate(
        {
            "strategy_code": code,
            "symbol": "BTCUSD",
            "timeframe": "1m",
            "start_date": "2018-01-01",
            "end_date": "2025-12-31",
            "slippage": 0.0,
        },
        context={"max_bars": None},
    )
    stages: dict[str, Any] = {}
    t = time.perf_counter()
    result = run_backtest(request, bars=five_million_bars())  # nothing else keeps the bars
    stages["run_seconds"] = round(time.perf_counter() - t, 2)
    stages["after_data_and_run_mib"] = _peak_mib(resource.RUSAGE_SELF)
    t = time.perf_counter()
    from backtest_engine.result import json_bytes

    text = json_bytes(result)
    stages["json_seconds"] = round(time.perf_counter() - t, 2)
    stages["json_mib"] = round(len(text) / 2**20, 1)
    with open(os.devnull, "wb") as sink:
        sink.write(text)
    del text
    stages["bars"] = result.market_data_stats.data_points
    stages["trades"] = result.trade_summary.total_trades
    stages["timings"] = result.timings
    stages["parent_mib"] = _peak_mib(resource.RUSAGE_SELF)
    _end_sandbox()
    stages["child_mib"] = _peak_mib(resource.RUSAGE_CHILDREN)
    sys.stderr.write(json.dumps(stages) + "\n")


FLIP = """\
import numpy as np

def generate_signals(data, params):
    return np.where(np.arange(len(data)) % 2 == 0, 1.0, -1.0)
"""


class _CountingS3:
    """An S3 client that reads every body it is given and keeps only its size."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.sizes[Key] = len(Body)
        return {}

    def create_multipart_upload(self, *, Key: str, **_: Any) -> dict[str, Any]:
        self.sizes[Key] = 0
        return {"UploadId": "u"}

    def upload_part(self, *, Key: str, Body: bytes, PartNumber: int, **_: Any) -> dict[str, Any]:
        self.sizes[Key] += len(Body)
        return {"ETag": str(PartNumber)}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


def runner_flip() -> None:
    from backtest_engine.catalog import MAX_BARS, estimate_bars
    from backtest_engine.models import BacktestRequest
    from backtest_service.result_store import ResultStore
    from backtest_service.runner import run_engine, sandbox_limits, store_artifacts
    from backtest_service.settings import Settings
    from local.cold_start import FUNCTION_ENV

    start, end = date(2018, 1, 1), date(2021, 10, 19)
    assert estimate_bars("BTCUSD", "1m", start, end) <= MAX_BARS
    # No costs: with them the flip is bankrupt within days and stops trading; without, it trades every bar.
    request = BacktestRequest(
        strategy_code=FLIP, symbol="BTCUSD", timeframe="1m", start_date=start, end_date=end, commission=0, slippage=0
    )
    settings = Settings.from_env(FUNCTION_ENV)  # the functions' variables, stand-in resources (no AWS is called)
    t = time.perf_counter()
    run = run_engine(request, sandbox_limits(settings))
    engine_s = time.perf_counter() - t
    engine_mib = _peak_mib(resource.RUSAGE_SELF)
    s3 = _CountingS3()
    t = time.perf_counter()
    store_artifacts("flip", run, ResultStore("bucket", client=s3))  # type: ignore[arg-type]
    store_s = time.perf_counter() - t
    _end_sandbox()
    sys.stderr.write(
        json.dumps(
            {
                "bars": run.result.market_data_stats.data_points,
                "trades": run.result.trade_summary.total_trades,
                "engine_s": round(engine_s, 2),
                "store_s": round(store_s, 2),
                "runner_peak_mib_after_engine": engine_mib,
                "runner_peak_mib": _peak_mib(resource.RUSAGE_SELF),
                "child_peak_mib": _peak_mib(resource.RUSAGE_CHILDREN),
                "object_mib": {k.split("/")[-1]: round(v / 2**20, 1) for k, v in s3.sizes.items()},
            }
        )
        + "\n"
    )


def _end_sandbox() -> None:
    """The sandbox children are the zygote's: their peak RSS reaches RUSAGE_CHILDREN once the zygote ended."""
    from backtest_engine.sandbox.supervisor import default_supervisor

    default_supervisor().close()


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "vectorbt-cold":
        vectorbt_cold(int(sys.argv[2]))
    elif what == "cli-memory":
        cli_memory(sys.argv[2:])
    elif what == "runner-flip":
        runner_flip()
    elif what == "memory-5m":
        memory_5m()
    else:
        raise SystemExit(f"unknown probe {what!r}")
