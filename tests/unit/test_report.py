"""The report builder: what each chart gets, every metric's definition, cut notes, escaping of what a
strategy controls, size and extremes at a million bars, the comparison, and reading stored results."""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import re
import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from backtest_engine.metric_definitions import HEADLINE_METRICS, METRIC_DEFINITIONS
from backtest_engine.metrics import daily_returns
from backtest_engine.report import build_comparison, build_report, result_from_json
from backtest_engine.report import series as S
from backtest_engine.report.page import VENDORED_SHA256, asset, esc, json_block
from backtest_engine.result import json_bytes
from tests.report_samples import HOSTILE, report_data, request, run, stored

SMA = """
def generate_signals(data, params):
    fast = talib.SMA(data.close.values, 20)
    slow = talib.SMA(data.close.values, 60)
    return np.where(fast > slow, 1.0, 0.0)
"""


@pytest.fixture(scope="module")
def sample():
    return run(request())


@pytest.fixture(scope="module")
def page(sample):
    result, bars = sample
    return build_report(result, bars)


def test_each_chart_has_its_container_and_its_data(sample, page):
    result, bars = sample
    for element in ("chart-equity", "chart-drawdown", "chart-price", "chart-trade-returns", "chart-trade-pnl",
                    "chart-rolling", "monthly-returns", "headline", "metric-definitions", "strategy-log"):  # fmt: skip
        assert f'id="{element}"' in page, element
    data = report_data(page)
    eq = data["equity"]
    n = len(eq["time"])
    assert n == len(eq["equity"]) == len(eq["buy_hold"]) == len(eq["drawdown_pct"]) and n > 100
    assert eq["bars"] == len(bars)
    # buy-and-hold: the capital in the instrument at the first close, no costs, at the same kept bars
    capital = result.request["initial_capital"]
    assert eq["buy_hold"][0] == pytest.approx(capital)
    assert eq["buy_hold"][-1] == pytest.approx(capital * bars.close[-1] / bars.close[0])
    assert eq["buy_hold"][-1] / capital - 1 == pytest.approx(
        result.performance_metrics["buy_and_hold_return_percent"] / 100, rel=1e-9
    )
    # the price chart: the closes, and every trade's entry and exit at its fill price
    price = data["price"]
    assert price["close"][-1] == bars.close[-1]
    marked = len(price["long_entry"]["time"]) + len(price["short_entry"]["time"])
    assert marked == len(result.trades) == price["marked"]
    assert len(price["exit_win"]["time"]) == int((result.trades.pnl > 0).sum())
    assert sorted(price["long_entry"]["price"]) == sorted(result.trades.entry_price[result.trades.side > 0].tolist())
    # trade returns: every trade counted once; P&L per trade: every trade (fewer than the point budget)
    assert sum(data["histogram"]["counts"]) == len(result.trades)
    assert data["trade_pnl"]["pnl"] == result.trades.pnl.tolist()
    # rolling risk over the daily returns, and the worst drawdowns
    assert len(data["rolling"]["time"]) == data["rolling"]["days"] - data["rolling"]["window"] + 1
    worst = data["worst_drawdowns"]
    assert worst[0]["depth_pct"] == pytest.approx(result.performance_metrics["max_drawdown_percent"], rel=1e-9)
    assert [w["depth_pct"] for w in worst] == sorted(w["depth_pct"] for w in worst)


def test_every_metric_is_shown_with_its_declared_definition(page):
    for d in METRIC_DEFINITIONS:
        row = re.search(rf'<tr id="metric-{d.key}">(.*?)</tr>', page, re.S)
        assert row, d.key
        assert esc(d.name) in row.group(1) and esc(d.description) in row.group(1) and esc(d.formula) in row.group(1)
    headline = re.search(r'<div class="cards" id="headline">(.*?)</div></div></div>', page, re.S)
    assert headline
    for key in HEADLINE_METRICS:
        assert f'href="#metric-{key}"' in page


def test_request_engine_version_fingerprint_and_logs_are_shown(sample, page):
    result, _ = sample
    assert esc(result.data_fingerprint) in page and esc(result.engine_version) in page
    assert "AAPL" in page and "1h" in page and "0.001 of each fill" in page
    assert "<code>fast</code> = <code>5</code>" in page
    assert esc("buy at") in page
    assert f"All {len(result.logs):,} lines." in page


