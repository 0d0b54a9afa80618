"""Results as they are stored (the JSON of `result.iter_json`) read back for a report or a comparison.

`result_from_json` rebuilds a `BacktestResult` (numpy columns) from the stored JSON; `run_curve` takes
from a result, stored or in memory, only what a comparison draws, parsing just the kept points' times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest_engine.broker import EXIT_REASONS
from backtest_engine.downsample import extremes
from backtest_engine.report.series import seconds
from backtest_engine.result import BacktestResult, EquityCurve, TradeColumns

_SIDE_CODES = {"long": 1, "short": -1}
_REASON_CODES = {name: k for k, name in enumerate(EXIT_REASONS)}


def parse_times(values: Any) -> np.ndarray:
    """ISO-8601 UTC strings ('2024-01-02T14:30:00Z') → datetime64[ns]."""
    text = np.asarray(values, dtype=str)
    if text.shape[0] == 0:
        return np.empty(0, dtype="datetime64[ns]")
    text = np.char.rstrip(text, "Z")
    return text.astype("datetime64[ns]")


def result_from_json(data: Mapping[str, Any]) -> BacktestResult:
    """The stored JSON of a result (what `backtest run --json` prints) as a `BacktestResult` again."""
    t = data.get("trades") or {}
    trades = TradeColumns(
        entry_time=parse_times(t.get("entry_time", [])),
        exit_time=parse_times(t.get("exit_time", [])),
        entry_bar=np.asarray(t.get("entry_bar", []), dtype=np.int64),
        exit_bar=np.asarray(t.get("exit_bar", []), dtype=np.int64),
        side=np.asarray([_SIDE_CODES[s] for s in t.get("side", [])], dtype=np.int8),
        size=np.asarray(t.get("size", []), dtype=np.float64),
        entry_price=np.asarray(t.get("entry_price", []), dtype=np.float64),
        exit_price=np.asarray(t.get("exit_price", []), dtype=np.float64),
        pnl=np.asarray(t.get("pnl", []), dtype=np.float64),
        return_pct=np.asarray(t.get("return_pct", []), dtype=np.float64),
        commission=np.asarray(t.get("commission", []), dtype=np.float64),
        exit_reason=np.asarray([_REASON_CODES[r] for r in t.get("exit_reason", [])], dtype=np.int8),
        bars_held=np.asarray(t.get("bars_held", []), dtype=np.int64),
    )
    e = data.get("equity_curve") or {}
    curve = EquityCurve(
        time=parse_times(e.get("time", [])),
        equity=np.asarray(e.get("equity", []), dtype=np.float64),
        drawdown_pct=np.asarray(e.get("drawdown_pct", []), dtype=np.float64),
    )
    rest = {k: v for k, v in data.items() if k in BacktestResult.model_fields and k not in ("trades", "equity_curve")}
    return BacktestResult.model_validate({**rest, "trades": trades, "equity_curve": curve})


@dataclass(frozen=True)
class RunCurve:
    """One run of a comparison: its label, downsampled growth-of-100 and drawdown curves, and summary."""

    label: str
    time: np.ndarray  # seconds
    growth: np.ndarray
    drawdown_pct: np.ndarray
    bars: int
    metrics: Mapping[str, Any]
    request: Mapping[str, Any]
    engine_version: str = ""
    data_fingerprint: str = ""


def _float_column(values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return a.reshape(-1)


def run_curve(result: Mapping[str, Any] | BacktestResult, *, label: str, points: int) -> RunCurve:
    """What a comparison shows of `result`, labelled `label` (and the request's name, symbol, timeframe)."""
    if isinstance(result, BacktestResult):
        data: Mapping[str, Any] = {
            "request": result.request,
            "performance_metrics": result.performance_metrics,
            "engine_version": result.engine_version,
            "data_fingerprint": result.data_fingerprint,
        }
        times: Any = result.equity_curve.time
        equity = np.asarray(result.equity_curve.equity, dtype=np.float64)
        drawdown = np.asarray(result.equity_curve.drawdown_pct, dtype=np.float64)
    else:
        data = result
        curve = data.get("equity_curve") or {}
        times = curve.get("time", [])
        equity = _float_column(curve.get("equity", []))
        drawdown = _float_column(curve.get("drawdown_pct", []))
    if not (len(times) == equity.shape[0] == drawdown.shape[0]):
        raise ValueError(f"run {label}: equity_curve columns have different lengths")
    request = dict(data.get("request") or {})
    capital = float(request.get("initial_capital") or (equity[0] if equity.shape[0] else 1.0))
    kept = extremes(equity, points, drawdown) if equity.shape[0] else np.arange(0)
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        kept_times = times[kept]
    else:
        kept_times = parse_times([times[int(i)] for i in kept])
    name = request.get("name")
    what = f"{request.get('symbol', '?')} {request.get('timeframe', '?')}"
    shown = f"{label} · {name} ({what})" if name else f"{label} · {what}"
    return RunCurve(
        label=str(shown),
        time=seconds(kept_times),
        growth=equity[kept] / capital * 100.0,
        drawdown_pct=drawdown[kept],
        bars=int(equity.shape[0]),
        metrics=dict(data.get("performance_metrics") or {}),
        request=request,
        engine_version=str(data.get("engine_version", "")),
        data_fingerprint=str(data.get("data_fingerprint", "")),
    )
