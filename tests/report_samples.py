"""Backtests the report tests build reports from (unit and browser tests share them)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.result import BacktestResult, json_bytes

# Text a strategy controls (its log lines, the run's name, a string parameter) that would run script, or
# break out of the page's data, if the report did not escape it.
HOSTILE = (
    "</script><script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 2">',
    "</pre><script>window.pwned = 3</script>",
    "<!-- <script>window.pwned = 4</script> -->",
    "\u2028\u2029 & &amp; \"quotes\" 'single'",
)

# SMA crossover, event style, that also logs every hostile line (and one line per trade).
LOGGING_SMA = f"""
HOSTILE = {list(HOSTILE)!r}


def initialize(ctx):
    ctx.fast = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=ctx.params.get("fast", 5))
    ctx.slow = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=ctx.params.get("slow", 20))


def on_bar(ctx, bar):
    if ctx.i == 0:
        for line in HOSTILE:
            ctx.log(line)
    if ctx.i < 25:
        return
    if ctx.fast[-1] > ctx.slow[-1] and ctx.position == 0:
        ctx.buy()
        print("buy at", bar.close)
    elif ctx.fast[-1] < ctx.slow[-1] and ctx.position != 0:
        ctx.close()
"""


def request(code: str = LOGGING_SMA, **fields: Any) -> BacktestRequest:
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "timeframe": "1h",
        "start_date": date(2023, 7, 1),
        "end_date": date(2024, 6, 30),
        "name": "</script><b>sma</b> & co",
        "parameters": {"fast": 5, "slow": 20, "note": "<script>window.pwned = 5</script>"},
    }
    return BacktestRequest.model_validate({"strategy_code": code, **{**base, **fields}}, context={"max_bars": None})


def run(req: BacktestRequest) -> tuple[BacktestResult, Bars]:
    bars = load_bars(req.symbol, req.timeframe, req.start_date, req.end_date)
    return run_backtest(req, bars=bars), bars


def stored(result: BacktestResult) -> dict[str, Any]:
    """The result as stored (what `backtest run --json` prints), parsed."""
    data: dict[str, Any] = orjson.loads(json_bytes(result))
    return data


_DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def report_data(html: str) -> dict[str, Any]:
    """The charts' JSON inside a report."""
    found = _DATA.search(html)
    assert found, "no report-data block"
    data: dict[str, Any] = orjson.loads(found.group(1))
    return data