def test_long_trade_lists_and_logs_are_cut_with_a_note(sample):
    result, bars = sample
    page = build_report(result, bars, max_trades=3, max_log_lines=2)
    trades = re.search(r'<table class="trades">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert trades and trades.group(1).count("<tr>") == 3
    assert f"The first 3 of {len(result.trades):,} trades" in page
    assert f"The first 2 of {len(result.logs):,} lines" in page
    log = re.search(r'<pre id="strategy-log">(.*?)</pre>', page, re.S)
    assert log and len(log.group(1).split("\n")) == 2


def test_text_a_strategy_controls_cannot_become_markup_or_script(sample, page):
    # Given log lines, a run name and a parameter holding markup and script
    for text in HOSTILE:
        # then each appears only escaped
        if "<" in text:
            assert text not in page
        assert esc(text) in page
    assert page.count("<script") == 3  # the data block and the two inlined scripts, nothing else
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # the page without the inlined code
    assert not re.search(r"<[^>]*\bonerror", markup) and "<img" not in markup and "<b>sma" not in markup
    # The only executable scripts are the two inlined ones, and the policy allows exactly them by hash
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2 and scripts[0] == asset("uPlot.iife.min.js") and scripts[1] == asset("report.js")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp
    policy = html_lib.unescape(csp.group(1))
    for s in scripts:
        assert f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" in policy
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    # The data block cannot be closed from inside: no '<' at all in it
    data_block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert data_block and "<" not in data_block.group(1)


def test_json_block_escapes_what_could_close_it():
    block = json_block("x", {"label": "</script><script>alert(1)</script> & <!--"})
    inner = block.split(">", 1)[1].rsplit("</script>", 1)[0]
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == {"label": "</script><script>alert(1)</script> & <!--"}


def test_the_page_references_nothing_outside_itself(page):
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:|//|file:)""", page, re.I)
    assert "@import" not in page and "url(" not in asset("report.css") and "url(" not in asset("uPlot.min.css")
    assert 'http-equiv="Content-Security-Policy"' in page


def test_vendored_uplot_is_the_published_file():
    for name, digest in VENDORED_SHA256.items():
        assert hashlib.sha256(asset(name).encode()).hexdigest() == digest, name


@pytest.mark.slow
def test_a_million_bars_give_a_small_report_fast_with_the_max_drawdown_kept():
    # Given a backtest over a million one-minute bars
    req = request(
        SMA, symbol="BTCUSD", timeframe="1m", start_date=date(2022, 1, 1), end_date=date(2023, 11, 25), name="1M"
    )
    result, bars = run(req)
    assert len(bars) > 1_000_000 - 1_000
    # When its report is built (its build time is measured by `make bench`, not asserted here)
    page = build_report(result, bars)
    # Then it is at most about 3 MB
    size = len(page.encode())
    print(f"\n1M-bar report: {size / 1e6:.2f} MB")
    assert size < 3_000_000
    # and the downsampled curves keep the extremes: the max drawdown, the equity's highest and lowest
    data = report_data(page)
    ec = result.equity_curve
    assert len(data["equity"]["time"]) <= S.EQUITY_POINTS
    assert min(data["equity"]["drawdown_pct"]) == ec.drawdown_pct.min()
    assert min(data["equity"]["drawdown_pct"]) == pytest.approx(
        result.performance_metrics["max_drawdown_percent"], rel=1e-9
    )
    assert max(data["equity"]["equity"]) == ec.equity.max() and min(data["equity"]["equity"]) == ec.equity.min()
    assert max(data["price"]["close"]) == bars.close.max() and min(data["price"]["close"]) == bars.close.min()
    peak = np.maximum.accumulate(np.array(data["equity"]["equity"]))
    kept_dd = (np.array(data["equity"]["equity"]) / np.maximum(peak, result.request["initial_capital"]) - 1) * 100
    assert kept_dd.min() == pytest.approx(ec.drawdown_pct.min(), rel=1e-12)


def test_importing_the_report_loads_no_plotting_library_and_the_engine_does_not_import_it():
    probe = (
        "import sys, time\n"
        "import backtest_engine.engine\n"
        "assert 'backtest_engine.report' not in sys.modules, 'the engine imports the report'\n"
        "t = time.perf_counter()\n"
        "import backtest_engine.report\n"
        "ms = (time.perf_counter() - t) * 1000\n"
        "heavy = [m for m in ('matplotlib', 'plotly', 'bokeh', 'PIL') if m in sys.modules]\n"
        "print(ms, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    ms, heavy = out.stdout.split(" ", 1)
    print(f"\nimport backtest_engine.report after the engine: {float(ms):.1f} ms")
    assert heavy.strip() == "[]"


# ---- the series --------------------------------------------------------------------------------------


def _days(n: int, start: str = "2024-01-30") -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "D")


def test_monthly_returns_chain_month_ends_and_compound_years():
    times = np.array(["2023-12-15", "2023-12-31", "2024-01-10", "2024-01-31", "2024-03-05"], dtype="datetime64[ns]")
    equity = np.array([100.0, 110.0, 99.0, 121.0, 133.1])
    m = S.monthly_returns(times, equity, 100.0)
    assert m["years"] == [2023, 2024]
    assert m["months"][0][11] == pytest.approx(10.0)  # Dec 2023: 110 against the capital of 100
    assert m["months"][1][0] == pytest.approx(10.0)  # Jan 2024: 121 against Dec's 110
    assert m["months"][1][1] is None  # no bars in February
    assert m["months"][1][2] == pytest.approx(10.0)  # Mar: 133.1 against Jan's 121
    assert m["year_total"] == [pytest.approx(10.0), pytest.approx(21.0)]


def test_worst_drawdowns_run_from_peak_through_trough_to_recovery():
    times = _days(9)
    equity = np.array([100, 90, 95, 101, 80, 70, 101, 102, 99.0])
    dd = (equity / np.maximum.accumulate(np.maximum(equity, 100)) - 1) * 100
    worst = S.worst_drawdowns(times, dd)
    secs = S.seconds(times)
    assert [round(w["depth_pct"], 6) for w in worst] == [round((70 / 101 - 1) * 100, 6), -10.0, round(-3 / 1.02, 6)]
    first = worst[0]
    assert (first["peak_time"], first["trough_time"], first["end_time"]) == (secs[3], secs[5], secs[6])
    assert first["recovered"] and first["days"] == 3
    assert worst[1]["peak_time"] == secs[0]  # fell from the initial capital at the first bar
    assert worst[2]["recovered"] is False and worst[2]["end_time"] == secs[8]
    assert S.worst_drawdowns(times[:3], np.zeros(3)) == []


def test_the_histogram_has_an_edge_at_zero_and_counts_every_trade():
    r = np.array([-3.3, -0.1, 0.0, 0.2, 5.0, 7.7])
    h = S.trade_histogram(r, bins=10)
    assert 0.0 in [round(e, 12) for e in h["edges"]] and sum(h["counts"]) == len(r)
    assert S.trade_histogram(np.array([])) == {"edges": [], "counts": []}


def test_rolling_risk_over_the_whole_run_is_the_run_s_sharpe_and_volatility():
    rng = np.random.default_rng(3)
    times = _days(40)
    equity = 1000 * np.cumprod(1 + rng.normal(0.001, 0.01, 40))
    _, r = daily_returns(times, equity, 1000.0)
    roll = S.rolling_risk(times, equity, 1000.0, 252, window=len(r))
    assert len(roll["sharpe"]) == 1
    assert roll["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert roll["volatility_pct"][0] == pytest.approx(r.std(ddof=1) * np.sqrt(252) * 100, rel=1e-9)
    assert S.rolling_risk(times[:5], equity[:5], 1000.0, 252)["time"] == []


# ---- the comparison and stored results ----------------------------------------------------------------


def test_a_stored_result_reads_back_to_the_same_result(sample):
    result, _ = sample
    again = result_from_json(stored(result))
    assert json_bytes(again) == json_bytes(result)


def test_the_comparison_shows_each_run_s_curves_and_metrics_side_by_side(sample):
    result, _ = sample
    other, _ = run(request(SMA, symbol="MSFT", name="plain <sma>"))
    # Given one result in memory and one as stored JSON
    page = build_comparison([result, stored(other)])
    data = report_data(page)
    assert data["kind"] == "comparison" and len(data["runs"]) == 2
    first, second = data["runs"]
    assert first["label"].startswith("1 · </script><b>sma</b> & co (AAPL 1h)")  # JSON-escaped on the page
    assert second["label"] == "2 · plain <sma> (MSFT 1h)"
    assert esc(second["label"]) in page and second["label"] not in page
    for run_data, r in ((first, result), (second, other)):
        assert len(run_data["time"]) == len(run_data["growth"]) == len(run_data["drawdown_pct"])
        assert run_data["growth"][-1] == pytest.approx(r.performance_metrics["final_capital"] / 100, rel=1e-9)
        assert min(run_data["drawdown_pct"]) == r.equity_curve.drawdown_pct.min()
    for element in ("chart-compare-equity", "chart-compare-drawdown"):
        assert f'id="{element}"' in page
    # every headline metric has a row with both values; the better Sharpe is marked
    sharpe = [result.performance_metrics["sharpe_ratio"], other.performance_metrics["sharpe_ratio"]]
    row = re.search(r"Sharpe Ratio</a></td>(.*?)</tr>", page, re.S)
    assert row and row.group(1).count('class="best"') == 1
    assert f'<span class="best">{max(sharpe):.3f}</span>' in row.group(1)


def test_a_comparison_refuses_columns_of_different_lengths(sample):
    result, _ = sample
    broken = stored(result)
    broken["equity_curve"]["equity"] = broken["equity_curve"]["equity"][:-1]
    with pytest.raises(ValueError, match="different lengths"):
        build_comparison([broken])
    with pytest.raises(ValueError):
        build_comparison([])


def test_a_report_of_a_run_without_trades_still_builds():
    result, bars = run(request("def generate_signals(data, params):\n    return np.zeros(len(data))\n"))
    page = build_report(result, bars)
    data = report_data(page)
    assert data["histogram"]["counts"] == [] and data["trade_pnl"]["pnl"] == []
    assert "No trades." in page and 'id="chart-equity"' in page
