"""The backtest report: one self-contained HTML file per job, and a comparison of several jobs.

    from backtest_engine.report import build_report, build_comparison
    html = build_report(result, bars)                  # str: the whole page, nothing fetched when opened
    html = build_comparison([result_a, stored_json_b])  # BacktestResult or its stored JSON, mixed

Charts are drawn in the browser by uPlot (vendored in `assets/`, 51 KB, MIT), inlined with the page's
own script and the data: the page renders on a machine with no network, and its Content-Security-Policy
lets nothing be fetched. This package imports numpy and the engine's own modules only; no plotting code
runs in Python, so importing it costs nothing the runner does not already pay (the engine itself never
imports it: the runner calls it after a job). Curves are downsampled by `downsample.extremes` (the
equity endpoint's method): extremes and the maximum drawdown survive.

- `series`: the numbers drawn (equity against buy-and-hold, drawdown periods, markers, monthly and
  rolling returns, trade distributions), pure numpy;
- `page`: the HTML page, escaping, formatting, the inlined assets and the CSP;
- `build`: `build_report` and `build_comparison`;
- `stored`: results read back from their stored JSON.
"""

from __future__ import annotations

from backtest_engine.report.build import MAX_LOG_LINES, MAX_TRADES, build_comparison, build_report
from backtest_engine.report.stored import result_from_json

__all__ = ["MAX_LOG_LINES", "MAX_TRADES", "build_comparison", "build_report", "result_from_json"]
