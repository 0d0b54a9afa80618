"""The report in a real browser (headless Chromium): every chart drawn, no console error, nothing fetched,
the log-scale and zoom controls working, and text a strategy controls staying text."""

from __future__ import annotations

from typing import Any

import pytest

from backtest_engine.report import build_comparison, build_report
from tests.report_samples import HOSTILE, request, run, stored

pytestmark = pytest.mark.xdist_group("browser")

REPORT_CHARTS = (
    "chart-equity",
    "chart-drawdown",
    "chart-price",
    "chart-trade-returns",
    "chart-trade-pnl",
    "chart-rolling",
)


@pytest.fixture(scope="module")
def sample():
    return run(request())


def assert_clean(loaded) -> None:
    assert loaded.console_errors == []
    assert loaded.page_errors == []
    assert loaded.requests == [], "the page fetched something"
    assert loaded.page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert loaded.page.evaluate("window.backtestReport.errors") == []


def test_every_chart_renders_without_errors_or_network(open_report, sample):
    result, bars = sample
    loaded = open_report(build_report(result, bars))
    stats = loaded.chart_stats()
    assert sorted(stats) == sorted(REPORT_CHARTS)
    for chart_id in REPORT_CHARTS:
        s = stats[chart_id]
        assert s["points"] > 1 and s["finite"] > 1, (chart_id, s)
        assert s["width"] > 300 and s["height"] > 100, (chart_id, s)
        assert s["painted"] > 200, f"{chart_id} drew (almost) nothing of its series: {s}"
    cells = loaded.page.locator("#monthly-returns td[data-value]").count()
    assert cells >= 12  # a year of months, each with its coloured return
    assert loaded.page.locator("#metric-definitions tr[id^=metric-]").count() > 40
    assert_clean(loaded)


def test_log_scale_and_zoom_work(open_report, sample):
    result, bars = sample
    loaded = open_report(build_report(result, bars))
    page = loaded.page
    # log scale: the equity chart is drawn again on a logarithmic axis
    page.check("#log-scale")
    assert page.evaluate("window.backtestReport.charts['chart-equity'].scales.y.distr") == 3
    assert loaded.chart_stats()["chart-equity"]["painted"] > 200
    # zoom on the equity chart: the other time charts follow
    t0, t1 = page.evaluate(
        "(() => { const u = window.backtestReport.charts['chart-equity']; const x = u.data[0];"
        " const a = x[Math.floor(x.length / 3)], b = x[Math.floor(x.length / 2)];"
        " u.setScale('x', {min: a, max: b}); return [a, b]; })()"
    )
    for chart_id in ("chart-drawdown", "chart-price", "chart-rolling"):
        scale = f"window.backtestReport.charts['{chart_id}'].scales.x"
        lo, hi = page.evaluate(f"[{scale}.min, {scale}.max]")
        assert (lo, hi) == (t0, t1), chart_id
    assert loaded.chart_stats()["chart-price"]["painted"] > 50
    # a click on the third trade zooms the time charts to it
    page.locator("table.trades tbody tr").nth(2).click()
    entry, exit_ = (
        int(t[2].astype("datetime64[s]").astype("int64")) for t in (result.trades.entry_time, result.trades.exit_time)
    )
    for chart_id in ("chart-price", "chart-equity"):
        scale = f"window.backtestReport.charts['{chart_id}'].scales.x"
        lo, hi = page.evaluate(f"[{scale}.min, {scale}.max]")
        assert lo < entry <= exit_ < hi and hi - lo <= 2 * (exit_ - entry) + 2 * 3600, chart_id
    assert_clean(loaded)


def test_text_a_strategy_controls_stays_text(open_report: Any, sample: Any) -> None:
    result, bars = sample
    loaded = open_report(build_report(result, bars))
    page = loaded.page
    assert page.evaluate("window.pwned") is None
    log = page.locator("#strategy-log").text_content() or ""
    for line in HOSTILE:
        assert line.replace("\u2028", "").replace("\u2029", "") in log.replace("\u2028", "").replace("\u2029", "")
    assert page.locator("img").count() == 0
    assert page.locator("h1").text_content() == result.request["name"]
    assert loaded.dialogs == []  # no alert, confirm or prompt from the page's load on
    assert_clean(loaded)


def test_the_comparison_renders(open_report, sample):
    result, _ = sample
    other, _ = run(request(symbol="MSFT", name="<i>msft</i>"))
    loaded = open_report(build_comparison([result, stored(other)]))
    stats = loaded.chart_stats()
    assert sorted(stats) == ["chart-compare-drawdown", "chart-compare-equity"]
    for chart_id, s in stats.items():
        assert s["finite"] > 2 and s["painted"] > 200, (chart_id, s)
    legend = loaded.page.locator("#chart-compare-equity .u-legend").text_content() or ""
    assert "<i>msft</i>" in legend  # the label as text, not markup
    assert loaded.page.locator("i").count() == 0
    assert_clean(loaded)
